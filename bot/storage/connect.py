"""Open and migrate the database at start-up, turning every way that can fail into one line that
names the setting to fix (never a traceback, never the password)."""

from __future__ import annotations

import os
from pathlib import Path

from sqlalchemy import Engine
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

from bot.storage.db import DEFAULT_SQLITE_FILENAME, make_engine, normalise_url, unwritable_sqlite_folder, upgrade
from grading.errors import CrsbotError


# The drivers crsbot ships (after `normalise_url`): SQLite through the standard library, PostgreSQL through
# psycopg 3. Any other dialect or driver (mysql://, oracle://, postgresql+asyncpg://) is refused by name
# before SQLAlchemy tries to import a module that is not installed.
SUPPORTED_DRIVERS = frozenset({"sqlite", "sqlite+pysqlite", "postgresql+psycopg"})


class DatabaseSetupError(CrsbotError):
    """The database named by a setting cannot be used; the message names the variable."""


def _first_line(error: BaseException) -> str:
    text = str(getattr(error, "orig", None) or error).strip()
    return (text.splitlines() or [type(error).__name__])[0][:200]


def open_database(url: str | None, data_dir: Path, pool_size: int | None = None) -> Engine:
    """An engine on `url` (DATABASE_URL) or the SQLite file in `data_dir` (CRSBOT_DATA_DIR), migrated."""
    variable = "DATABASE_URL" if url else "CRSBOT_DATA_DIR"
    url = url or f"sqlite:///{(data_dir / DEFAULT_SQLITE_FILENAME).resolve()}"
    try:
        parsed = normalise_url(url)
    except ArgumentError:
        raise DatabaseSetupError(f"{variable}: not a database URL; expected e.g. "
                                 "postgresql://user:password@host:5432/crsbot or sqlite:////data/crsbot.sqlite3") \
            from None
    if parsed.drivername not in SUPPORTED_DRIVERS:
        raise DatabaseSetupError(f"{variable}: database driver '{make_url(url).drivername}' is not supported; "
                                 "only PostgreSQL (postgresql://) and SQLite (sqlite://) are")
    folder = unwritable_sqlite_folder(parsed)
    if folder is not None:
        uid = os.getuid()
        raise DatabaseSetupError(f"{variable}: the folder {folder} is not writable by uid {uid}; mount a volume that "
                                 f"user owns (docker run -v crsbot-data:/data) or chown the folder to {uid}")
    shown = parsed.render_as_string(hide_password=True)
    try:
        engine = make_engine(parsed, pool_size=pool_size)
    except (OSError, SQLAlchemyError, ValueError) as exc:
        raise DatabaseSetupError(f"{variable}: cannot use {shown} ({_first_line(exc)})") from None
    try:
        upgrade(engine)
    except (OSError, SQLAlchemyError) as exc:
        engine.dispose()
        raise DatabaseSetupError(f"{variable}: cannot open or migrate {shown} ({_first_line(exc)})") from None
    return engine
