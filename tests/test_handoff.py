"""The shift handoff: right patients, grades, what is due and the rulebook's next-dose lines; Block Kit limits
for a 30-episode channel; scheduled slots in the site's time zone, posted once by two replicas ticking together
(on SQLite and PostgreSQL)."""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable, Iterator
from datetime import datetime, time, timedelta, timezone
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Engine
from slack_sdk import WebClient

from bot.clock import ManualClock
from bot.episodes.engine import ReminderEngine
from bot.episodes.notifier import SlackNotifier
from bot.episodes.policy import ReminderPolicy
from bot.handlers import reminders as reminder_posts
from bot.episodes.handoff import HandoffSchedule, HandoffScheduler, gather
from bot.handlers.deps import Deps
from bot.handlers.handoff import SlackHandoffPoster
from bot.rulebooks import load_rulebooks
from bot.seal import Sealer
from bot.settings import load_settings
from bot.slack.sender import Sender, make_client
from bot.storage import Store
from bot.storage.db import make_engine, upgrade
from bot.storage.handoffs import HandoffLog
from bot.storage.kinds import ReminderKind
from bot.testing.slack_fake import FakeSlack, RecordedCall
from grading.pipeline import assess_crs, assess_icans
from grading.parse import parse_crs, parse_icans
from messages.blocks import MAX_BLOCKS, MAX_HEADER_CHARS, MAX_SECTION_CHARS
from bot.testing.phone import FOLD, measure_message
from messages.handoff import Handoff, NextDoseLine, PatientSummary, render_handoff
from tests.db_fixtures import CLOCK_START, pg_admin_engine, pg_database_factory  # noqa: F401  (fixtures)

CH = "C0HANDOFF1"
RULEBOOKS = load_rulebooks(None)
SITE = load_settings().site


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(CLOCK_START)


def sqlite_engine(tmp_path: Path) -> Engine:
    engine = make_engine(f"sqlite:///{tmp_path / 'handoff.sqlite3'}")
    upgrade(engine)
    return engine


@pytest.fixture
def store(tmp_path: Path, clock: ManualClock) -> Iterator[Store]:
    engine = sqlite_engine(tmp_path)
    yield Store(engine, clock)
    engine.dispose()


def record(store: Store, text: str, channel: str = CH) -> None:
    """One assessment as the bot records it (parse -> grade -> decide -> store)."""
    if text.startswith("icans "):
        report: Any = assess_icans(text[6:], SITE, RULEBOOKS)
        parsed: Any = parse_icans(text[6:])
        kind = "icans"
    else:
        report, parsed, kind = assess_crs(text, SITE, RULEBOOKS), parse_crs(text), "crs"
    store.record_assessment(channel, parsed.patient, parsed.product or "iv", kind,
                            {"text": text, "parsed": parsed.model_dump(mode="json")}, report.model_dump(mode="json"),
                            report.grade, report.rulebook.id, report.rulebook.version, "U0DOC")


def section_texts(payload: dict[str, Any]) -> list[str]:
    return [b["text"]["text"] for b in payload["blocks"] if b["type"] == "section"]


def words(text: str) -> str:
    """Text as read: the no-break spaces that keep a row's parts whole read as spaces."""
    return text.replace("\u00a0", " ")


def patient_row(payload: dict[str, Any], label: str) -> str:
    found = [words(line) for t in section_texts(payload) for line in t.splitlines() if line.startswith(f"*{label}*")]
    assert len(found) == 1, (label, section_texts(payload))
    return found[0]


def footer(payload: dict[str, Any]) -> str:
    (context,) = [b for b in payload["blocks"] if b["type"] == "context"]
    return words(context["elements"][0]["text"])


def key_lines(payload: dict[str, Any]) -> dict[str, str]:
    """The next-dose key under the list, letter -> "text [SOURCE]" (a source closes the group of lines before it)."""
    lines: dict[str, str] = {}
    group: list[str] = []
    key = footer(payload).split("*Next dose (rulebook):*")[-1]
    for piece in re.split(r"(\*\([a-z]+\)\*|\[[A-Z][A-Za-z0-9-]*\])", key):
        if re.fullmatch(r"\*\([a-z]+\)\*", piece):
            group.append(piece[2:-2])
            lines[group[-1]] = ""
        elif piece.startswith("[") and group:
            for letter in group:
                lines[letter] = f"{lines[letter].strip()} {piece}"
            group = []
        elif group:
            lines[group[-1]] += piece
    return lines


