"""An outage is logged twice: once when it starts (what failed, one line) and once when it ends
(how long, how many attempts failed), never once per attempt and never as a traceback per tick."""

from __future__ import annotations

import logging
import threading
import time
from datetime import datetime, timezone


class OutageLog:
    def __init__(self, logger: logging.Logger, what: str) -> None:
        self.logger = logger
        self.what = what
        self.since: datetime | None = None
        self.failures = 0
        self._started = 0.0
        self._lock = threading.Lock()

    @property
    def down(self) -> bool:
        return self.since is not None

    def failed(self, error: BaseException) -> None:
        with self._lock:
            self.failures += 1
            if self.since is not None:
                return
            self.since = datetime.now(timezone.utc)
            self._started = time.monotonic()
        first_line = (str(error).strip().splitlines() or [""])[0][:300]
        self.logger.error("%s failing: %s: %s (logged once; retrying quietly)", self.what,
                          type(error).__name__, first_line)
        self.logger.debug("%s failure detail", self.what, exc_info=error)

    def succeeded(self) -> None:
        with self._lock:
            if self.since is None:
                return
            failures, seconds = self.failures, time.monotonic() - self._started
            self.since, self.failures = None, 0
        self.logger.warning("%s recovered after %.0f s; %d attempts failed meanwhile", self.what, seconds, failures)
