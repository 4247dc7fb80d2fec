"""Reminder engine: cadence, escalation chain, symptom-free notice, catch-up, retries, exactly-once.

Time is a ManualClock, so hours pass instantly. The notifier stands in for Slack (an external
system): it records each post with its metadata and returns a fake ts; `posted()` lists them back
the way the engine reads a thread before re-posting.
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import text

from bot.clock import ManualClock
from bot.episodes.engine import DueReminder, EngineObserver, ReminderEngine, format_intervals, parse_intervals
from bot.episodes.policy import ReminderPolicy
from bot.storage import Episode, Store
from bot.storage.kinds import ReminderStatus
from bot.storage.db import make_engine
from tests.db_fixtures import (  # noqa: F401  (fixtures)
    CLOCK_START,
    _truncate_postgres,
    clock,
    db_engine,
    db_url,
    pg_admin_engine,
    pg_database_factory,
    pg_module_url,
    store,
)

CH = "C0HEME"
INTERVALS = {1: timedelta(hours=4), 2: timedelta(hours=2), 3: timedelta(hours=1), 4: timedelta(minutes=30)}
ESCALATE_AFTER = timedelta(minutes=15)
T0 = CLOCK_START


class FakeSlack:
    """Records every post; optionally fails the first `fail_first` posts (or all of them)."""

    def __init__(self, fail_first: int = 0, *, always_fail: bool = False, jitter: float = 0.0) -> None:
        self.posts: list[DueReminder] = []
        self.metadata: list[tuple[str, dict]] = []
        self.calls = 0
        self.fail_first = fail_first
        self.always_fail = always_fail
        self.jitter = jitter
        self.on_post: Callable[[DueReminder], None] | None = None
        self._lock = threading.Lock()

    def posted(self, due: DueReminder) -> list[tuple[str, dict]]:
        with self._lock:
            return list(self.metadata)

    def post(self, due: DueReminder, metadata: dict) -> str:
        with self._lock:
            self.calls += 1
            call = self.calls
        if self.jitter:
            time.sleep(random.uniform(0, self.jitter))  # widen race windows between replicas
        if self.always_fail or call <= self.fail_first:
            raise ConnectionError(f"slack unreachable (call {call})")
        if self.on_post is not None:
            self.on_post(due)
        with self._lock:
            self.posts.append(due)
            ts = f"ts-{len(self.posts)}"
            self.metadata.append((ts, metadata))
            return ts


def make_reminder_engine(store: Store, clock: ManualClock, slack: FakeSlack, replica: str = "r1",
                         **kwargs: object) -> ReminderEngine:
    return ReminderEngine(store, clock, slack, replica, ReminderPolicy(INTERVALS, ESCALATE_AFTER),  # type: ignore[arg-type]
                          **kwargs)


@pytest.fixture
def slack() -> FakeSlack:
    return FakeSlack()


@pytest.fixture
def engine(store: Store, clock: ManualClock, slack: FakeSlack) -> Iterator[ReminderEngine]:
    eng = make_reminder_engine(store, clock, slack)
    yield eng
    eng.shutdown()


def graded(store: Store, engine: ReminderEngine, label: str, grade: int | None, user: str = "U1") -> Episode:
    """What the Slack layer does for a graded message: record it, then (re)schedule the reminders."""
    recorded = store.record_assessment(CH, label, "iv", "crs", {"text": "t"}, {"grade": grade}, grade,
                                       "astct-2019", "1.0.0", user)
    assert recorded.episode is not None
    engine.schedule_after_assessment(recorded.episode.id, grade, user)
    return recorded.episode


def pending(store: Store, episode_id: int) -> list[tuple[str, object]]:
    return [(r.kind, r.due_at) for r in store.reminders(episode_id, "pending")]


# ------------------------------------------------------------ parse_intervals


def test_parse_intervals_reads_grades_and_units() -> None:
    assert parse_intervals("1=4h,2=2h,3=1h,4=30m") == INTERVALS
    assert parse_intervals(" 1 = 90s , 2=1.5h ") == {1: timedelta(seconds=90), 2: timedelta(minutes=90)}


@pytest.mark.parametrize(
    ("spec", "named"),
    [
        ("", "empty"),
        ("1=4h,,2=2h", "stray comma"),
        ("1=4h,2=2x", "'2=2x'"),
        ("1=4h,two=2h", "'two=2h'"),
        ("1=4", "'1=4'"),
        ("0=1h", "'0=1h'"),
        ("1=0m", "'1=0m'"),
        ("1=4h,1=2h", "'1=2h'"),
        ("1=-4h", "'1=-4h'"),
    ],
)
def test_parse_intervals_names_the_bad_part(spec: str, named: str) -> None:
    with pytest.raises(ValueError) as excinfo:
        parse_intervals(spec)
    assert named in str(excinfo.value)


@given(st.dictionaries(st.integers(1, 9), st.integers(1, 10_000).map(lambda s: timedelta(seconds=s)), min_size=1))
def test_format_and_parse_intervals_round_trip(intervals: dict[int, timedelta]) -> None:
    assert parse_intervals(format_intervals(intervals)) == intervals


def test_engine_refuses_unusable_configuration(store: Store, clock: ManualClock, slack: FakeSlack) -> None:
    with pytest.raises(ValueError, match="interval"):
        ReminderPolicy({}, ESCALATE_AFTER)
    with pytest.raises(ValueError, match="escalate_after"):
        ReminderPolicy(INTERVALS, timedelta(0))
    with pytest.raises(ValueError, match="lease"):
        make_reminder_engine(store, clock, slack, lease=timedelta(seconds=5), post_timeout=timedelta(seconds=10))


# -------------------------------------------------------------------- cadence


def test_grade_2_reminds_at_2h_and_repeats_from_each_post(
    store: Store, engine: ReminderEngine, clock: ManualClock, slack: FakeSlack
) -> None:
    episode = graded(store, engine, "Bed 1", 2)
    assert pending(store, episode.id) == [("reassess", T0 + timedelta(hours=2))]

    clock.advance(timedelta(hours=2) - timedelta(seconds=1))
    assert engine.tick() == []
    clock.advance(timedelta(seconds=1))
    (first,) = engine.tick()
    assert (first.kind, first.late_by, first.coalesced, first.episode.id) == ("reassess", timedelta(0), 0, episode.id)
    sent = store.get_reminder(first.reminder.id)
    assert sent is not None and (sent.status, sent.message_ts, sent.sent_at) == ("sent", "ts-1", T0 + timedelta(hours=2))
    assert pending(store, episode.id) == [
        ("escalation", T0 + timedelta(hours=2, minutes=15)),
        ("reassess", T0 + timedelta(hours=4)),
    ]
    engine.answer(reminder_id=first.reminder.id, user_id="U2", action="reassessed")

    # The next tick happens 10 minutes late: the following reminder counts from this post, not from 4h.
    clock.set(T0 + timedelta(hours=4, minutes=10))
    (second,) = engine.tick()
    assert second.late_by == timedelta(minutes=10)
    assert store.get_reminder(second.reminder.id).late_by_seconds == 600  # type: ignore[union-attr]
    assert ("reassess", T0 + timedelta(hours=6, minutes=10)) in pending(store, episode.id)
    assert [p.reminder.id for p in slack.posts] == [first.reminder.id, second.reminder.id]
    sent_audit = [a for a in store.iter_audit() if a.action == "reminder_sent"]
    assert [a.detail["reminder_id"] for a in sent_audit] == [first.reminder.id, second.reminder.id]


def test_new_assessment_reschedules_and_cancels_escalation(
    store: Store, engine: ReminderEngine, clock: ManualClock, slack: FakeSlack
) -> None:
    episode = graded(store, engine, "Bed 2", 2)
    clock.advance(timedelta(hours=2))
    (post,) = engine.tick()
    clock.advance(timedelta(minutes=5))
    graded(store, engine, "Bed 2", 3, user="U7")  # worse: hourly now

    assert pending(store, episode.id) == [("reassess", T0 + timedelta(hours=3, minutes=5))]
    answered = store.get_reminder(post.reminder.id)
    assert answered is not None and (answered.status, answered.answered_by) == ("answered", "U7")
    clock.advance(timedelta(minutes=15))
    assert engine.tick() == []  # the escalation was cancelled by the new assessment
    clock.set(T0 + timedelta(hours=3, minutes=5))
    (next_post,) = engine.tick()
    assert next_post.kind == "reassess"
    assert len(slack.posts) == 2


def test_grade_0_schedules_nothing_and_cancels_the_pending_reassess(
    store: Store, engine: ReminderEngine, clock: ManualClock
) -> None:
    episode = graded(store, engine, "Bed 3", 1)
    assert pending(store, episode.id) == [("reassess", T0 + timedelta(hours=4))]
    clock.advance(timedelta(hours=1))
    assert engine.schedule_after_assessment(episode.id, 0) is None
    assert pending(store, episode.id) == []
    assert [r.status for r in store.reminders(episode.id)] == ["cancelled"]
    clock.advance(timedelta(hours=12))
    assert engine.tick() == []
    assert engine.schedule_after_assessment(episode.id, None) is None
    assert pending(store, episode.id) == []


def test_snooze_asks_again_in_15_minutes_and_never_pulls_a_later_reminder_forward(
    store: Store, engine: ReminderEngine, clock: ManualClock, slack: FakeSlack
) -> None:
    episode = graded(store, engine, "Bed 4", 2)
    clock.advance(timedelta(hours=2))
    (post,) = engine.tick()
    clock.advance(timedelta(minutes=3))
    outcome = engine.answer(reminder_id=post.reminder.id, user_id="U2", action="snooze")
    snoozed_until = T0 + timedelta(hours=2, minutes=18)
    assert outcome.snoozed_until == snoozed_until
    assert outcome.answered_ids == (post.reminder.id,)
    # The escalation is gone; the 4 h reassess stays where it was (a snooze never moves anything earlier).
    assert pending(store, episode.id) == [("reassess", snoozed_until), ("reassess", T0 + timedelta(hours=4))]

    clock.set(snoozed_until - timedelta(seconds=1))
    assert engine.tick() == []
    clock.set(snoozed_until)
    (again,) = engine.tick()
    assert again.kind == "reassess" and again.reminder.due_at == snoozed_until
    assert [p.kind for p in slack.posts] == ["reassess", "reassess"]
    clock.set(snoozed_until + timedelta(minutes=1))
    # Snoozing the re-ask defers it again; the 4 h one is still not pulled forward.
    engine.answer(reminder_id=again.reminder.id, user_id="U2", action="snooze")
    assert [due for kind, due in pending(store, episode.id) if kind == "reassess"] == \
        [snoozed_until + timedelta(minutes=16), T0 + timedelta(hours=4)]


def test_snooze_of_a_reminder_due_soon_defers_it(store: Store, engine: ReminderEngine, clock: ManualClock) -> None:
    episode = graded(store, engine, "Bed 4b", 4)  # every 30 min
    clock.advance(timedelta(minutes=25))
    engine.answer(episode_id=episode.id, user_id="U2", action="snooze")
    assert pending(store, episode.id) == [("reassess", T0 + timedelta(minutes=40))]


def test_unanswered_reminder_escalates_to_the_channel_and_repeats(
    store: Store, engine: ReminderEngine, clock: ManualClock, slack: FakeSlack
) -> None:
    store.set_oncall(CH, "<@UONCALL>", "U1")
    episode = graded(store, engine, "Bed 5", 3)
    clock.advance(timedelta(hours=1))
    (post,) = engine.tick()
    assert post.chain is not None and post.chain.reminder_target() == "<@UONCALL>"
    clock.advance(timedelta(minutes=14))
    assert engine.tick() == []
    clock.advance(timedelta(minutes=1))
    (escalation,) = engine.tick()
    assert escalation.kind == "escalation" and escalation.includes_escalation
    assert escalation.episode.id == episode.id
    step = escalation.escalation_step
    assert step is not None and step.is_channel and step.mention == "<!here>"  # no secondary: the channel
    assert store.get_reminder(escalation.reminder.id).status == "sent"  # type: ignore[union-attr]
    (audit,) = [a for a in store.iter_audit() if a.action == "escalation"]
    assert audit.detail["reminder_id"] == escalation.reminder.id and audit.patient_label == "Bed 5"
    # While unanswered the channel is asked again every 15 min; the hourly reassess is still booked.
    assert pending(store, episode.id) == [("escalation", T0 + timedelta(hours=1, minutes=30)),
                                          ("reassess", T0 + timedelta(hours=2))]
    clock.advance(timedelta(minutes=15))
    (repeat,) = engine.tick()
    assert repeat.kind == "escalation" and repeat.escalation_step.is_channel  # type: ignore[union-attr]
    engine.answer(episode_id=episode.id, user_id="U9", action="ack")
    assert pending(store, episode.id) == [("reassess", T0 + timedelta(hours=2))]
    assert [p.kind for p in slack.posts] == ["reassess", "escalation", "escalation"]
    assert post.reminder.id != escalation.reminder.id


def test_chain_goes_primary_then_secondary_then_channel(
    store: Store, engine: ReminderEngine, clock: ManualClock, slack: FakeSlack
) -> None:
    store.set_oncall(CH, "<@UPRIMARY>", "U1", secondary="<@USECOND>", secondary_after=timedelta(minutes=5),
                     channel_after=timedelta(minutes=10))
    graded(store, engine, "Bed 5b", 3)
    clock.advance(timedelta(hours=1))
    (first,) = engine.tick()
    clock.advance(timedelta(minutes=5))
    (second,) = engine.tick()
    clock.advance(timedelta(minutes=10))
    (third,) = engine.tick()
    assert first.chain.reminder_target() == "<@UPRIMARY>" and first.escalation_step is None  # type: ignore[union-attr]
    assert (second.escalation_step.mention, second.escalation_step.is_channel) == ("<@USECOND>", False)  # type: ignore
    assert (third.escalation_step.mention, third.escalation_step.is_channel) == ("<!here>", True)  # type: ignore


def test_without_a_chain_reminders_notify_who_ran_the_latest_assessment(
    store: Store, engine: ReminderEngine, clock: ManualClock
) -> None:
    graded(store, engine, "Bed 5c", 3, user="UASSESSOR")
    clock.advance(timedelta(hours=1))
    (post,) = engine.tick()
    assert post.chain is not None and not post.chain.is_set
    assert post.chain.reminder_target() == "UASSESSOR"


def test_answered_reminder_does_not_escalate(
    store: Store, engine: ReminderEngine, clock: ManualClock, slack: FakeSlack
) -> None:
    episode = graded(store, engine, "Bed 6", 3)
    clock.advance(timedelta(hours=1))
    (post,) = engine.tick()
    clock.advance(timedelta(minutes=10))
    outcome = engine.answer(episode_id=episode.id, user_id="U2", action="reassessed")
    assert outcome.answered_ids == (post.reminder.id,)
    clock.advance(timedelta(minutes=10))
    assert engine.tick() == []
    assert [p.kind for p in slack.posts] == ["reassess"]
    statuses = {r.kind: r.status for r in store.reminders(episode.id) if r.kind != "reassess" or r.id == post.reminder.id}
    assert statuses == {"reassess": "answered", "escalation": "cancelled"}
    (answer_audit,) = [a for a in store.iter_audit() if a.action == "reminder_answered"]
    assert (answer_audit.user_id, answer_audit.detail["action"]) == ("U2", "reassessed")


def test_symptom_free_notice_at_the_hours_the_resolver_books(
    store: Store, engine: ReminderEngine, clock: ManualClock, slack: FakeSlack
) -> None:
    episode = graded(store, engine, "Bed 7", 2)
    clock.advance(timedelta(minutes=30))
    resolved = store.resolve_episode_by_id(episode.id, "U3", 72)  # the hours come from the rulebook
    assert resolved is not None and resolved.status == "resolved"
    notice_at = T0 + timedelta(hours=72, minutes=30)
    assert resolved.symptom_free_until == notice_at
    assert pending(store, episode.id) == [("symptom_free", notice_at)]

    clock.set(notice_at - timedelta(seconds=1))
    assert engine.tick() == []  # and the 2h reassess never fired
    clock.set(notice_at)
    (notice,) = engine.tick()
    assert notice.kind == "symptom_free" and notice.episode.status == "resolved"
    assert pending(store, episode.id) == []
    assert [p.kind for p in slack.posts] == ["symptom_free"]


def test_resolution_during_a_post_stops_the_cadence(
    store: Store, engine: ReminderEngine, clock: ManualClock, slack: FakeSlack
) -> None:
    episode = graded(store, engine, "Bed 8", 2)
    slack.on_post = lambda due: store.resolve_episode_by_id(due.episode.id, "U4", 72)
    clock.advance(timedelta(hours=2))
    (post,) = engine.tick()
    assert store.get_reminder(post.reminder.id).status == "sent"  # type: ignore[union-attr]
    # No next reassess and no escalation for a resolved episode: only the 72-hour notice remains.
    assert [kind for kind, _ in pending(store, episode.id)] == ["symptom_free"]


def test_assessment_during_a_post_keeps_the_newer_schedule(
    store: Store, engine: ReminderEngine, clock: ManualClock, slack: FakeSlack
) -> None:
    episode = graded(store, engine, "Bed 9", 2)
    slack.on_post = lambda due: (graded(store, engine, "Bed 9", 3, user="U5"), None)[1]
    clock.advance(timedelta(hours=2))
    engine.tick()
    # Only the reassess booked by the grade-3 assessment (now + 1h); no 2h reassess, no escalation.
    assert pending(store, episode.id) == [("reassess", T0 + timedelta(hours=3))]


def test_answer_needs_exactly_one_target_and_a_known_action(store: Store, engine: ReminderEngine) -> None:
    episode = graded(store, engine, "Bed 10", 1)
    with pytest.raises(ValueError, match="exactly one"):
        engine.answer(user_id="U1", action="reassessed")
    with pytest.raises(ValueError, match="exactly one"):
        engine.answer(user_id="U1", action="reassessed", reminder_id=1, episode_id=episode.id)
    with pytest.raises(ValueError, match="action"):
        engine.answer(user_id="U1", action="ignore", episode_id=episode.id)
    with pytest.raises(ValueError, match="action"):
        engine.answer(user_id="U1", action="resolved", episode_id=episode.id)  # resolving is not an answer
    assert pending(store, episode.id) == [("reassess", T0 + timedelta(hours=4))]


# -------------------------------------------------- downtime, crashes, failures


def test_restart_catches_up_with_one_coalesced_post_per_episode(
    db_url: str, store: Store, engine: ReminderEngine, clock: ManualClock
) -> None:
    a = graded(store, engine, "Bed A", 2)
    b = graded(store, engine, "Bed B", 1)
    clock.advance(timedelta(hours=2))
    (post_a,) = engine.tick()  # A posted at 2h; then the process dies before anything else
    engine.shutdown()

    clock.set(T0 + timedelta(hours=9))  # down for 7 hours
    restarted_db = make_engine(db_url)  # a new process: new engine, new store, new replica id
    try:
        slack2 = FakeSlack()
        engine2 = make_reminder_engine(Store(restarted_db, clock), clock, slack2, replica="r2")
        posts = {due.episode.id: due for due in engine2.tick()}
        assert set(posts) == {a.id, b.id}
        assert len(slack2.posts) == 2

        due_a = posts[a.id]
        assert due_a.kind == "reassess" and due_a.coalesced == 1 and due_a.includes_escalation
        assert due_a.late_by == timedelta(hours=6, minutes=45)  # from the 2h15m escalation
        (merged,) = due_a.merged
        merged_row = store.get_reminder(merged.id)
        assert merged_row is not None and (merged_row.status, merged_row.coalesced_into) == ("sent", due_a.reminder.id)

        due_b = posts[b.id]
        assert due_b.kind == "reassess" and due_b.coalesced == 0
        assert due_b.late_by == timedelta(hours=5)

        restart = T0 + timedelta(hours=9)
        assert pending(store, a.id) == [("escalation", restart + ESCALATE_AFTER),
                                        ("reassess", restart + timedelta(hours=2))]
        assert ("reassess", restart + timedelta(hours=4)) in pending(store, b.id)
        assert engine2.tick() == []
        assert post_a.reminder.id != due_a.reminder.id
    finally:
        restarted_db.dispose()


def test_one_tick_drains_every_due_episode_not_just_one_batch(
    store: Store, clock: ManualClock, slack: FakeSlack
) -> None:
    """A catch-up must run at posting speed: batches repeat within a tick while they come back full."""
    engine = make_reminder_engine(store, clock, slack, batch_size=5)
    episodes = [graded(store, engine, f"bed{i}", 3) for i in range(23)]
    clock.advance(timedelta(hours=1))
    posted = engine.tick()
    assert sorted(d.episode.id for d in posted) == sorted(e.id for e in episodes)
    assert len(slack.posts) == 23
    assert engine.tick() == []


class ClaimSizes(EngineObserver):
    """How many reminders each claim of a pass took."""

    def __init__(self) -> None:
        self.claims: list[int] = []

    def queue_depth(self, claimed: int) -> None:
        self.claims.append(claimed)


def test_claims_grow_while_they_come_back_full(
    store: Store, clock: ManualClock, slack: FakeSlack
) -> None:
    """A backlog is drained in growing claims (x4 up to max_batch_size), so a catch-up pays a claim's fixed
    cost once per many posts; each pass starts at batch_size (on-time windows stay small)."""
    sizes = ClaimSizes()
    engine = make_reminder_engine(store, clock, slack, batch_size=2, max_batch_size=8, observer=sizes)
    for i in range(21):
        graded(store, engine, f"bed{i}", 3)
    clock.advance(timedelta(hours=1))
    assert len(engine.tick()) == 21
    assert sizes.claims == [2, 8, 8, 3], "2 first, then 4 times as many (capped at 8) while claims come back full"


def test_the_next_claim_is_taken_while_a_full_batch_posts(store: Store, clock: ManualClock) -> None:
    """In the background loop a catch-up claims its next batch on the database thread while the current
    batch posts. (Claiming only after a batch had posted and been recorded stopped the posts for a
    record-and-claim round trip per batch: 50-180 ms per 1,000 posts in bench/reminders.py.)"""
    slack = FakeSlack()
    claimed_during_first_post: list[int] = []

    def on_post(due: DueReminder) -> None:
        if claimed_during_first_post:
            return
        deadline = time.monotonic() + 5
        claimed = len(store.reminders(status=ReminderStatus.CLAIMED))
        while claimed <= 2 and time.monotonic() < deadline:
            time.sleep(0.01)
            claimed = len(store.reminders(status=ReminderStatus.CLAIMED))
        claimed_during_first_post.append(claimed)

    slack.on_post = on_post
    engine = make_reminder_engine(store, clock, slack, batch_size=2, max_batch_size=8, post_workers=1,
                                  max_idle=0.05)
    for i in range(12):
        graded(store, engine, f"bed{i}", 3)
    clock.advance(timedelta(hours=1))
    engine.start()
    try:
        deadline = time.monotonic() + 20
        while len(slack.posts) < 12:
            assert time.monotonic() < deadline, f"only {len(slack.posts)} of 12 posted"
            time.sleep(0.01)
    finally:
        engine.shutdown()
    assert claimed_during_first_post == [2 + 8], "the second claim (8) should be held while the first batch posts"
    assert len({p.episode.id for p in slack.posts}) == 12


def test_a_batch_boundary_never_splits_an_episode_into_two_posts(
    store: Store, clock: ManualClock, slack: FakeSlack
) -> None:
    """Batches count episodes: three due reminders of one episode with a batch of 1 are still one post."""
    engine = make_reminder_engine(store, clock, slack, batch_size=1)
    first = store.record_assessment(CH, "bed3", "iv", "crs", {}, {}, 2, "astct-2019", "1.0.0", "U1").episode
    other = store.record_assessment(CH, "bed4", "iv", "crs", {}, {}, 2, "astct-2019", "1.0.0", "U1").episode
    assert first is not None and other is not None
    ids = {store.schedule_reminder(first.id, "reassess", T0 - timedelta(hours=1)).id,
           store.schedule_reminder(first.id, "escalation", T0 - timedelta(minutes=20)).id,
           store.schedule_reminder(first.id, "reassess", T0 - timedelta(minutes=3)).id}
    later = store.schedule_reminder(other.id, "reassess", T0 - timedelta(minutes=30)).id
    posted = engine.tick()
    assert [d.episode.id for d in posted] == [first.id, other.id]  # earliest due episode first
    assert {posted[0].reminder.id, *(m.id for m in posted[0].merged)} == ids
    assert posted[1].reminder.id == later and len(slack.posts) == 2


@pytest.mark.postgres
def test_an_episode_held_by_another_claimer_is_skipped_whole(pg_module_url: str, clock: ManualClock) -> None:
    """While one replica's claim holds an episode, another replica takes none of its rows.

    (Row-level SKIP LOCKED alone let a second replica take the rows the first had not locked yet,
    and the episode was posted twice; CI caught it once in 1,170 runs.)
    """
    _truncate_postgres(pg_module_url)
    db = make_engine(pg_module_url)
    try:
        store = Store(db, clock)
        held = store.record_assessment(CH, "bed5", "iv", "crs", {}, {}, 3, "astct-2019", "1.0.0", "U1").episode
        free = store.record_assessment(CH, "bed6", "iv", "crs", {}, {}, 3, "astct-2019", "1.0.0", "U1").episode
        assert held is not None and free is not None
        for minutes in (30, 20, 10):
            store.schedule_reminder(held.id, "reassess", T0 - timedelta(minutes=minutes))
        free_id = store.schedule_reminder(free.id, "reassess", T0 - timedelta(minutes=5)).id
        engine = make_reminder_engine(store, clock, FakeSlack(), replica="r2")
        with db.connect() as other:  # replica r1, mid-claim: it has locked the episode
            other.execute(text("SELECT id FROM episodes WHERE id = :id FOR UPDATE"), {"id": held.id})
            token = "t" * 32
            batch = engine.repo.claim_batch("r2", token, T0, T0 + timedelta(minutes=2), 10)
            assert batch is not None
            assert [r.id for r in batch.reminders] == [free_id]
            other.rollback()
        batch = engine.repo.claim_batch("r2", "u" * 32, T0, T0 + timedelta(minutes=2), 10)
        assert batch is not None and {r.episode_id for r in batch.reminders} == {held.id}
        assert len(batch.reminders) == 3
    finally:
        db.dispose()


def test_stale_claim_of_a_dead_replica_is_delivered_once(
    store: Store, engine: ReminderEngine, clock: ManualClock, slack: FakeSlack
) -> None:
    episode = graded(store, engine, "Bed 11", 2)
    clock.advance(timedelta(hours=2))
    now = clock.now()
    # Replica "dead" claims the reminder and is killed before posting.
    dead = engine.repo.claim_batch("dead", "dead-token", now, now + timedelta(minutes=2), 10)
    assert dead is not None and [r.status for r in dead.reminders] == ["claimed"]

    assert engine.tick() == []  # a claim within its lease is respected
    clock.advance(timedelta(minutes=1, seconds=59))
    assert engine.tick() == []
    clock.advance(timedelta(seconds=2))
    (rescued,) = engine.tick()
    assert rescued.reminder.id == dead.reminders[0].id
    assert rescued.attempt == 2 and rescued.reminder.claimed_by == "r1" and rescued.maybe_posted
    for _ in range(3):
        clock.advance(timedelta(minutes=5))
        assert [p.kind for p in engine.tick()] in ([], ["escalation"])
    assert [p.reminder.id for p in slack.posts if p.kind == "reassess"] == [rescued.reminder.id]
    # If the "dead" replica was merely slow, its late completion is refused (its token no longer holds).
    from bot.episodes.repositories import Outcome
    late = Outcome((dead.reminders[0].id,), ReminderStatus.SENT, primary_id=dead.reminders[0].id, message_ts="ts-x")
    assert engine.repo.complete("dead-token", "dead", clock.now(), [late], []) == set()
    assert store.get_reminder(rescued.reminder.id).message_ts == "ts-1"  # type: ignore[union-attr]


def test_a_taken_over_claim_whose_post_landed_is_recorded_not_posted_again(
    store: Store, engine: ReminderEngine, clock: ManualClock, slack: FakeSlack
) -> None:
    """The holder posted (Slack has the message and its metadata) and died before recording it."""
    episode = graded(store, engine, "Bed 11b", 2)
    clock.advance(timedelta(hours=2))
    now = clock.now()
    dead = engine.repo.claim_batch("dead", "dead-token", now, now + timedelta(minutes=2), 10)
    assert dead is not None
    reminder_id = dead.reminders[0].id
    slack.metadata.append(("ts-dead", {"event_type": "crsbot_reminder",
                                       "event_payload": {"reminder_ids": str(reminder_id), "claim": "dead-token"}}))
    clock.advance(timedelta(minutes=2, seconds=1))
    (found,) = engine.tick()
    assert found.reminder.id == reminder_id and slack.posts == []
    row = store.get_reminder(reminder_id)
    assert row is not None and (row.status, row.message_ts) == ("sent", "ts-dead")
    (audit,) = [a for a in store.iter_audit() if a.action == "reminder_sent"]
    assert audit.detail["reconciled"] is True
    # The cadence continues from the reconciled post.
    assert ("reassess", clock.now() + timedelta(hours=2)) in pending(store, episode.id)


def test_failed_post_is_retried_with_backoff(store: Store, clock: ManualClock) -> None:
    slack = FakeSlack(fail_first=2)
    engine = make_reminder_engine(store, clock, slack)
    episode = graded(store, engine, "Bed 12", 2)
    due = T0 + timedelta(hours=2)
    clock.set(due)
    assert engine.tick() == []
    (retry,) = store.reminders(episode.id, "pending")
    assert (retry.attempts, retry.due_at) == (1, due + timedelta(seconds=30))
    assert "slack unreachable" in (retry.last_error or "")

    clock.set(due + timedelta(seconds=29))
    assert engine.tick() == [] and slack.calls == 1
    clock.set(due + timedelta(seconds=30))
    assert engine.tick() == [] and slack.calls == 2
    (retry,) = store.reminders(episode.id, "pending")
    assert (retry.attempts, retry.due_at) == (2, due + timedelta(seconds=90))  # 30s * attempt 2

    clock.set(due + timedelta(seconds=90))
    (post,) = engine.tick()
    assert post.attempt == 3 and post.late_by == timedelta(seconds=90)  # from the original due time
    assert [a.detail["attempt"] for a in store.iter_audit() if a.action == "reminder_retry"] == [1, 2]


def test_post_that_keeps_failing_is_marked_failed_after_5_attempts(store: Store, clock: ManualClock) -> None:
    slack = FakeSlack(always_fail=True)
    engine = make_reminder_engine(store, clock, slack)
    episode = graded(store, engine, "Bed 13", 2)
    clock.advance(timedelta(hours=2))
    for _ in range(10):
        engine.tick()
        clock.advance(timedelta(minutes=10))
    assert slack.calls == 5
    (failed,) = [r for r in store.reminders(episode.id) if r.kind == "reassess"]
    assert (failed.status, failed.attempts) == ("failed", 5)
    (failure,) = [a for a in store.iter_audit() if a.action == "failure"]
    assert failure.detail["reminder_ids"] == [failed.id] and "slack unreachable" in failure.detail["error"]


# ------------------------------------------------------------- exactly once


def test_each_reminder_is_posted_exactly_once_across_replicas(db_url: str, clock: ManualClock) -> None:
    """Two replicas (separate engines/pools) x 3 ticking threads each, over many due reminders."""
    setup_db = make_engine(db_url)
    engines = [make_engine(db_url), make_engine(db_url)]
    try:
        setup = Store(setup_db, clock)
        expected: dict[int, set[int]] = {}
        for i in range(40):
            episode = setup.record_assessment(CH, f"Bed {i}", "iv", "crs", {}, {}, 2, "astct-2019", "1.0.0", "U1").episode
            assert episode is not None
            ids = {setup.schedule_reminder(episode.id, "reassess", T0 - timedelta(minutes=i % 7)).id}
            if i % 2:
                ids.add(setup.schedule_reminder(episode.id, "escalation", T0 - timedelta(minutes=20)).id)
            if i % 3 == 0:
                ids.add(setup.schedule_reminder(episode.id, "reassess", T0 - timedelta(hours=1)).id)
            expected[episode.id] = ids
        all_ids = set().union(*expected.values())

        slack = FakeSlack(jitter=0.002)
        replicas = [make_reminder_engine(Store(e, clock), clock, slack, replica=f"replica-{n}")
                    for n, e in enumerate(engines)]
        threads_per_replica = 3
        barrier = threading.Barrier(threads_per_replica * len(replicas))
        errors: list[BaseException] = []

        def run(replica: ReminderEngine) -> None:
            try:
                barrier.wait()
                for _ in range(30):
                    replica.tick()
            except BaseException as exc:  # noqa: BLE001
                errors.append(exc)

        threads = [threading.Thread(target=run, args=(r,)) for r in replicas for _ in range(threads_per_replica)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
        assert errors == []

        delivered = Counter(rid for due in slack.posts for rid in (due.reminder.id, *(m.id for m in due.merged)))
        assert set(delivered) == all_ids
        assert [rid for rid, n in delivered.items() if n != 1] == []
        assert Counter(due.episode.id for due in slack.posts) == Counter({eid: 1 for eid in expected})
        statuses = Counter(setup.get_reminder(rid).status for rid in all_ids)  # type: ignore[union-attr]
        assert statuses == Counter({"sent": len(all_ids)})
    finally:
        setup_db.dispose()
        for e in engines:
            e.dispose()


# ------------------------------------------------------------------ lifecycle


def test_start_ticks_in_the_background_until_shutdown(store: Store, clock: ManualClock) -> None:
    posted = threading.Event()
    slack = FakeSlack()
    slack.on_post = lambda due: posted.set()
    engine = make_reminder_engine(store, clock, slack, max_idle=0.05)
    episode = graded(store, engine, "Bed 14", 4)
    clock.advance(timedelta(minutes=30))
    engine.start()
    engine.start()  # idempotent
    try:
        assert engine.running
        assert posted.wait(timeout=10), "the background tick never posted the due reminder"
    finally:
        engine.shutdown()
    assert not engine.running
    time.sleep(0.2)  # no further ticks after shutdown, and nothing was posted twice
    assert [p.reminder.episode_id for p in slack.posts] == [episode.id]


def test_shutdown_hands_back_what_was_claimed_ahead_and_never_posts_it_early(
    store: Store, clock: ManualClock, slack: FakeSlack
) -> None:
    """The engine claims up to its lead ahead and waits for the due time; stopping during that wait
    used to post the waiting reminder at once, minutes early. It goes back to pending, as booked."""
    engine = make_reminder_engine(store, clock, slack, lead=timedelta(minutes=5), max_idle=0.05)
    episode = graded(store, engine, "Bed 15", 4)  # reassess due in 30 min
    clock.advance(timedelta(minutes=27))  # due in 3 min: inside the lead, so claimed and waited for
    (due,) = [r for r in store.reminders(episode.id, "pending")]
    engine.start()
    try:
        deadline = time.monotonic() + 10
        while store.get_reminder(due.id).status != ReminderStatus.CLAIMED:  # type: ignore[union-attr]
            assert time.monotonic() < deadline, "the engine never claimed the reminder within its lead"
            time.sleep(0.01)
    finally:
        engine.shutdown()
    after = store.get_reminder(due.id)
    assert after is not None
    assert slack.posts == []
    assert (after.status, after.due_at, after.attempts) == (ReminderStatus.PENDING, due.due_at, due.attempts)


# ------------------------------------------------------------------- wake-ups


def _system_engine(url: str, slack: FakeSlack, replica: str, max_idle: float) -> tuple[ReminderEngine, object]:
    from bot.clock import SystemClock

    db = make_engine(url)
    fast = ReminderPolicy({g: timedelta(milliseconds=400) for g in (1, 2, 3, 4)}, timedelta(hours=1))
    return ReminderEngine(Store(db, SystemClock()), SystemClock(), slack, replica, fast, max_idle=max_idle), db


def test_a_booking_wakes_the_sleeping_engine_in_process(db_url: str) -> None:
    """The engine sleeps up to `max_idle` (60 s here) when nothing is due; a booking wakes it at once."""
    slack = FakeSlack()
    posted = threading.Event()
    slack.on_post = lambda due: posted.set()
    engine, db = _system_engine(db_url, slack, "r1", max_idle=60)
    try:
        engine.start()
        time.sleep(0.3)  # asleep, with nothing booked
        recorded = engine.store.record_assessment(CH, "Bed W1", "iv", "crs", {}, {}, 2, "astct-2019", "1.0.0", "U1")
        engine.schedule_after_assessment(recorded.episode.id, 2, "U1")  # type: ignore[union-attr]
        assert posted.wait(timeout=15), "the engine slept through the booking (it should wake at once)"
    finally:
        engine.shutdown()
        db.dispose()  # type: ignore[attr-defined]


@pytest.mark.postgres
def test_a_booking_by_another_replica_wakes_this_one_through_listen_notify(pg_module_url: str) -> None:
    """Replica B books; replica A, asleep for up to 60 s, is woken by PostgreSQL's NOTIFY and posts."""
    from tests.db_fixtures import APP_TABLES

    setup = make_engine(pg_module_url)
    with setup.begin() as conn:
        conn.exec_driver_sql(f"TRUNCATE {', '.join(APP_TABLES)} RESTART IDENTITY CASCADE")
    slack_a, slack_b = FakeSlack(), FakeSlack()
    posted = threading.Event()
    slack_a.on_post = lambda due: posted.set()
    engine_a, db_a = _system_engine(pg_module_url, slack_a, "replica-a", max_idle=60)
    engine_b, db_b = _system_engine(pg_module_url, slack_b, "replica-b", max_idle=60)  # never started
    try:
        engine_a.start()
        time.sleep(1.0)  # A is listening and asleep
        recorded = engine_b.store.record_assessment(CH, "Bed W2", "iv", "crs", {}, {}, 2, "astct-2019", "1.0.0", "U1")
        engine_b.schedule_after_assessment(recorded.episode.id, 2, "U1")  # type: ignore[union-attr]
        assert posted.wait(timeout=15), "replica A was not woken by replica B's booking"
        assert slack_b.posts == []
    finally:
        engine_a.shutdown()
        for db in (db_a, db_b, setup):
            db.dispose()  # type: ignore[attr-defined]