def next_dose_of(payload: dict[str, Any], label: str) -> str:
    """The patient's next-dose lines, written out from the letters of its row."""
    (refs,) = re.findall(r"next dose \(([a-z, ]+)\)", patient_row(payload, label))
    key = key_lines(payload)
    return "\n".join(key[letter] for letter in refs.split(", "))


def as_slack_shows(payload: dict[str, Any]) -> dict[str, Any]:
    """Date tokens as a reader sees them: a time, or a date and time (not the token's source text)."""
    def shown(match: re.Match[str]) -> str:
        fallback = match.group(2).removesuffix(" UTC")
        return fallback[-5:] if match.group(1) == "{time}" else fallback

    out = json.loads(json.dumps(payload))
    for block in out["blocks"]:
        for element in [block] if block["type"] == "section" else block.get("elements", []):
            text = element["text"] if block["type"] == "section" else element
            if isinstance(text, dict) and "text" in text:
                text["text"] = re.sub(r"<!date\^\d+\^([^|]*)\|([^>]*)>", shown, text["text"])
    return out


def test_handoff_says_grades_what_is_due_and_the_rulebook_next_dose_lines(store: Store, clock: ManualClock) -> None:
    record(store, "temp=39 sbp=85 pressor=1 patient=bed12")              # grade 3
    record(store, "icans ice=6 loc=voice patient=bed12")                 # ICANS 2
    record(store, "temp=38.6 o2=2 device=nc sbp=110 patient=bed14")      # grade 2
    record(store, "temp=38.4 sbp=120 pressor=0 o2=ra product=velo patient=bed15")  # grade 1, VELO
    record(store, "temp=38.9 sbp=95 pressor=0 o2=ra patient=bed16")      # grade 1, resolved below
    bed12 = store.find_open_episode(CH, "bed12")
    assert bed12 is not None
    store.schedule_reminder(bed12.id, "reassess", clock.now() + timedelta(minutes=30))
    store.schedule_reminder(bed12.id, "escalation", clock.now() + timedelta(minutes=45))
    clock.advance(timedelta(hours=1))
    store.resolve_episode(CH, "bed16", "U0DOC", RULEBOOKS["iv"].next_dose.hours_for(1))
    clock.advance(timedelta(minutes=10))

    handoff = gather(store, HandoffLog(store.engine, clock), RULEBOOKS, CH, clock.now())
    assert [p.label for p in handoff.patients] == ["bed12", "bed14", "bed15"]
    payload = render_handoff(handoff, timezone.utc)
    bed12_text = patient_row(payload, "bed12")
    assert bed12_text.startswith("*bed12* · IV · CRS 3, worst 3 · ICANS 2, worst 2 · assessed 1 h 10 min ago")
    overdue = int((CLOCK_START + timedelta(minutes=30)).timestamp())
    assert f"reassessment *overdue* since <!date^{overdue}^" in bed12_text
    assert "escalates <!date^" in bed12_text
    bed12_next = next_dose_of(payload, "bed12")
    assert "admitted to hospital for 24 hours. [NCCN-ENGAGE]" in bed12_next   # rulebook: grade 3 next dose
    assert "grade 1 or at baseline for at least 72 hours. [NCCN-ENGAGE]" in bed12_next  # rulebook: ICANS grade 2
    assert "Premedicate before the next dose" in bed12_next and "dose-delay table" in bed12_next
    bed14_text = patient_row(payload, "bed14")
    assert "CRS 2, worst 2" in bed14_text and "ICANS" not in bed14_text and "reassessment" not in bed14_text
    bed14_next = next_dose_of(payload, "bed14")
    assert "only once CRS has been resolved for at least 72 hours. [NCCN-ENGAGE]" in bed14_next
    assert "admitted to hospital" not in bed14_next
    assert patient_row(payload, "bed15").startswith("*bed15* · VELO · CRS 1, worst 1")
    bed15_next = next_dose_of(payload, "bed15")
    assert bed15_next == "Not in this rulebook: see LUNSUMIO VELO USPI section 2. [USPI-VELO]"
    assert "72 h" not in bed15_next, "VELO next-dose timing is not in the rulebook: never the IV numbers"
    assert "Reminders shown: overdue or due within 4 h." in footer(payload)
    (resolved,) = [t for t in section_texts(payload) if t.startswith("*Resolved")]
    until = int((CLOCK_START + timedelta(hours=1 + 72)).timestamp())
    assert "*bed16* (IV, worst 1) resolved" in resolved
    assert f"next dose not before <!date^{until}^" in resolved and "(72 h symptom-free)" in resolved
    assert "clinical judgment" in json.dumps(payload)
    assert payload["text"].startswith("CRS handoff: 3 open episode(s)")


