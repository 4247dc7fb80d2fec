"""The replay guard's memory: which signed Slack requests were already taken, in the database so
every replica shares it. Taking a request is one INSERT that fails on the primary key for a replay."""

from __future__ import annotations

import threading
import time
from datetime import datetime, timedelta, timezone

from sqlalchemy import Engine, delete, insert
from sqlalchemy.exc import IntegrityError

from bot.storage.tables import SeenRequestRow

PRUNE_EVERY_SECONDS = 60.0


class SeenRequests:
    def __init__(self, engine: Engine, window: timedelta) -> None:
        self.engine = engine
        self.window = window
        self._last_prune = 0.0
        self._lock = threading.Lock()

    def first_time(self, signature: str, now: datetime | None = None) -> bool:
        """Record `signature` (or `event:<event_id>`); False if any replica recorded it before (a replay)."""
        now = now or datetime.now(timezone.utc)
        self._maybe_prune(now)
        try:
            with self.engine.begin() as conn:
                conn.execute(insert(SeenRequestRow).values(signature=signature, seen_at=now))
        except IntegrityError:
            return False
        return True

    def _maybe_prune(self, now: datetime) -> None:
        """Rows older than twice the window can never match a request Slack's timestamp check admits."""
        with self._lock:
            if time.monotonic() - self._last_prune < PRUNE_EVERY_SECONDS:
                return
            self._last_prune = time.monotonic()
        with self.engine.begin() as conn:
            conn.execute(delete(SeenRequestRow).where(SeenRequestRow.seen_at < now - 2 * self.window))
