"""The replay guard's memory: which signed Slack requests were already taken, in the database so
every replica shares it. Taking a request is one INSERT that fails on the primary key for a replay."""

from __future__ import annotations

import threading
import time
from datetime import datetime, timedelta, timezone
from typing import Any

from sqlalchemy import Engine, delete, insert

from bot.storage.tables import SeenRequestRow

PRUNE_EVERY_SECONDS = 60.0
_TABLE = SeenRequestRow.__table__


class _Take:
    """The one INSERT every Slack request pays for, compiled once for the engine's dialect and run on a
    pooled driver connection: SQLAlchemy's Connection, transaction and execution layers cost about twice
    the statement itself (bench/slack_http.py). A single INSERT is atomic on its own, so the driver's
    autocommit (SQLite, as bot/storage/db.py sets it up) or one commit (PostgreSQL) is the transaction."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        compiled = insert(_TABLE).compile(dialect=engine.dialect)
        self.sql = str(compiled)
        self.positional = compiled.positional
        self.order = tuple(compiled.positiontup or ("signature", "seen_at"))
        self.seen_at = _TABLE.c.seen_at.type.bind_processor(engine.dialect) or (lambda value: value)
        self.duplicate = engine.dialect.loaded_dbapi.IntegrityError

    def __call__(self, signature: str, now: datetime) -> bool:
        values = {"signature": signature, "seen_at": self.seen_at(now)}
        params: Any = tuple(values[name] for name in self.order) if self.positional else values
        connection = self.engine.raw_connection()
        try:
            cursor = connection.cursor()
            try:
                cursor.execute(self.sql, params)
            except self.duplicate:
                connection.rollback()
                return False
            finally:
                cursor.close()
            connection.commit()
            return True
        finally:
            connection.close()  # back to the pool


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