def test_resolved_list_starts_after_the_previous_handoff(store: Store, clock: ManualClock) -> None:
    record(store, "temp=38.9 sbp=95 pressor=0 o2=ra patient=bed1")
    record(store, "temp=38.9 sbp=95 pressor=0 o2=ra patient=bed2")
    store.resolve_episode(CH, "bed1", "U0DOC", 72)
    log = HandoffLog(store.engine, clock)
    clock.advance(timedelta(minutes=5))
    log.posted(log.record_manual(CH, "U0DOC", "test"), "1.1", ["bed2"])
    clock.advance(timedelta(minutes=5))
    store.resolve_episode(CH, "bed2", "U0DOC", 72)
    handoff = gather(store, log, RULEBOOKS, CH, clock.now())
    assert [r.label for r in handoff.resolved] == ["bed2"]
    assert handoff.patients == ()


def slack_deps(store: Store, fake: FakeSlack, timeout: float = 10) -> Deps:
    return Deps(settings=load_settings(), rulebooks=RULEBOOKS, store=store, sealer=Sealer("test"),
                sender=Sender(make_client("xoxb-test", fake.api_url, timeout=timeout)))


def reminder_engine(store: Store, clock: ManualClock, fake: FakeSlack) -> ReminderEngine:
    """The reminder engine as bot/app.py builds it (grade 3: hourly; escalation 15 min after an unanswered
    reminder), posting to the Slack fake."""
    deps = slack_deps(store, fake)
    notifier = SlackNotifier(deps.sender, {kind: (lambda due: reminder_posts.render(deps, due))
                                           for kind in ReminderKind})
    intervals = {1: timedelta(hours=6), 2: timedelta(hours=2), 3: timedelta(hours=1), 4: timedelta(minutes=30)}
    return ReminderEngine(store, clock, notifier, "r1", ReminderPolicy(intervals, timedelta(minutes=15)))


def test_what_is_due_follows_the_reminders_and_escalations(store: Store, clock: ManualClock) -> None:
    """Each reminder state a row can be in: next reassessment within the window, none within it, overdue with
    the escalation booked, escalated and unanswered, and answered."""
    with FakeSlack() as fake:
        reminders = reminder_engine(store, clock, fake)
        try:
            for text, grade in (("temp=39 sbp=85 pressor=1 patient=bed1", 3),
                                ("temp=38.6 o2=2 device=nc sbp=110 patient=bed2", 2),
                                ("temp=38.4 sbp=120 pressor=0 o2=ra patient=bed3", 1)):
                record(store, text)
                episode = store.find_open_episode(CH, text.rsplit("=", 1)[1])
                assert episode is not None
                reminders.schedule_after_assessment(episode.id, grade, "U0DOC")

            def rows() -> dict[str, str]:
                handoff = gather(store, HandoffLog(store.engine, clock), RULEBOOKS, CH, clock.now())
                payload = render_handoff(handoff, timezone.utc)
                return {label: patient_row(payload, label) for label in ("bed1", "bed2", "bed3")}

            def at(delta: timedelta) -> str:
                return f"<!date^{int((CLOCK_START + delta).timestamp())}^{{time}}|"

            clock.advance(timedelta(minutes=10))
            now = rows()
            assert f"next reassessment {at(timedelta(hours=1))}" in now["bed1"]
            assert f"next reassessment {at(timedelta(hours=2))}" in now["bed2"]
            assert "reassessment" not in now["bed3"], "due in 6 h: past the 4 h the handoff looks ahead"
            assert not any("escalat" in row or "overdue" in row for row in now.values())

            clock.advance(timedelta(minutes=50))
            assert [due.episode.patient_label for due in reminders.tick()] == ["bed1"]  # posted, unanswered
            clock.advance(timedelta(minutes=5))
            bed1 = rows()["bed1"]
            assert f"reassessment *overdue* since {at(timedelta(hours=1))}" in bed1
            assert f"escalates {at(timedelta(hours=1, minutes=15))}" in bed1 and " if unanswered · next dose (" in bed1
            assert "next reassessment" not in bed1

            clock.advance(timedelta(minutes=10))
            assert [due.kind for due in reminders.tick()] == ["escalation"]
            bed1 = rows()["bed1"]
            assert f":rotating_light: escalated {at(timedelta(hours=1, minutes=15))}" in bed1
            assert bed1.split(":rotating_light: escalated ")[1].split(" · ")[0].endswith(", unanswered")
            assert "escalates" not in bed1

            bed1_episode = store.find_open_episode(CH, "bed1")
            assert bed1_episode is not None
            reminders.answer(episode_id=bed1_episode.id, user_id="U0DOC", action="ack")
            bed1 = rows()["bed1"]
            assert "escalat" not in bed1 and "overdue" not in bed1
        finally:
            reminders.shutdown()


