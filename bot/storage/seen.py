"""The replay guard's memory: which signed Slack requests were already taken, in the database so
every replica shares it. Taking a request is one INSERT that fails on the primary key for a replay."""

from __future__ import annotations

import threading
import time
from datetime import datetime, timedelta, timezone

from sqlalchemy import Engine, delete, insert

from bot.storage.compiled import CompiledInsert
from bot.storage.tables import SeenRequestRow

PRUNE_EVERY_SECONDS = 60.0
_TABLE = SeenRequestRow.__table__


class _Take:
    """The one INSERT every Slack request pays for, run on a pooled driver connection (bot/storage/compiled.py).
    A single INSERT is atomic on its own, so the driver's
    autocommit (SQLite, as bot/storage/db.py sets it up) or one commit (PostgreSQL) is the transaction.

    This one commit does not wait for the disk (SQLite `synchronous = NORMAL` for the statement, restored
    after it; PostgreSQL `synchronous_commit = off` for the transaction); assessments and the audit trail
    still do. The mark is atomic and survives a crash of crsbot; only a power loss or OS crash within
    moments of it can undo it (the next durable commit flushes it too), and what it guards against is a
    replay inside a 5-minute window. The flush was a third of the CPU of taking a request on SQLite and
    sat in front of every acknowledgement."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.insert = CompiledInsert(insert(_TABLE), engine, ("signature", "seen_at"))
        self.relax, self.restore = _unflushed_commit(engine)

    def __call__(self, signature: str, now: datetime) -> bool:
        connection = self.engine.raw_connection()
        try:
            cursor = connection.cursor()
            try:
                cursor.execute(self.relax)
                try:
                    self.insert.run(cursor, {"signature": signature, "seen_at": now})
                except self.insert.duplicate:
                    connection.rollback()
                    return False
                connection.commit()
                return True
            finally:
                try:
                    if self.restore:
                        cursor.execute(self.restore)
                    cursor.close()
                except Exception:
                    connection.invalidate()  # never hand a relaxed connection back to the pool
                    raise
        finally:
            connection.close()  # back to the pool


def _unflushed_commit(engine: Engine) -> tuple[str, str | None]:
    """(statement before the INSERT, statement after it) that let this one commit skip the disk flush."""
    if engine.dialect.name == "postgresql":
        return "SET LOCAL synchronous_commit TO OFF", None  # ends with the transaction
    connection = engine.raw_connection()
    try:
        cursor = connection.cursor()
        level = cursor.execute("PRAGMA synchronous").fetchone()[0]
        cursor.close()
    finally:
        connection.close()
    return f"PRAGMA synchronous = {min(int(level), 1)}", f"PRAGMA synchronous = {int(level)}"


class SeenRequests:
    def __init__(self, engine: Engine, window: timedelta) -> None:
        self.engine = engine
        self.window = window
        self._last_prune = 0.0
        self._lock = threading.Lock()
        self._take = _Take(engine)

    def first_time(self, signature: str, now: datetime | None = None) -> bool:
        """Record `signature` (or `event:<event_id>`); False if any replica recorded it before (a replay)."""
        now = now or datetime.now(timezone.utc)
        self._maybe_prune(now)
        return self._take(signature, now)

    def _maybe_prune(self, now: datetime) -> None:
        """Rows older than twice the window can never match a request Slack's timestamp check admits."""
        with self._lock:
            if time.monotonic() - self._last_prune < PRUNE_EVERY_SECONDS:
                return
            self._last_prune = time.monotonic()
        with self.engine.begin() as conn:
            conn.execute(delete(SeenRequestRow).where(SeenRequestRow.seen_at < now - 2 * self.window))
