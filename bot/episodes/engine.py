"""Reassessment reminders, escalation and the symptom-free notice.

The reminder state lives in the `reminders` table, never in APScheduler jobs:
APScheduler is only a metronome calling `ReminderEngine.tick()` every second.
Each tick claims due reminders with an atomic conditional UPDATE (so several
replicas on one PostgreSQL post each reminder exactly once), posts through the
Slack layer's `deliver` callback outside any transaction, then records the post.
A replica killed between claim and post leaves a claim that goes stale and is
taken over; a restarted process simply finds its overdue rows and catches up,
posting one coalesced reminder per episode.
"""

from __future__ import annotations

import logging
import os
import re
import secrets
import socket
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from apscheduler.schedulers.background import BackgroundScheduler

from bot.clock import Clock, as_utc
from bot.outage import OutageLog
from bot.storage.records import Episode, Reminder
from bot.storage.store import ANSWER_ACTIONS, AnswerOutcome, NotFound, Store

__all__ = [
    "Deliver",
    "DueReminder",
    "ReminderEngine",
    "default_replica_id",
    "format_intervals",
    "parse_intervals",
]

log = logging.getLogger(__name__)

_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600}
_INTERVAL_PART = re.compile(r"(?P<grade>\d+)\s*=\s*(?P<amount>\d+(?:\.\d+)?)\s*(?P<unit>[a-zA-Z]*)")


def parse_intervals(spec: str) -> dict[int, timedelta]:
    """Parse "1=4h,2=2h,3=1h,4=30m" (units s/m/h) into {grade: interval}.

    Raises ValueError naming the offending part, because this usually comes
    from an environment variable and the operator needs to see what to fix.
    """
    if not spec or not spec.strip():
        raise ValueError("reminder intervals are empty; expected e.g. '1=4h,2=2h,3=1h,4=30m'")
    intervals: dict[int, timedelta] = {}
    for raw in spec.split(","):
        part = raw.strip()
        if not part:
            raise ValueError(f"empty entry in reminder intervals {spec!r} (stray comma?)")
        match = _INTERVAL_PART.fullmatch(part)
        if match is None:
            raise ValueError(f"bad reminder interval {part!r}: expected GRADE=NUMBER followed by s, m or h, e.g. '2=2h'")
        unit = match["unit"].lower()
        if unit not in _UNIT_SECONDS:
            raise ValueError(f"bad unit in reminder interval {part!r}: {match['unit'] or 'none'!r}; use s, m or h")
        grade = int(match["grade"])
        if grade < 1:
            raise ValueError(f"bad grade in reminder interval {part!r}: grades start at 1")
        if grade in intervals:
            raise ValueError(f"grade {grade} appears twice in reminder intervals (at {part!r})")
        seconds = float(match["amount"]) * _UNIT_SECONDS[unit]
        if seconds <= 0:
            raise ValueError(f"reminder interval {part!r} must be longer than zero")
        intervals[grade] = timedelta(seconds=seconds)
    return intervals


def format_intervals(intervals: Mapping[int, timedelta]) -> str:
    """Inverse of parse_intervals, for logs and /status replies."""

    def one(delta: timedelta) -> str:
        seconds = delta.total_seconds()
        for unit, size in (("h", 3600), ("m", 60)):
            if seconds % size == 0:
                return f"{int(seconds // size)}{unit}"
        return f"{seconds:g}s"

    return ",".join(f"{grade}={one(intervals[grade])}" for grade in sorted(intervals))


def default_replica_id() -> str:
    """host:pid:random — unique per process, so a restarted process never mistakes old claims for its own."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


@dataclass(frozen=True)
class DueReminder:
    """One post to make: the reminder, its episode, and how the catch-up shaped it.

    `coalesced` counts the other overdue reminders of the episode folded into
    this post (listed in `merged`; an escalation among them means the on-call
    should be mentioned); `late_by` is measured from the earliest original due time.
    """

    reminder: Reminder
    episode: Episode
    late_by: timedelta
    coalesced: int
    merged: tuple[Reminder, ...] = ()

    @property
    def kind(self) -> str:
        return self.reminder.kind

    @property
    def attempt(self) -> int:
        """1 for the first try; higher after failed posts or a takeover of a dead replica's claim."""
        return self.reminder.attempts

    @property
    def includes_escalation(self) -> bool:
        return self.reminder.kind == "escalation" or any(m.kind == "escalation" for m in self.merged)


Deliver = Callable[[DueReminder], str | None]