@pytest.mark.parametrize("episodes", [30, 80])
def test_a_big_channel_stays_within_block_kit_limits(store: Store, clock: ManualClock, episodes: int) -> None:
    for n in range(episodes):
        record(store, f"temp=39 sbp=85 pressor=1 o2=6 device=nc patient=bed{n:03d}")
        record(store, f"icans ice=6 loc=voice patient=bed{n:03d}")
    payload = render_handoff(gather(store, HandoffLog(store.engine, clock), RULEBOOKS, CH, clock.now()), timezone.utc)
    blocks = payload["blocks"]
    assert len(blocks) <= MAX_BLOCKS
    assert len(blocks[0]["text"]["text"]) <= MAX_HEADER_CHARS
    assert all(len(t) <= MAX_SECTION_CHARS for t in section_texts(payload))
    assert len(json.dumps(payload)) < 40_000
    listed = set(re.findall(r"\*(bed\d{3})\*", " ".join(section_texts(payload))))
    assert listed == {f"bed{n:03d}" for n in range(episodes)}, "past the limit patients are named, never dropped"
    with FakeSlack() as fake:  # and Slack (the fake checks the same limits) takes it
        WebClient(token="xoxb-test", base_url=fake.api_url).chat_postMessage(channel=CH, **payload)


def test_hundreds_of_episodes_past_the_block_limit_are_named_not_dropped() -> None:
    """Rows share sections (a phone shows no gap between them), so only a channel of hundreds of episodes reaches
    Slack's 50 blocks: the first ones are shown in full, the others named in one last section."""
    line = NextDoseLine("Give the next dose with the patient admitted to hospital for 24 hours.", "NCCN-ENGAGE")
    patients = tuple(PatientSummary(f"bed{n:04d}", "iv", 3, 3, None, None, CLOCK_START, None, None, None, None,
                                    (line,)) for n in range(2000))
    payload = render_handoff(Handoff(CLOCK_START, None, patients, (), None, timedelta(hours=4)), timezone.utc)
    assert len(payload["blocks"]) <= MAX_BLOCKS
    assert all(len(t) <= MAX_SECTION_CHARS for t in section_texts(payload))
    rows = [r for t in section_texts(payload) for r in t.splitlines() if r.startswith("*bed")]
    (rest,) = [t for t in section_texts(payload) if t.startswith("…and ")]
    named = re.findall(r"\*(bed\d{4})\*", rest)
    assert rows and [r.split("*")[1] for r in rows] + named == [p.label for p in patients]
    assert rest.startswith(f"…and {len(named)} more open episode(s)")
    with FakeSlack() as fake:
        WebClient(token="xoxb-test", base_url=fake.api_url).chat_postMessage(channel=CH, **payload)


def test_five_patients_fit_a_phone(store: Store, clock: ManualClock) -> None:
    for text in ("temp=39 sbp=85 pressor=1 patient=bed1", "temp=38.6 o2=2 device=nc sbp=110 patient=bed2",
                 "temp=38.4 sbp=120 pressor=0 o2=ra patient=bed3", "temp=37.2 masked=yes pressor=2 patient=bed4",
                 "temp=38.4 sbp=120 pressor=0 o2=ra product=velo patient=bed5", "icans ice=6 loc=voice patient=bed1"):
        record(store, text)
    payload = render_handoff(gather(store, HandoffLog(store.engine, clock), RULEBOOKS, CH, clock.now()), timezone.utc)
    page = measure_message(as_slack_shows(payload))  # the 390 px phone model of bot/testing/phone.py
    print(f"\nhandoff of 5 patients: {page.height:.0f} px at 390 px wide ({page.height / FOLD:.2f} screens)")
    assert page.height <= FOLD, f"{page.height:.0f} px: more than one phone screen"
    key = key_lines(payload)  # all of it on that screen: every row, and every next-dose line its letters name
    assert len(key) == 7 and all(next_dose_of(payload, f"bed{n}") for n in range(1, 6))


