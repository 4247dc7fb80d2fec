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


def test_only_the_replay_mark_skips_the_disk_flush(db_engine: Engine) -> None:  # noqa: F811
    """Taking a request commits without waiting for the disk (on SQLite that flush was two thirds of its
    CPU and three quarters of its time, in front of every ack); the connection goes back to the pool as
    durable as it came, so assessments and the audit trail still wait for the disk."""
    seen = SeenRequests(db_engine, WINDOW)
    statements: list[str] = []
    if db_engine.dialect.name == "sqlite":
        raw = db_engine.raw_connection()
        durable = raw.driver_connection.execute("PRAGMA synchronous").fetchone()[0]
        raw.driver_connection.set_trace_callback(statements.append)
        raw.close()
        assert durable >= 2, "bot/storage/db.py leaves SQLite at FULL: every commit waits for the disk"
    assert seen.first_time("v0=" + "f" * 64)
    assert not seen.first_time("v0=" + "f" * 64)
    with db_engine.connect() as conn:
        if db_engine.dialect.name == "sqlite":
            assert conn.exec_driver_sql("PRAGMA synchronous").scalar_one() == durable
            inserts = [i for i, s in enumerate(statements) if s.startswith("INSERT INTO seen_requests")]
            assert len(inserts) == 2
            for i in inserts:
                assert statements[i - 1] == "PRAGMA synchronous = 1"
                assert statements[i + 1] == f"PRAGMA synchronous = {durable}"
        else:
            assert conn.exec_driver_sql("SHOW synchronous_commit").scalar_one() == "on"
    assert _rows(db_engine) == 1
