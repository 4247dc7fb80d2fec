"""Engines and schema migrations for SQLite (single host) and PostgreSQL (replicas).

SQLite runs in WAL mode with every transaction opened as `BEGIN IMMEDIATE`, so
two processes sharing a file serialise their writes instead of failing with
"database is locked" when a read transaction tries to become a write one.
Migrations run programmatically from the packaged `bot/migrations` directory,
under a PostgreSQL advisory lock, so any number of replicas may start at once.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pydantic_core
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.orm import Session

__all__ = [
    "DEFAULT_SQLITE_FILENAME",
    "MIGRATIONS_DIR",
    "alembic_config",
    "current_revision",
    "default_database_url",
    "head_revision",
    "make_engine",
    "normalise_url",
    "upgrade",
]

log = logging.getLogger(__name__)

DEFAULT_SQLITE_FILENAME = "crsbot.sqlite3"
MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"
SQLITE_BUSY_TIMEOUT_SECONDS = 30.0
# Execution option marking a read-only connection: SQLite then opens a deferred transaction (no write
# lock), so reads never queue behind writers. `engine.execution_options(**{READ_ONLY: True})`.
READ_ONLY = "crsbot_read_only"
# Arbitrary but fixed key ("crsbmigr" as ASCII) shared by every replica.
MIGRATION_LOCK_KEY = 0x637273626D696772
# alembic's `context` module is a process-wide proxy, so two threads must never
# run migrations at the same time, even on different databases.
_ALEMBIC_LOCK = threading.Lock()


def default_database_url(data_dir: str | Path) -> str:
    """The SQLite file used when no DATABASE_URL is configured."""
    return f"sqlite:///{Path(data_dir) / DEFAULT_SQLITE_FILENAME}"


def normalise_url(url: str | URL) -> URL:
    """Point bare PostgreSQL URLs (Heroku-style `postgres://` too) at psycopg 3."""
    parsed = make_url(url)
    if parsed.drivername in ("postgres", "postgresql"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


def _is_sqlite_file(url: URL) -> bool:
    return url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:")


def unwritable_sqlite_folder(url: str | URL) -> Path | None:
    """The folder of a SQLite file the process cannot create or write (WAL needs the folder too),
    so start-up can say so in one line instead of a driver traceback; None when all is well."""
    parsed = normalise_url(url)
    if not _is_sqlite_file(parsed):
        return None
    path = Path(parsed.database or "").expanduser()
    folder = next((p for p in (path.parent, *path.parent.parents) if p.exists()), None)
    if folder is None or not folder.is_dir() or not os.access(folder, os.W_OK | os.X_OK):
        return path.parent
    if path.exists() and not os.access(path, os.R_OK | os.W_OK):
        return path.parent
    return None


def make_engine(url: str | URL | None = None, *, data_dir: str | Path = "data", echo: bool = False,
                pool_size: int | None = None) -> Engine:
    """Create an engine for `url`, or for the default SQLite file under `data_dir`.

    A SQLite file gets one pooled connection per process: SQLite has one writer at a time anyway, and
    threads then queue on the pool (woken at once) instead of sleeping in SQLite's busy handler (which
    backs off up to 100 ms a try); other processes on the same file still wait on busy_timeout.
    PostgreSQL gets `pool_size` connections (the caller sizes it to its threads).
    """
    parsed = normalise_url(url if url is not None else default_database_url(data_dir))
    kwargs: dict[str, Any] = {"echo": echo, "json_serializer": json_text, "json_deserializer": pydantic_core.from_json}
    if parsed.get_backend_name() == "sqlite":
        kwargs["connect_args"] = {"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_SECONDS}
        if _is_sqlite_file(parsed):
            Path(parsed.database or "").expanduser().parent.mkdir(parents=True, exist_ok=True)
            kwargs.update(pool_size=1, max_overflow=0, pool_timeout=SQLITE_BUSY_TIMEOUT_SECONDS)
        engine = create_engine(parsed, **kwargs)
        _configure_sqlite(engine, wal=_is_sqlite_file(parsed))
        return engine
    kwargs["pool_pre_ping"] = True  # survive a PostgreSQL restart without a failed tick
    if pool_size is not None:
        kwargs.update(pool_size=pool_size, max_overflow=0)
    return create_engine(parsed, **kwargs)


def json_text(value: Any) -> str:
    """JSON columns are written by pydantic-core's encoder (Rust): equivalent JSON to `json.dumps` (compact,
    UTF-8 rather than escapes) for a third of the CPU; every grade stores its ~4.5 KB report."""
    return pydantic_core.to_json(value).decode()


def _configure_sqlite(engine: Engine, *, wal: bool) -> None:
    """WAL + busy timeout + foreign keys, and SQLAlchemy-controlled `BEGIN IMMEDIATE`."""

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take BEGIN away from the sqlite3 module (it skips it for SELECTs).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout = {int(SQLITE_BUSY_TIMEOUT_SECONDS * 1000)}")
            if wal:
                _enable_wal(cursor)
            cursor.execute("PRAGMA foreign_keys = ON")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        # IMMEDIATE takes the write lock up front (waiting up to busy_timeout), so
        # read-then-write transactions cannot fail half-way on a stale snapshot.
        # Read-only connections (READ_ONLY) take no write lock at all.
        # Straight to the driver: SQLAlchemy's execution layer costs more CPU than the BEGIN itself.
        read_only = connection.get_execution_options().get(READ_ONLY)
        connection.connection.dbapi_connection.execute("BEGIN" if read_only else "BEGIN IMMEDIATE")  # type: ignore[union-attr]


def _enable_wal(cursor: sqlite3.Cursor) -> None:
    """Switch the file to WAL (a lasting property of the file), retrying while another process holds it.

    Changing the journal mode needs an exclusive lock and SQLite reports "database
    is locked" at once instead of waiting on busy_timeout, so two processes opening
    a brand-new file together would otherwise fail at start-up.
    """
    deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT_SECONDS
    while True:
        try:
            if str(cursor.execute("PRAGMA journal_mode").fetchone()[0]).lower() == "wal":
                return
            if str(cursor.execute("PRAGMA journal_mode = WAL").fetchone()[0]).lower() == "wal":
                return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) and "busy" not in str(exc):
                raise
        if time.monotonic() > deadline:
            raise sqlite3.OperationalError("could not switch the SQLite database to WAL mode: database is locked")
        time.sleep(0.02)


def alembic_config(url: str | URL | None = None) -> Config:
    """An alembic Config built in code (no alembic.ini), usable from any cwd or install."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR).replace("%", "%%"))
    if url is not None:
        rendered = normalise_url(url).render_as_string(hide_password=False)
        config.set_main_option("sqlalchemy.url", rendered.replace("%", "%%"))
    return config