def test_slots_follow_the_site_time_zone() -> None:
    paris = HandoffSchedule((time(7, 0), time(19, 0)), ZoneInfo("Europe/Paris"))
    winter = datetime(2026, 12, 1, 6, 0, 5, tzinfo=timezone.utc)  # 07:00:05 in Paris
    assert paris.due_slots(winter) == [datetime(2026, 12, 1, 6, 0, tzinfo=timezone.utc)]
    assert paris.due_slots(winter - timedelta(seconds=10)) == []
    assert paris.due_slots(winter + timedelta(hours=2)) == [], "missed by more than the grace period"
    summer = datetime(2026, 7, 1, 17, 30, tzinfo=timezone.utc)  # 19:30 in Paris
    assert paris.due_slots(summer) == [datetime(2026, 7, 1, 17, 0, tzinfo=timezone.utc)]
    late = HandoffSchedule((time(23, 50),), ZoneInfo("UTC"))
    assert late.due_slots(datetime(2026, 12, 2, 0, 10, tzinfo=timezone.utc)) == [
        datetime(2026, 12, 1, 23, 50, tzinfo=timezone.utc)]


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    if request.param == "sqlite":
        made = sqlite_engine(tmp_path)
    else:
        factory: Callable[[], str] = request.getfixturevalue("pg_database_factory")
        made = make_engine(factory())
        upgrade(made)
    yield made
    made.dispose()


SLOT = datetime.combine(CLOCK_START.date(), time(8, 30), tzinfo=timezone.utc)
LEASE = timedelta(minutes=2)


def replica(name: str, store: Store, fake: FakeSlack, clock: ManualClock, timeout: float = 10) -> HandoffScheduler:
    """One replica's scheduler as bot/app.py builds it, posting through the real sender to the Slack fake."""
    deps = slack_deps(store, fake, timeout)
    return HandoffScheduler(HandoffSchedule((SLOT.time(),), ZoneInfo("UTC")), HandoffLog(store.engine, clock),
                            SlackHandoffPoster(deps), clock, name, lease=LEASE,
                            post_timeout=timedelta(seconds=timeout))


def handoff_posts(fake: FakeSlack, channel: str) -> list[RecordedCall]:
    return [c for c in fake.calls_to("chat.postMessage") if c.params.get("channel") == channel
            and str(c.params.get("text", "")).startswith("CRS handoff")]


def test_two_replicas_ticking_together_post_each_slot_once(engine: Engine, clock: ManualClock) -> None:
    store = Store(engine, clock)
    for channel in ("C0WARD1", "C0WARD2"):
        record(store, "temp=39 sbp=85 pressor=1 patient=bed5", channel=channel)
    with FakeSlack() as fake:
        replicas = [replica(name, store, fake, clock) for name in ("a", "b")]
        for _ in range(2):
            assert all(not r.tick() for r in replicas), "nothing before the slot"
        clock.set(SLOT + timedelta(seconds=1))
        fake.fail_next("chat.postMessage", status=500)  # the first post fails: handed back, then posted once
        for _ in range(4):  # several ticks of both replicas, concurrently
            threads = [threading.Thread(target=r.tick) for r in replicas]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            for r in replicas:
                r._done.clear()  # as a restarted replica would: only the database remembers
        for channel in ("C0WARD1", "C0WARD2"):
            assert len([c for c in handoff_posts(fake, channel) if c.ok]) == 1, fake.calls
    assert len([c for c in fake.calls_to("chat.postMessage") if not c.ok]) == 1, "the injected failure happened"
    log = HandoffLog(engine, clock)
    for channel in ("C0WARD1", "C0WARD2"):
        (row,) = log.posts(channel)
        assert row[0] == "2026-03-02T08:30:00+00:00" and row[1] is not None


