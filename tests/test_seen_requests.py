"""The replay memory on both databases: a signature is taken once, old rows are pruned."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from sqlalchemy import Engine, func, select

from bot.storage.seen import SeenRequests
from bot.storage.tables import SeenRequestRow
from tests.db_fixtures import db_engine, db_url, pg_admin_engine, pg_database_factory, pg_module_url  # noqa: F401

WINDOW = timedelta(minutes=5)


def _rows(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(SeenRequestRow)).scalar_one())


def test_a_signature_is_taken_once(db_engine: Engine) -> None:  # noqa: F811
    seen = SeenRequests(db_engine, WINDOW)
    assert seen.first_time("v0=" + "a" * 64)
    assert not seen.first_time("v0=" + "a" * 64)
    assert seen.first_time("v0=" + "b" * 64)


def test_rows_older_than_twice_the_window_are_pruned(db_engine: Engine) -> None:  # noqa: F811
    now = datetime.now(timezone.utc)
    old = SeenRequests(db_engine, WINDOW)
    old.first_time("v0=" + "c" * 64, now=now - 3 * WINDOW)
    old.first_time("v0=" + "d" * 64, now=now - WINDOW)
    fresh = SeenRequests(db_engine, WINDOW)  # a new process prunes on its first request
    fresh.first_time("v0=" + "e" * 64, now=now)
    with db_engine.connect() as conn:
        kept = set(conn.execute(select(SeenRequestRow.signature)).scalars())
    assert kept == {"v0=" + "d" * 64, "v0=" + "e" * 64}
    assert _rows(db_engine) == 2