class ReminderEngine:
    """Schedules, claims, posts and answers reminders for one replica."""

    def __init__(
        self,
        store: Store,
        clock: Clock,
        deliver: Deliver,
        replica_id: str,
        intervals: Mapping[int, timedelta],
        escalate_after: timedelta,
        *,
        snooze_for: timedelta = timedelta(minutes=15),
        symptom_free_after: timedelta | None = timedelta(hours=72),
        stale_after: timedelta = timedelta(minutes=2),
        retry_base: timedelta = timedelta(seconds=30),
        max_attempts: int = 5,
        tick_seconds: float = 1.0,
        batch_size: int = 100,
        tick_budget: float = 30.0,
    ) -> None:
        if not intervals:
            raise ValueError("at least one reassessment interval is required")
        for grade, interval in intervals.items():
            if interval <= timedelta(0):
                raise ValueError(f"reassessment interval for grade {grade} must be positive, got {interval}")
        durations = {"escalate_after": escalate_after, "snooze_for": snooze_for, "stale_after": stale_after,
                     "symptom_free_after": symptom_free_after or timedelta(hours=1)}
        for name, value in durations.items():
            if value <= timedelta(0):
                raise ValueError(f"{name} must be positive, got {value}")
        if max_attempts < 1:
            raise ValueError(f"max_attempts must be at least 1, got {max_attempts}")
        self.store = store
        self.clock = clock
        self.deliver = deliver
        self.replica_id = replica_id
        self.intervals = dict(intervals)
        self.escalate_after = escalate_after
        self.snooze_for = snooze_for
        self.symptom_free_after = symptom_free_after
        self.stale_after = stale_after
        self.retry_base = retry_base
        self.max_attempts = max_attempts
        self.tick_seconds = tick_seconds
        self.batch_size = batch_size
        self.tick_budget = tick_budget
        self._scheduler: BackgroundScheduler | None = None
        self._scheduler_lock = threading.Lock()
        self.outage = OutageLog(log, "reminder tick")
        # Other once-across-replicas work driven by the same tick (the scheduled handoff).
        self.tick_hooks: list[Callable[[], object]] = []

    # ------------------------------------------------------------------ cadence

    def interval_for(self, grade: int | None) -> timedelta | None:
        """Reassessment interval for a CRS grade; None below grade 1.

        A grade missing from the configuration gets the shortest configured
        interval: reminding too often is safer than not reminding at all.
        """
        if grade is None or grade < 1:
            return None
        interval = self.intervals.get(grade)
        if interval is None:
            interval = min(self.intervals.values())
            log.warning("no reassessment interval configured for grade %s; using the shortest (%s)", grade, interval)
        return interval

    def schedule_after_assessment(self, episode_id: int, grade: int | None, user_id: str | None = None) -> Reminder | None:
        """A new assessment restarts the cycle: cancel pending reassess/escalation, book the next reassess.

        Grade 0 or None books nothing. With `user_id`, reminders already posted
        are marked answered by that assessment.
        """
        interval = self.interval_for(grade)
        due_at = as_utc(self.clock.now()) + interval if interval is not None else None
        return self.store.reschedule(
            episode_id,
            ("reassess", "escalation"),
            "reassess" if due_at is not None else None,
            due_at,
            answered_by=user_id,
        )

    # --------------------------------------------------------------------- tick

    def tick(self) -> list[DueReminder]:
        """Claim and post everything due now; returns what was posted successfully.

        Batches repeat while they come back full (within `tick_budget`), so a catch-up after downtime
        runs at posting speed rather than one batch per tick."""
        posted: list[DueReminder] = []
        started = time.monotonic()
        while True:
            now = as_utc(self.clock.now())
            episode_ids = self.store.due_episode_ids(now, now - self.stale_after, self.batch_size)
            posted += self._tick_batch(episode_ids)
            if len(episode_ids) < self.batch_size or time.monotonic() - started > self.tick_budget:
                return posted

    def _tick_batch(self, episode_ids: Sequence[int]) -> list[DueReminder]:
        posted: list[DueReminder] = []
        for episode_id in episode_ids:
            # Claim with a fresh "now": a long catch-up tick must not stamp claims
            # with its start time, or other replicas would see them as already stale.
            claim_at = as_utc(self.clock.now())
            group = self.store.claim_due(
                episode_id, self.replica_id, claim_at, claim_at - self.stale_after, self.max_attempts
            )
            if group is None:
                continue  # another replica has it, or it was cancelled meanwhile
            for batch in self._posts(group.reminders):
                due = self._due(group.episode, batch, claim_at)
                if self._post(due):
                    posted.append(due)
        return posted

    @staticmethod
    def _posts(reminders: Sequence[Reminder]) -> list[list[Reminder]]:
        """One post for the reassessment cycle (reassess + escalations), one for the symptom-free notice."""
        cadence = [r for r in reminders if r.kind != "symptom_free"]
        notices = [r for r in reminders if r.kind == "symptom_free"]
        return [batch for batch in (cadence, notices) if batch]

    @staticmethod
    def _due(episode: Episode, batch: Sequence[Reminder], now: datetime) -> DueReminder:
        reassess = [r for r in batch if r.kind == "reassess"]
        primary = (reassess or list(batch))[0]  # batch is ordered by due time
        merged = tuple(r for r in batch if r.id != primary.id)
        earliest = min(r.first_due_at for r in batch)
        late_by = max(now - earliest, timedelta(0))
        return DueReminder(reminder=primary, episode=episode, late_by=late_by, coalesced=len(merged), merged=merged)

    def _post(self, due: DueReminder) -> bool:
        try:
            message_ts = self.deliver(due)
        except Exception as exc:  # noqa: BLE001 - any Slack/network error means "try again later"
            self._failed(due, exc)
            return False
        is_reassess = due.reminder.kind == "reassess"
        self.store.complete_delivery(
            due.reminder,
            due.merged,
            self.replica_id,
            message_ts,
            due.late_by,
            next_reassess_after=(lambda episode: self.interval_for(episode.current_grade)) if is_reassess else None,
            escalate_after=self.escalate_after if is_reassess else None,
        )
        return True

    def _failed(self, due: DueReminder, exc: Exception) -> None:
        claimed = [due.reminder, *due.merged]
        error = f"{type(exc).__name__}: {exc}"
        if due.attempt >= self.max_attempts:
            log.error("giving up on reminder %s after %d attempts: %s", due.reminder.id, due.attempt, error)
            self.store.mark_failed(claimed, self.replica_id, error)
            return
        retry_at = as_utc(self.clock.now()) + self.retry_base * due.attempt
        log.warning("posting reminder %s failed (attempt %d), retrying at %s: %s",
                    due.reminder.id, due.attempt, retry_at.isoformat(), error)
        self.store.release_for_retry(claimed, self.replica_id, retry_at, error)

    # ------------------------------------------------------------------- answers

    def answer(
        self,
        *,
        user_id: str,
        action: str,
        reminder_id: int | None = None,
        episode_id: int | None = None,
    ) -> AnswerOutcome:
        """Record a response to a reminder (button or command), by reminder id or episode id."""
        if (reminder_id is None) == (episode_id is None):
            raise ValueError("pass exactly one of reminder_id or episode_id")
        if action not in ANSWER_ACTIONS:
            raise ValueError(f"unknown answer action {action!r}; expected one of {ANSWER_ACTIONS}")
        if reminder_id is not None:
            reminder = self.store.get_reminder(reminder_id)
            if reminder is None:
                raise NotFound(f"no reminder with id {reminder_id}")
            episode_id = reminder.episode_id
        assert episode_id is not None
        now = as_utc(self.clock.now())
        return self.store.answer_episode(
            episode_id,
            user_id,
            action,
            snooze_until=now + self.snooze_for if action == "snooze" else None,
            symptom_free_hours=(self.symptom_free_after.total_seconds() / 3600
                                if action == "resolved" and self.symptom_free_after is not None else None),
        )

    # ----------------------------------------------------------------- lifecycle

    def _scheduled_tick(self) -> None:
        try:
            self.tick()
        except Exception as exc:  # noqa: BLE001 - keep the metronome going; the rows are still there next second
            self.outage.failed(exc)
        else:
            self.outage.succeeded()
        for hook in self.tick_hooks:
            try:
                hook()
            except Exception:  # noqa: BLE001 - same rule: the rows are still there next tick
                log.exception("tick hook %r failed", hook)

    def start(self) -> None:
        """Start ticking in a background thread (idempotent)."""
        with self._scheduler_lock:
            if self._scheduler is not None:
                return
            scheduler = BackgroundScheduler(timezone=timezone.utc, daemon=True)
            scheduler.add_job(
                self._scheduled_tick,
                "interval",
                seconds=self.tick_seconds,
                id="crsbot-reminder-tick",
                max_instances=1,  # a slow tick (many catch-up posts) is never run twice at once
                coalesce=True,
                next_run_time=datetime.now(timezone.utc),
            )
            scheduler.start()
            self._scheduler = scheduler
            log.info("reminder engine %s started (tick every %ss, intervals %s)",
                     self.replica_id, self.tick_seconds, format_intervals(self.intervals))

    def shutdown(self, wait: bool = True) -> None:
        """Stop ticking; with wait=True, let a running tick finish first."""
        with self._scheduler_lock:
            scheduler, self._scheduler = self._scheduler, None
        if scheduler is not None:
            scheduler.shutdown(wait=wait)

    @property
    def running(self) -> bool:
        return self._scheduler is not None