def test_a_claim_whose_replica_died_is_posted_by_another_after_the_lease(engine: Engine, clock: ManualClock) -> None:
    store = Store(engine, clock)
    record(store, "temp=39 sbp=85 pressor=1 patient=bed5", channel="C0WARD1")
    log = HandoffLog(engine, clock)
    clock.set(SLOT + timedelta(seconds=1))
    dead = log.claim("C0WARD1", SLOT.isoformat(), "dead")  # claimed, then the replica died before posting
    assert dead is not None
    with FakeSlack() as fake:
        replicas = [replica(name, store, fake, clock) for name in ("a", "b")]
        assert [r.tick() for r in replicas] == [[], []], "a claim within its lease is respected"
        clock.advance(LEASE - timedelta(seconds=2))
        assert [r.tick() for r in replicas] == [[], []]
        clock.advance(timedelta(seconds=2))
        assert [r.tick() for r in replicas] == [[("C0WARD1", SLOT.isoformat())], []]
        for _ in range(3):
            clock.advance(LEASE)
            assert [r.tick() for r in replicas] == [[], []]
        (post,) = handoff_posts(fake, "C0WARD1")
        assert "*bed5*" in post.params["blocks"][2]["text"]["text"]
    (row,) = log.posts("C0WARD1")
    assert row[2] == post.response["ts"]
    assert log.reclaim(dead, "dead", clock.now()) is None, "the dead replica, merely slow, cannot take it back"


def test_a_post_that_landed_before_its_replica_died_is_recorded_not_posted_again(engine: Engine,
                                                                                 clock: ManualClock) -> None:
    store = Store(engine, clock)
    record(store, "temp=39 sbp=85 pressor=1 patient=bed5", channel="C0WARD1")
    clock.set(SLOT + timedelta(seconds=1))
    with FakeSlack() as fake:
        # Slack takes the post but answers after the sender has given up: the outcome is unknown to replica a.
        fake.respond_slowly("chat.postMessage", delay=2)
        first = replica("a", store, fake, clock, timeout=1)
        assert first.tick() == []
        (landed,) = handoff_posts(fake, "C0WARD1")
        second = replica("b", store, fake, clock)
        assert second.tick() == [], "handed back, but found in the channel: not posted again"
        clock.advance(LEASE)
        assert first.tick() == [] and second.tick() == []
        assert handoff_posts(fake, "C0WARD1") == [landed]
    log = HandoffLog(engine, clock)
    (row,) = log.posts("C0WARD1")
    assert row[2] == landed.response["ts"]
    (audit,) = [a for a in store.iter_audit() if a.action == "handoff"]
    assert audit.detail["reconciled"] is True


def test_the_notification_text_shows_the_sites_time_not_utc(store: Store, clock: ManualClock) -> None:
    """A phone's notification and a text-only client show the fallback text: the times there are the site's
    (CRSBOT_TIMEZONE), as in `/crs status`, never UTC the team would have to convert at 3 a.m."""
    record(store, "temp=39 sbp=85 pressor=1 patient=bed12")
    record(store, "temp=38.9 sbp=95 pressor=0 o2=ra patient=bed16")
    bed12 = store.find_open_episode(CH, "bed12")
    assert bed12 is not None
    due = clock.now() + timedelta(minutes=30)
    store.schedule_reminder(bed12.id, "reassess", due)
    store.resolve_episode(CH, "bed16", "U0DOC", RULEBOOKS["iv"].next_dose.hours_for(1))
    kolkata = ZoneInfo("Asia/Kolkata")  # UTC+5:30: no time there reads the same as in UTC

    payload = render_handoff(gather(store, HandoffLog(store.engine, clock), RULEBOOKS, CH, clock.now()), kolkata)
    local_due = f"{due.astimezone(kolkata):%H:%M} IST"
    assert local_due in payload["text"], payload["text"]
    assert "UTC" not in payload["text"]
    assert f"{clock.now().astimezone(kolkata):%H:%M} IST" in payload["text"]  # asked for, resolved
    tokens = re.findall(r"<!date\^\d+\^[^|]*\|([^>]*)>", json.dumps(payload["blocks"]))
    assert tokens and all(t.endswith(" IST") for t in tokens)  # each reader still sees their own zone in Slack
    assert "UTC" in render_handoff(gather(store, HandoffLog(store.engine, clock), RULEBOOKS, CH, clock.now()),
                                  timezone.utc)["text"]