@contextmanager
def _engine_for(engine_or_url: Engine | str | URL) -> Iterator[Engine]:
    if isinstance(engine_or_url, Engine):
        yield engine_or_url
        return
    engine = make_engine(engine_or_url)
    try:
        yield engine
    finally:
        engine.dispose()


def upgrade(engine_or_url: Engine | str | URL, revision: str = "head") -> None:
    """Migrate the database to `revision`; safe to call on every start, from every replica.

    Everything runs in one transaction: on PostgreSQL it first takes a
    transaction-scoped advisory lock (so concurrent starters queue, and the later
    ones find the schema already current); on SQLite `BEGIN IMMEDIATE` does the same.
    """
    with _engine_for(engine_or_url) as engine:
        config = alembic_config()
        with engine.begin() as connection:
            if connection.dialect.name == "postgresql":
                connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
            config.attributes["connection"] = connection
            with _ALEMBIC_LOCK:  # taken after the database lock, so the order is always the same
                command.upgrade(config, revision)
        log.info("database schema at %s", current_revision(engine))


def current_revision(engine_or_url: Engine | str | URL) -> str | None:
    """The revision the database is at (None for an empty database)."""
    with _engine_for(engine_or_url) as engine, engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def head_revision() -> str:
    """The newest revision shipped with this code."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if head is None:
        raise RuntimeError(f"no migrations found in {MIGRATIONS_DIR}")
    return head


WAKE_CHANNEL = "crsbot_reminders"
"""PostgreSQL NOTIFY channel: a booking committed by one replica wakes the reminder engines of the others."""


def notify_bookings(session: Session | Connection) -> None:
    """Queue a wake-up for other replicas; PostgreSQL delivers it at commit (and only if it commits)."""
    bind = session.get_bind() if isinstance(session, Session) else session
    if bind.dialect.name == "postgresql":
        session.execute(text("SELECT pg_notify(:channel, '')"), {"channel": WAKE_CHANNEL})
