"""Injectable time source.

Reminder cadence, escalation and the 72-hour symptom-free notice all depend on
"now"; routing every read of the time through a `Clock` lets tests move time
forward by hours without sleeping, and keeps every stored timestamp in UTC.
"""

from __future__ import annotations

import threading
from datetime import datetime, timedelta, timezone
from typing import Protocol, runtime_checkable

__all__ = ["Clock", "ManualClock", "SystemClock", "as_utc"]


def as_utc(value: datetime) -> datetime:
    """Return `value` in UTC; naive datetimes are rejected because their zone is a guess."""
    if value.tzinfo is None or value.tzinfo.utcoffset(value) is None:
        raise ValueError(f"naive datetime {value!r}: pass a timezone-aware datetime")
    return value.astimezone(timezone.utc)


@runtime_checkable
class Clock(Protocol):
    """Anything that can tell the current time as an aware UTC datetime."""

    def now(self) -> datetime: ...


class SystemClock:
    """The real wall clock, in UTC."""

    def now(self) -> datetime:
        return datetime.now(timezone.utc)


class ManualClock:
    """A clock that only moves when told to; shared safely between threads in tests."""

    def __init__(self, start: datetime) -> None:
        self._lock = threading.Lock()
        self._now = as_utc(start)

    def now(self) -> datetime:
        with self._lock:
            return self._now

    def advance(self, delta: timedelta) -> datetime:
        """Move forward by `delta` (never backwards: time going back would break ordering)."""
        if delta < timedelta(0):
            raise ValueError(f"cannot advance by a negative amount: {delta}")
        with self._lock:
            self._now = self._now + delta
            return self._now

    def set(self, when: datetime) -> None:
        """Jump to an absolute instant (forwards or backwards, for setting up scenarios)."""
        value = as_utc(when)
        with self._lock:
            self._now = value

    def __repr__(self) -> str:
        return f"ManualClock({self.now().isoformat()})"
