"""Database fixtures shared by the storage and reminder tests.

Every `db_url`-based test runs twice: on a fresh SQLite file and on PostgreSQL.
PostgreSQL tests use one throw-away database per test module (created through
the `postgres` maintenance database, dropped WITH (FORCE) afterwards) and start
each test from empty tables. PostgreSQL is always available here and in CI, so
an unreachable server fails the tests loudly instead of skipping them.

Point CRSBOT_TEST_PG_URL at another server's maintenance database if needed.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import URL
from sqlalchemy.exc import OperationalError
from sqlalchemy.pool import NullPool

from bot.clock import ManualClock
from bot.storage.db import make_engine, normalise_url, upgrade
from bot.storage.store import Store

__all__ = [
    "blank_db_url",
    "clock",
    "db_engine",
    "db_url",
    "pg_admin_engine",
    "pg_database_factory",
    "pg_module_url",
    "store",
]

PG_ADMIN_URL: URL = normalise_url(
    os.environ.get("CRSBOT_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
)
# A Monday morning, so "+72h" and "+2h" land on readable times in failures.
CLOCK_START = datetime(2026, 3, 2, 8, 0, tzinfo=timezone.utc)
APP_TABLES = ("audit", "reminders", "assessments", "oncall", "episodes", "seen_requests")

BACKENDS = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgresql", id="postgresql", marks=pytest.mark.postgres),
]


@pytest.fixture(scope="session")
def pg_admin_engine() -> Iterator[Engine]:
    """AUTOCOMMIT engine on the maintenance database (CREATE/DROP DATABASE cannot run in a transaction)."""
    engine = create_engine(
        PG_ADMIN_URL, isolation_level="AUTOCOMMIT", poolclass=NullPool, connect_args={"connect_timeout": 5}
    )
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except OperationalError as exc:
        engine.dispose()
        pytest.fail(
            f"PostgreSQL is required but unreachable at {PG_ADMIN_URL.render_as_string(hide_password=True)}: "
            f"{exc.orig}. It runs on 127.0.0.1:5432 locally and in CI; start it or set CRSBOT_TEST_PG_URL.",
            pytrace=False,
        )
    yield engine
    engine.dispose()


@pytest.fixture(scope="module")
def pg_database_factory(pg_admin_engine: Engine) -> Iterator[Callable[[], str]]:
    """Call it to get the URL of a brand-new empty PostgreSQL database; all are dropped after the module."""
    created: list[str] = []

    def create() -> str:
        name = f"crsbot_t_{secrets.token_hex(6)}"
        with pg_admin_engine.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
        created.append(name)
        return PG_ADMIN_URL.set(database=name).render_as_string(hide_password=False)

    yield create
    with pg_admin_engine.connect() as connection:
        for name in created:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(scope="module")
def pg_module_url(pg_database_factory: Callable[[], str]) -> str:
    """One migrated PostgreSQL database for the whole test module."""
    url = pg_database_factory()
    upgrade(url)
    return url


def _truncate_postgres(url: str) -> None:
    engine = make_engine(url)
    try:
        with engine.begin() as connection:
            connection.execute(text(f"TRUNCATE {', '.join(APP_TABLES)} RESTART IDENTITY CASCADE"))
    finally:
        engine.dispose()


@pytest.fixture(params=BACKENDS)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """URL of a migrated, empty database: a fresh SQLite file, or the module's PostgreSQL database emptied."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'crsbot.sqlite3'}"
        upgrade(url)
        return url
    url = request.getfixturevalue("pg_module_url")
    _truncate_postgres(url)
    return url


@pytest.fixture(params=BACKENDS)
def blank_db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """URL of a database with no schema at all (for migration tests)."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'blank.sqlite3'}"
    factory: Callable[[], str] = request.getfixturevalue("pg_database_factory")
    return factory()


@pytest.fixture
def db_engine(db_url: str) -> Iterator[Engine]:
    engine = make_engine(db_url)
    yield engine
    engine.dispose()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(CLOCK_START)


@pytest.fixture
def store(db_engine: Engine, clock: ManualClock) -> Store:
    return Store(db_engine, clock)
