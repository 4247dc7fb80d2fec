"""The replay memory on both databases: a signature is taken once, old rows are pruned."""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta, timezone
from pathlib import Path

from sqlalchemy import Engine, func, inspect, select

from bot.storage.seen import SeenRequests
from bot.storage.tables import SeenRequestRow
from bot.storage.db import make_engine, upgrade
from tests.db_fixtures import (  # noqa: F401
    blank_db_url, db_engine, db_url, pg_admin_engine, pg_database_factory, pg_module_url)

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


def _on_the_pool_connection(engine: Engine, sql: str) -> None:
    """Run `sql` on the pool's one SQLite connection, which every mark uses."""
    raw = engine.raw_connection()
    try:
        raw.driver_connection.execute(sql)
    finally:
        raw.close()


def test_a_replay_mark_writes_about_one_page(db_engine: Engine) -> None:  # noqa: F811
    """Every Slack request writes a mark, so it touches one B-tree and no other index: on SQLite (WITHOUT
    ROWID: the rows live in the signature's own B-tree) a commit appends about one page to the WAL, where a
    rowid table with a primary-key index and a `seen_at` index appended three."""
    assert inspect(db_engine).get_indexes("seen_requests") == []
    if db_engine.dialect.name != "sqlite":
        return
    seen = SeenRequests(db_engine, WINDOW)
    _on_the_pool_connection(db_engine, "PRAGMA wal_autocheckpoint = 0")  # keep every page this test writes
    for _ in range(40):  # past the first pages of a new table
        assert seen.first_time(f"v0={secrets.token_hex(32)}")
    _on_the_pool_connection(db_engine, "PRAGMA wal_checkpoint(TRUNCATE)")
    wal = Path(str(db_engine.url.database) + "-wal")
    assert wal.stat().st_size == 0
    marks = 100
    for _ in range(marks):
        assert seen.first_time(f"v0={secrets.token_hex(32)}")
    pages = (wal.stat().st_size - 32) / (4096 + 24)  # the WAL header, then a 24-byte header per page
    # About one: a leaf split also writes the new page and its parent (random keys: 1.1-1.4 seen), where
    # the three B-trees wrote 3.2 pages per mark.
    assert pages < 2 * marks, f"{pages / marks:.2f} pages per mark"


def test_marks_taken_before_the_one_page_migration_still_refuse_replays(blank_db_url: str) -> None:  # noqa: F811
    """Migration 0004 rebuilds the table on SQLite: a request marked just before an upgrade is still a replay after it."""
    engine = make_engine(blank_db_url)
    try:
        upgrade(engine, "0003")
        assert SeenRequests(engine, WINDOW).first_time("v0=" + "9" * 64)
        upgrade(engine)
        assert not inspect(engine).get_indexes("seen_requests")
        assert not SeenRequests(engine, WINDOW).first_time("v0=" + "9" * 64)
        assert SeenRequests(engine, WINDOW).first_time("v0=" + "8" * 64)
    finally:
        engine.dispose()
