"""Storage: migrations, engines, episodes/assessments, on-call, audit — on SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import io
import json
import multiprocessing
import sqlite3
import threading
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, event, inspect, text
from sqlalchemy.exc import IntegrityError

from bot.clock import ManualClock
from bot.storage import NotFound, Store, export_audit
from bot.storage.db import current_revision, default_database_url, head_revision, make_engine, normalise_url, upgrade
from bot.storage.tables import Base
from grading.pipeline import PatientHistory, PriorEpisode
from tests.db_fixtures import (  # noqa: F401  (fixtures)
    CLOCK_START,
    blank_db_url,
    clock,
    db_engine,
    db_url,
    pg_admin_engine,
    pg_database_factory,
    pg_module_url,
    store,
)

CH = "C0HEME"


def _record(store: Store, label: str | None, grade: int | None, *, product: str = "iv", kind: str = "crs",
            channel: str = CH, user: str = "U1"):
    return store.record_assessment(
        channel_id=channel,
        patient_label=label,
        product=product,
        kind=kind,
        inputs={"text": f"fever 38.9 grade {grade}", "parsed": {"temp_c": 38.9}},
        result={"grade": grade, "why": ["fever"]},
        grade=grade,
        rulebook_id="astct-2019",
        rulebook_version="1.0.0",
        user_id=user,
    )


# ----------------------------------------------------------------- migrations


def test_upgrade_reaches_head_twice_and_matches_models(
    blank_db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # the alembic config must not depend on the cwd
    engine = make_engine(blank_db_url)
    try:
        assert current_revision(engine) is None
        upgrade(engine)
        assert current_revision(engine) == head_revision()
        upgrade(engine)  # idempotent: a restart runs it again
        assert current_revision(engine) == head_revision()
        tables = set(inspect(engine).get_table_names())
        assert {"episodes", "assessments", "reminders", "oncall", "audit", "alembic_version"} <= tables
        index_names = {ix["name"] for ix in inspect(engine).get_indexes("reminders")}
        assert "ix_reminders_status_due_at" in index_names
        with engine.connect() as connection:
            diffs = compare_metadata(MigrationContext.configure(connection, opts={"compare_type": True}),
                                     Base.metadata)
        assert diffs == [], f"migrations and tables.py disagree: {diffs}"
    finally:
        engine.dispose()


def _start_replica(url: str, barrier: Any, outcomes: Any) -> None:
    """Body of a separate process: migrate at the same instant as the others, report the outcome."""
    engine = make_engine(url)
    try:
        barrier.wait(timeout=60)
        upgrade(engine)
        outcomes.put("ok")
    except BaseException as exc:  # noqa: BLE001 - reported to the parent
        outcomes.put(f"{type(exc).__name__}: {exc}")
    finally:
        engine.dispose()


def test_concurrent_upgrades_in_separate_processes_do_not_fail(blank_db_url: str) -> None:
    """Replicas starting at the same moment all migrate (or find it done) without errors.

    Real processes, not threads: without the advisory lock this fails on
    PostgreSQL with duplicate-key errors from concurrent CREATE TABLE.
    """
    ctx = multiprocessing.get_context("spawn")
    starters = 4
    barrier = ctx.Barrier(starters)
    outcomes = ctx.Queue()
    processes = [ctx.Process(target=_start_replica, args=(blank_db_url, barrier, outcomes)) for _ in range(starters)]
    for p in processes:
        p.start()
    results = [outcomes.get(timeout=120) for _ in processes]
    for p in processes:
        p.join(timeout=30)
    assert results == ["ok"] * starters
    assert current_revision(blank_db_url) == head_revision()


def test_url_normalisation_and_default_sqlite_location(tmp_path: Path) -> None:
    assert normalise_url("postgres://u:p@db:5432/crs").drivername == "postgresql+psycopg"
    assert normalise_url("postgresql://u@db/crs").drivername == "postgresql+psycopg"
    assert normalise_url("postgresql+psycopg://u@db/crs").render_as_string() == "postgresql+psycopg://u@db/crs"
    assert normalise_url("sqlite:///x.sqlite3").drivername == "sqlite"
    data_dir = tmp_path / "not-yet" / "data"
    assert default_database_url(data_dir) == f"sqlite:///{data_dir}/crsbot.sqlite3"
    engine = make_engine(data_dir=data_dir)
    try:
        upgrade(engine)
        assert (data_dir / "crsbot.sqlite3").is_file()
    finally:
        engine.dispose()


def test_sqlite_runs_in_wal_with_busy_timeout_and_foreign_keys(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'w.sqlite3'}")
    try:
        with engine.connect() as connection:
            assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert connection.exec_driver_sql("PRAGMA busy_timeout").scalar() >= 5000
            assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    finally:
        engine.dispose()
    # Another plain sqlite3 client sees the file is WAL too (it is a property of the file).
    raw = sqlite3.connect(tmp_path / "w.sqlite3")
    try:
        assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        raw.close()


def test_database_rejects_unknown_status_values(db_engine: Engine, store: Store) -> None:
    """CHECK constraints guard the schema even against code that bypasses the Store."""
    episode = _record(store, "Bed 4", 1).episode
    assert episode is not None
    with pytest.raises(IntegrityError):
        with db_engine.begin() as connection:
            connection.execute(text("UPDATE episodes SET status = 'closed' WHERE id = :id"), {"id": episode.id})
    assert store.get_episode(episode.id).status == "open"  # type: ignore[union-attr]


# ---------------------------------------------------------- datetimes and time


def test_timestamps_round_trip_as_aware_utc(db_url: str, store: Store, clock: ManualClock) -> None:
    clock.set(datetime(2026, 6, 1, 14, 30, 15, 123456, tzinfo=timezone(timedelta(hours=2))))
    recorded = _record(store, "Bed 7", 2)
    assert recorded.episode is not None
    # Read back through a different engine so nothing comes from an in-memory object.
    other = make_engine(db_url)
    try:
        fresh = Store(other, clock).get_episode(recorded.episode.id)
    finally:
        other.dispose()
    assert fresh is not None
    assert fresh.opened_at.tzinfo is not None and fresh.opened_at.utcoffset() == timedelta(0)
    assert fresh.opened_at == datetime(2026, 6, 1, 12, 30, 15, 123456, tzinfo=timezone.utc)
    with pytest.raises(ValueError, match="naive"):
        store.schedule_reminder(recorded.episode.id, "reassess", datetime(2026, 6, 1, 13, 0))


# ------------------------------------------------------ episodes & assessments


def test_assessments_open_then_join_an_episode_and_track_worst_grade(store: Store, clock: ManualClock) -> None:
    first = _record(store, "Bed 12", 1)
    assert first.is_new_episode and first.episode is not None
    assert first.assessment.episode_id == first.episode.id
    assert (first.episode.current_grade, first.episode.worst_grade) == (1, 1)

    clock.advance(timedelta(hours=1))
    second = _record(store, "  Bed   12 ", 3)  # same patient despite spacing
    assert not second.is_new_episode
    assert second.episode is not None and second.episode.id == first.episode.id
    assert (second.episode.current_grade, second.episode.worst_grade) == (3, 3)

    clock.advance(timedelta(hours=1))
    third = _record(store, "Bed 12", 1)
    assert (third.episode.current_grade, third.episode.worst_grade) == (1, 3)  # type: ignore[union-attr]

    ungraded = _record(store, "Bed 12", None)
    assert (ungraded.episode.current_grade, ungraded.episode.worst_grade) == (1, 3)  # type: ignore[union-attr]

    icans = _record(store, "Bed 12", 4, kind="icans")
    assert icans.assessment.grade == 4 and icans.assessment.kind == "icans"
    assert (icans.episode.current_grade, icans.episode.worst_grade) == (1, 3)  # type: ignore[union-attr]

    other_patient = _record(store, "Bed 13", 2)
    assert other_patient.is_new_episode and other_patient.episode.id != first.episode.id  # type: ignore[union-attr]
    other_channel = _record(store, "Bed 12", 2, channel="C0OTHER")
    assert other_channel.is_new_episode

    assert [e.patient_label for e in store.open_episodes(CH)] == ["Bed 12", "Bed 13"]


def test_assessment_without_label_has_no_episode(store: Store) -> None:
    recorded = _record(store, None, 2)
    blank = _record(store, "   ", 2)
    for r in (recorded, blank):
        assert r.episode is None and not r.is_new_episode
        assert r.assessment.episode_id is None
    assert store.open_episodes(CH) == []
    assert recorded.assessment.inputs["parsed"] == {"temp_c": 38.9}


def test_unknown_product_or_kind_is_refused(store: Store) -> None:
    with pytest.raises(ValueError, match="product"):
        _record(store, "Bed 1", 1, product="subq")
    with pytest.raises(ValueError, match="kind"):
        _record(store, "Bed 1", 1, kind="hlh")
    assert store.open_episodes(CH) == []


def test_patient_history_offers_the_last_resolved_episode_per_product(store: Store, clock: ManualClock) -> None:
    first = _record(store, "Bed 12", 2).episode
    assert first is not None
    assert store.patient_history(CH, "Bed 12") == PatientHistory("iv", {})
    clock.advance(timedelta(hours=6))
    resolved = store.resolve_episode(CH, "Bed 12", "U2", symptom_free_hours=72)
    assert resolved is not None and resolved.status == "resolved" and resolved.resolved_by == "U2"
    assert store.patient_history(CH, "Bed 12") == PatientHistory(None, {"iv": PriorEpisode(first.id, 2)})

    clock.advance(timedelta(days=2))
    again = store.record_assessment(CH, "Bed 12", "iv", "crs", {}, {}, 2, "rb", "1", "U1", recurrent_of=first.id)
    assert again.is_new_episode and again.episode is not None and again.episode.id != first.id
    assert again.episode.recurrent_of == first.id, "linked in the same write"
    assert again.episode.worst_grade == 2  # a new episode starts its own worst grade

    # A different product for the same label is a different course, with its own last episode.
    store.resolve_episode(CH, "Bed 12", "U2", symptom_free_hours=72)
    velo = _record(store, "Bed 12", 1, product="velo")
    history = store.patient_history(CH, "Bed 12")
    assert history.open_product == "velo"
    assert history.last_resolved == {"iv": PriorEpisode(again.episode.id, 2)}
    assert velo.is_new_episode
    assert store.patient_history(CH, "Bed 404") == PatientHistory() == store.patient_history("C0OTHER", "Bed 12")


def test_recording_restarts_the_cadence_in_the_same_transaction(store: Store, clock: ManualClock,
                                                                db_engine: Engine) -> None:
    first = _record(store, "Bed 31", 2).episode
    assert first is not None
    store.schedule_reminder(first.id, "reassess", clock.now() + timedelta(hours=2))
    store.schedule_reminder(first.id, "escalation", clock.now() + timedelta(hours=3))
    commits: list[object] = []

    def count(connection: object) -> None:
        commits.append(connection)
    event.listen(db_engine, "commit", count)
    try:
        due = clock.now() + timedelta(hours=1)
        again = store.record_assessment(CH, "Bed 31", "iv", "crs", {}, {}, 3, "rb", "1", "U4",
                                        restart_cadence=True, next_reassess_at=due)
    finally:
        event.remove(db_engine, "commit", count)
    assert len(commits) == 1, "one write per assessment"
    assert again.next_reminder is not None and again.next_reminder.due_at == due
    pending = store.reminders(episode_id=first.id, status="pending")
    assert [(r.kind, r.due_at) for r in pending] == [("reassess", due)]
    assert {r.kind for r in store.reminders(episode_id=first.id, status="cancelled")} == {"reassess", "escalation"}
    grade_zero = store.record_assessment(CH, "Bed 31", "iv", "crs", {}, {}, 0, "rb", "1", "U4",
                                         restart_cadence=True, next_reassess_at=None)
    assert grade_zero.next_reminder is None and store.reminders(episode_id=first.id, status="pending") == []


def test_resolve_cancels_reminders_and_books_symptom_free_notice(store: Store, clock: ManualClock) -> None:
    episode = _record(store, "Bed 9", 2).episode
    assert episode is not None
    store.schedule_reminder(episode.id, "reassess", clock.now() + timedelta(hours=2))
    store.schedule_reminder(episode.id, "escalation", clock.now() + timedelta(minutes=15))
    clock.advance(timedelta(minutes=5))

    resolved = store.resolve_episode(CH, "Bed 9", "U3", symptom_free_hours=72)
    assert resolved is not None
    assert resolved.resolved_at == clock.now()
    assert resolved.symptom_free_until == clock.now() + timedelta(hours=72)
    by_kind = {r.kind: r for r in store.reminders(episode.id)}
    assert by_kind["reassess"].status == "cancelled"
    assert by_kind["escalation"].status == "cancelled"
    assert by_kind["symptom_free"].status == "pending"
    assert by_kind["symptom_free"].due_at == clock.now() + timedelta(hours=72)
    assert store.open_episodes(CH) == []

    assert store.resolve_episode(CH, "Bed 9", "U3", symptom_free_hours=72) is None
    assert store.resolve_episode(CH, "Nobody", "U3", symptom_free_hours=72) is None
    resolves = [a for a in store.iter_audit() if a.action == "resolve"]
    assert len(resolves) == 1 and resolves[0].detail["cancelled_reminders"] == 2


def test_resolve_without_symptom_free_hours_books_no_notice(store: Store, clock: ManualClock) -> None:
    """Rulebooks without a symptom-free interval: resolve, but promise nothing."""
    episode = _record(store, "Bed 10", 1).episode
    assert episode is not None
    reassess = store.schedule_reminder(episode.id, "reassess", clock.now() + timedelta(hours=4))
    resolved = store.resolve_episode_by_id(episode.id, "U3", None)
    assert resolved is not None and resolved.status == "resolved" and resolved.symptom_free_until is None
    assert [(r.id, r.status) for r in store.reminders(episode.id)] == [(reassess.id, "cancelled")]
    assert store.resolve_episode_by_id(episode.id, "U3", None) is None  # already resolved
    _record(store, "Bed 11", 1)
    with pytest.raises(ValueError, match="negative"):
        store.resolve_episode(CH, "Bed 11", "U3", -1)
    assert store.find_open_episode(CH, "Bed 11") is not None  # the failed resolve left nothing half-done


def test_cancel_reminder_only_cancels_pending_ones(store: Store, clock: ManualClock) -> None:
    episode = _record(store, "Bed 12", 2).episode
    assert episode is not None
    first = store.schedule_reminder(episode.id, "reassess", clock.now() + timedelta(hours=2))
    second = store.schedule_reminder(episode.id, "symptom_free", clock.now() + timedelta(hours=72))
    assert store.cancel_reminder(second.id) is True
    assert store.cancel_reminder(second.id) is False  # already cancelled
    assert store.cancel_reminder(999_999) is False
    assert [(r.id, r.status) for r in store.reminders(episode.id)] == [(first.id, "pending"), (second.id, "cancelled")]


def test_concurrent_first_assessments_share_one_episode(db_url: str, clock: ManualClock) -> None:
    """Two replicas grading a new patient at the same moment must not open two episodes."""
    engines = [make_engine(db_url), make_engine(db_url)]
    stores = [Store(e, clock) for e in engines]
    per_store = 4
    barrier = threading.Barrier(per_store * len(stores))
    results: list[int | None] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def grade(s: Store) -> None:
        try:
            barrier.wait()
            recorded = _record(s, "Bed 30", 2)
            with lock:
                results.append(recorded.episode.id if recorded.episode else None)
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=grade, args=(s,)) for s in stores for _ in range(per_store)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        assert errors == []
        assert len(results) == per_store * len(stores)
        assert len(set(results)) == 1
        (history,) = stores[0].episode_history(CH, "Bed 30")
        assert len(history.assessments) == per_store * len(stores)
    finally:
        for e in engines:
            e.dispose()


def test_history_lists_episodes_with_assessments_in_time_order(store: Store, clock: ManualClock) -> None:
    a1 = _record(store, "Bed 5", 1)
    clock.advance(timedelta(minutes=30))
    a2 = _record(store, "Bed 5", 2)
    store.resolve_episode(CH, "Bed 5", "U1", symptom_free_hours=72)
    clock.advance(timedelta(days=1))
    a3 = _record(store, "Bed 5", 1)
    _record(store, "Bed 6", 3)

    history = store.episode_history(CH, "Bed 5")
    assert [h.episode.status for h in history] == ["resolved", "open"]
    assert [a.id for a in history[0].assessments] == [a1.assessment_id, a2.assessment_id]
    assert [a.id for a in history[1].assessments] == [a3.assessment_id]
    assert history[0].assessments[1].result == {"grade": 2, "why": ["fever"]}
    assert store.episode_history(CH, "Bed 404") == []


def test_thread_and_message_ts_are_stored(store: Store) -> None:
    recorded = _record(store, "Bed 2", 1)
    assert recorded.episode is not None
    store.set_episode_thread(recorded.episode.id, "1700000000.000100")
    store.set_assessment_message(recorded.assessment_id, "1700000000.000200")
    assert store.get_episode(recorded.episode.id).thread_ts == "1700000000.000100"  # type: ignore[union-attr]
    (history,) = store.episode_history(CH, "Bed 2")
    assert history.assessments[0].message_ts == "1700000000.000200"
    with pytest.raises(NotFound):
        store.set_episode_thread(999_999, "1")
    with pytest.raises(NotFound):
        store.set_assessment_message(999_999, "1")
    assert store.get_episode(999_999) is None


def test_message_ts_and_a_new_thread_are_set_together_and_a_thread_never_moves(store: Store) -> None:
    first = _record(store, "Bed 3", 1)
    assert first.episode is not None
    store.set_message_ts(first.assessment_id, "1700000000.000300", first.episode.id)
    later = _record(store, "Bed 3", 2)
    store.set_message_ts(later.assessment_id, "1700000000.000400", first.episode.id)
    assert store.get_episode(first.episode.id).thread_ts == "1700000000.000300"  # type: ignore[union-attr]
    (history,) = store.episode_history(CH, "Bed 3")
    assert [a.message_ts for a in history.assessments] == ["1700000000.000300", "1700000000.000400"]


# -------------------------------------------------------------- on-call & audit


def test_oncall_is_set_replaced_and_audited(store: Store, clock: ManualClock) -> None:
    assert store.get_oncall(CH) is None
    first = store.set_oncall(CH, "<@U123>", "U1")
    assert first.target == "<@U123>" and first.set_at == clock.now()
    clock.advance(timedelta(hours=8))
    store.set_oncall(CH, "<!subteam^S999>", "U2")
    current = store.get_oncall(CH)
    assert current is not None
    assert (current.target, current.set_by, current.set_at) == ("<!subteam^S999>", "U2", clock.now())
    assert store.get_oncall("C0OTHER") is None
    changes = [a.detail for a in store.iter_audit() if a.action == "oncall_set"]
    chain = {"secondary": None, "secondary_after_seconds": None, "channel_after_seconds": None, "repeat_seconds": None}
    assert changes == [{"target": "<@U123>", "previous": None, **chain},
                       {"target": "<!subteam^S999>", "previous": "<@U123>", **chain}]


def test_iter_audit_pages_and_filters_by_time(store: Store, clock: ManualClock) -> None:
    for i in range(7):
        store.audit("command", CH, f"U{i}", detail={"text": f"/crs status {i}"})
        clock.advance(timedelta(minutes=1))
    entries = list(store.iter_audit(batch_size=3))
    assert [e.user_id for e in entries] == [f"U{i}" for i in range(7)]
    assert [e.id for e in entries] == sorted(e.id for e in entries)
    since = CLOCK_START + timedelta(minutes=5)
    assert [e.user_id for e in store.iter_audit(since, batch_size=2)] == ["U5", "U6"]


def test_export_audit_writes_valid_csv_and_json_lines(store: Store) -> None:
    _record(store, "Bed 1", 2)
    store.audit("command", CH, "U1", "Bed 1", {"text": 'grade "fever, 39.1"\nhypotension', "note": "é ✓"})
    store.set_oncall(CH, "<@U9>", "U1")
    expected = list(store.iter_audit())
    assert len(expected) == 3

    csv_out = io.StringIO()
    assert export_audit(store, "csv", csv_out) == 3
    rows = list(csv.DictReader(io.StringIO(csv_out.getvalue())))
    assert [r["action"] for r in rows] == ["grade", "command", "oncall_set"]
    assert json.loads(rows[1]["detail"]) == {"text": 'grade "fever, 39.1"\nhypotension', "note": "é ✓"}
    assert datetime.fromisoformat(rows[0]["at"]) == expected[0].at
    assert rows[1]["patient_label"] == "Bed 1"

    jsonl_out = io.StringIO()
    assert export_audit(store, "jsonl", jsonl_out) == 3
    lines = jsonl_out.getvalue().splitlines()
    parsed = [json.loads(line) for line in lines]
    assert [p["id"] for p in parsed] == [e.id for e in expected]
    assert parsed[0]["detail"]["grade"] == 2
    assert parsed[2]["detail"]["target"] == "<@U9>"

    with pytest.raises(ValueError, match="format"):
        export_audit(store, "xml", io.StringIO())  # type: ignore[arg-type]


def test_the_driver_level_inserts_store_what_sqlalchemy_would(db_engine: Engine, store: Store,
                                                               clock: ManualClock) -> None:
    """An assessment's two rows go through the driver's cursor (bot/storage/compiled.py), not SQLAlchemy's
    execution layers; each column still goes through its type, so the rows read back exactly as rows
    written by SQLAlchemy itself do: JSON as JSON (JSONB on PostgreSQL), times as aware UTC."""
    from sqlalchemy import insert, select

    from bot.storage.tables import AssessmentRow, AuditRow

    inputs = {"text": "temp=39 sbp=85", "parsed": {"temp_c": 39.0, "note": "Température ✓", "list": [1, None]}}
    result = {"grade": 2, "why": ["fever", "hypotension"], "at_least": False}
    recorded = store.record_assessment("C0RT1", None, "iv", "crs", inputs, result, 2, "astct-2019", "1.2.3", "U1")
    table = AssessmentRow.__table__
    with db_engine.begin() as conn:
        reference = conn.execute(insert(table).returning(table.c.id), {
            "episode_id": None, "channel_id": "C0RT1", "kind": "crs", "inputs_json": inputs, "result_json": result,
            "grade": 2, "rulebook_id": "astct-2019", "rulebook_version": "1.2.3", "user_id": "U1",
            "created_at": clock.now()}).scalar_one()
    with db_engine.connect() as conn:
        ours, theirs = (conn.execute(select(table).where(table.c.id == i)).one()._asdict()
                        for i in (recorded.assessment_id, reference))
        if db_engine.dialect.name == "postgresql":
            types = conn.exec_driver_sql(
                "SELECT jsonb_typeof(inputs_json), pg_typeof(inputs_json)::text FROM assessments WHERE id = %s",
                (recorded.assessment_id,)).one()
            assert tuple(types) == ("object", "jsonb")
    assert {k: v for k, v in ours.items() if k != "id"} == {k: v for k, v in theirs.items() if k != "id"}
    assert ours["inputs_json"] == inputs and ours["created_at"] == clock.now()
    assert ours["created_at"].tzinfo is not None
    (audit,) = [e for e in store.iter_audit() if e.action == "grade"]
    assert audit.detail["assessment_id"] == recorded.assessment_id and audit.at == clock.now()
    assert audit.detail["inputs"] == inputs["parsed"]


def test_a_stored_report_reads_back_as_the_same_report(db_engine: Engine, store: Store) -> None:
    """JSON columns are written by pydantic-core's encoder (bot/storage/db.py): a real report, with its
    floats, nulls and tuples, reads back equal and validates as the report it was, so the Details button
    shows what was decided then. On SQLite the text is compact JSON (json.dumps wrote spaced separators,
    at three times the CPU)."""
    from bot.rulebooks import load_rulebooks
    from bot.settings import load_settings
    from grading.models import stored_report
    from grading.pipeline import assess_crs_case

    settings = load_settings()
    report = assess_crs_case("temp=38.6 sbp=85 pressor=1 o2=4 device=nc patient=bed12", settings.site,
                             load_rulebooks(settings.rulebook)).report
    stored = report.model_dump(mode="json")
    recorded = store.record_assessment("C0RT2", "bed12", "iv", "crs", {"text": "t", "parsed": stored["input"]},
                                       stored, report.grade, "astct-2019", "1", "U1")
    back = store.assessment_result(recorded.assessment_id, "C0RT2")
    assert back == stored
    assert stored_report(back) == report
    if db_engine.dialect.name == "sqlite":
        with db_engine.connect() as conn:
            raw = conn.exec_driver_sql("SELECT result_json FROM assessments WHERE id = ?",
                                       (recorded.assessment_id,)).scalar_one()
        assert raw == json.dumps(stored, ensure_ascii=False, separators=(",", ":"))
