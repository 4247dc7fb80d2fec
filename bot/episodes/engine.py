"""The reminder engine: claim, post, reconcile, complete, retry, coalesce. The rules (what is due
when, who is notified) are the policy's; the words are the notifier's; the SQL is the repository's.

Exactly once, under faults. Every post carries the reminder's identity in Slack message metadata.
A claim is fenced by a token: only the holder of the current claim can record the outcome, and a
claim is taken over only after its lease ends. Whenever an earlier attempt may have reached Slack
(client timeout, crash after the post, database lost before the record, a taken-over claim), the
thread is read for that metadata before anything is posted again. A Retry-After is never slept on
while a claim is held: the reminders go back to pending, due when Slack allows.

On time. One thread sleeps until the next due time (or a lease end), woken early by bookings made in
this process and, on PostgreSQL, by other replicas through LISTEN/NOTIFY; `max_idle` bounds the
sleep as a poll fallback. A batch is claimed with one statement and completed in one transaction.
"""

from __future__ import annotations

import logging
import os
import heapq
import re
import secrets
import socket
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from bot.clock import Clock, as_utc
from bot.episodes.notifier import Notifier, RateLimited, Refused
from bot.episodes.policy import Chain, ChainStep, ReminderPolicy
from bot.episodes.repositories import Booking, ClaimedBatch, Outcome, ReminderRepository
from bot.outage import OutageLog
from bot.storage.db import WAKE_CHANNEL
from bot.storage.kinds import AnswerAction, EpisodeStatus, ReminderKind, ReminderStatus
from bot.storage.records import Episode, Reminder
from bot.storage.store import AnswerOutcome, NotFound, Store

__all__ = [
    "EVENT_TYPE",
    "DueReminder",
    "EngineObserver",
    "ReminderEngine",
    "default_replica_id",
    "format_intervals",
    "parse_intervals",
]

EVENT_TYPE = "crsbot_reminder"
"""Slack message metadata event_type of every reminder post; its payload names the reminder ids."""

log = logging.getLogger(__name__)


@dataclass
class _Posted:
    """A posted batch, waiting to be recorded."""

    outcomes: list[Outcome]
    bookings: list[Booking]
    posted: list[DueReminder]


@dataclass
class _Pause:
    """Until when Slack asked this batch to stop posting (Retry-After), once it did."""

    until: datetime | None = None

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
    """One post to make: the reminder, its episode, who it notifies and how the catch-up shaped it.

    `coalesced` counts the other overdue reminders of the episode folded into this post (listed in
    `merged`); `late_by` is measured from the earliest original due time; `target` is who the post
    mentions (the chain's primary, or the fallback with no chain set; the step's target for an
    escalation).
    """

    reminder: Reminder
    episode: Episode
    late_by: timedelta
    coalesced: int
    merged: tuple[Reminder, ...] = ()
    chain: Chain | None = None
    token: str = ""

    @property
    def kind(self) -> ReminderKind:
        return ReminderKind(self.reminder.kind)

    @property
    def ids(self) -> tuple[int, ...]:
        return (self.reminder.id, *(m.id for m in self.merged))

    @property
    def attempt(self) -> int:
        """1 for the first try; higher after failed posts or a takeover of a dead replica's claim."""
        return self.reminder.attempts

    @property
    def includes_escalation(self) -> bool:
        return self.kind == ReminderKind.ESCALATION or any(m.kind == ReminderKind.ESCALATION for m in self.merged)

    @property
    def escalation_step(self) -> ChainStep | None:
        """The furthest chain step this post stands for (None for a plain reminder)."""
        steps = [r.step for r in (self.reminder, *self.merged) if r.kind == ReminderKind.ESCALATION]
        if not steps or self.chain is None:
            return None
        return self.chain.at_step(max(steps))

    @property
    def maybe_posted(self) -> bool:
        return self.reminder.maybe_posted or any(m.maybe_posted for m in self.merged)

    def metadata(self) -> dict[str, Any]:
        """Slack message metadata naming this post's reminders (flat scalar values, as Slack requires)."""
        return {"event_type": EVENT_TYPE, "event_payload": {
            "reminder_ids": ",".join(str(i) for i in self.ids), "episode_id": self.episode.id,
            "kind": str(self.kind), "claim": self.token}}


class EngineObserver:
    """Hook points for metrics (no-ops here): subclass and pass as `observer=`."""

    def posted(self, due: DueReminder, late_by: timedelta, reconciled: bool) -> None: ...

    def escalated(self, due: DueReminder) -> None: ...

    def failed(self, due: DueReminder, error: str, final: bool) -> None: ...

    def queue_depth(self, claimed: int) -> None: ...


def posted_ids(metadata: Mapping[str, Any]) -> set[int]:
    """Reminder ids named by a message's metadata ({} for anything that is not a reminder post)."""
    if metadata.get("event_type") != EVENT_TYPE:
        return set()
    raw = str((metadata.get("event_payload") or {}).get("reminder_ids", ""))
    return {int(part) for part in raw.split(",") if part.strip().isdigit()}


class ReminderEngine:
    """Books, claims, posts and answers reminders for one replica."""

    def __init__(
        self,
        store: Store,
        clock: Clock,
        notifier: Notifier,
        replica_id: str,
        policy: ReminderPolicy,
        *,
        lease: timedelta = timedelta(minutes=2),
        post_timeout: timedelta = timedelta(seconds=10),
        retry_base: timedelta = timedelta(seconds=30),
        max_attempts: int = 5,
        max_idle: float = 1.0,
        batch_size: int = 100,
        max_batch_size: int = 1000,
        post_workers: int = 8,
        lead: timedelta = timedelta(0),
        observer: EngineObserver | None = None,
    ) -> None:
        if max_attempts < 1:
            raise ValueError(f"max_attempts must be at least 1, got {max_attempts}")
        if lease <= post_timeout:
            raise ValueError(f"the claim lease ({lease}) must be longer than one post may take ({post_timeout})")
        self.store = store
        self.repo = ReminderRepository(store.engine)
        self.clock = clock
        self.notifier = notifier
        self.replica_id = replica_id
        self.policy = policy
        self.lease = lease
        self.post_timeout = post_timeout
        self.retry_base = retry_base
        self.max_attempts = max_attempts
        self.max_idle = max_idle
        # A claim takes `batch_size` episodes; while claims come back full (a backlog, as after a restart)
        # each next one takes 4 times as many, up to `max_batch_size`, so a catch-up pays the claim's and
        # the record's fixed costs once per 1,000 posts, not per 100 (bench/reminders.py: 1.8 -> 1.4 ms CPU
        # per post). On-time windows stay small: a large claim slowed PostgreSQL's on-time claims.
        self.batch_size = batch_size
        self.max_batch_size = max(batch_size, max_batch_size)
        self.post_workers = post_workers
        self._posters: ThreadPoolExecutor | None = None
        self._database: ThreadPoolExecutor | None = None
        # Claim this far ahead of the due time, then post at the due time itself: the claim's database
        # round trip (and any wait for SQLite's write lock behind /crs traffic) stays out of the lateness.
        self.lead = lead
        self.observer = observer or EngineObserver()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._lifecycle = threading.Lock()
        self._tick_lock = threading.Lock()
        self._unrecorded: list[tuple[str, datetime, list[Outcome], list[Booking]]] = []
        self.outage = OutageLog(log, "reminder tick")
        # Other once-across-replicas work driven by the same loop (the scheduled handoff).
        self.tick_hooks: list[Callable[[], object]] = []

    # ----------------------------------------------------------------- booking

    def schedule_after_assessment(self, episode_id: int, grade: int | None, user_id: str | None = None) -> \
            Reminder | None:
        """A new assessment restarts the cycle: cancel pending reassess/escalation, book the next reassess.

        Grade 0 or None books nothing. With `user_id`, reminders already posted are marked answered.
        """
        interval = self.policy.interval_for(grade)
        due_at = as_utc(self.clock.now()) + interval if interval is not None else None
        booked = self.store.reschedule(
            episode_id, (ReminderKind.REASSESS, ReminderKind.ESCALATION),
            ReminderKind.REASSESS if due_at is not None else None, due_at, answered_by=user_id)
        self.wake()
        return booked

    def answer(self, *, user_id: str, action: str, reminder_id: int | None = None,
               episode_id: int | None = None) -> AnswerOutcome:
        """Record a response to a reminder (button or command), by reminder id or episode id.

        Every answer stops the escalation chain; "snooze" also defers the next reassess by the
        policy's snooze (never pulling a later one forward).
        """
        if (reminder_id is None) == (episode_id is None):
            raise ValueError("pass exactly one of reminder_id or episode_id")
        try:
            answer = AnswerAction(action)
        except ValueError:
            raise ValueError(f"unknown answer action {action!r}; expected one of "
                             f"{[str(a) for a in AnswerAction]}") from None
        if reminder_id is not None:
            reminder = self.store.get_reminder(reminder_id)
            if reminder is None:
                raise NotFound(f"no reminder with id {reminder_id}")
            episode_id = reminder.episode_id
        assert episode_id is not None
        snooze_until = self.policy.snooze_until(as_utc(self.clock.now())) if answer == AnswerAction.SNOOZE else None
        outcome = self.store.answer_episode(episode_id, user_id, answer, snooze_until=snooze_until)
        self.wake()
        return outcome

    # -------------------------------------------------------------------- tick

    def tick(self) -> list[DueReminder]:
        """Claim and post everything due now (and within the lead), batch after batch; returns what was
        posted (or found posted)."""
        with self._tick_lock:
            return _Pump(self, rolling=False).run()

    def _groups(self, batch: ClaimedBatch) -> list[list[Reminder]]:
        """One post per episode for its cadence (reassess + escalations), one per other kind."""
        groups: dict[tuple[int, str], list[Reminder]] = {}
        for r in batch.reminders:
            kind = ReminderKind(r.kind)
            groups.setdefault((r.episode_id, "cadence" if kind.is_cadence else str(kind)), []).append(r)
        return list(groups.values())

    def _database_thread(self) -> ThreadPoolExecutor:
        """Where the rolling pump records and claims, so that posting never waits for the database."""
        with self._lifecycle:
            if self._database is None:
                self._database = ThreadPoolExecutor(1, thread_name_prefix="crsbot-claim")
            return self._database

    def _run_hooks(self) -> None:
        for hook in self.tick_hooks:
            try:
                hook()
            except Exception:  # noqa: BLE001 - one hook must not stop reminders
                log.exception("reminder engine hook %r failed", hook)

    def _deliver_all(self, dues: Sequence[DueReminder], pause: _Pause) -> list[Outcome | None]:
        def one(due: DueReminder) -> Outcome | None:
            if pause.until is not None:
                return self._release(due, pause.until, None, count_attempt=False)
            outcome = self._deliver(due)
            if outcome is not None and outcome.retry_at is not None and not outcome.count_attempt:
                pause.until = outcome.retry_at
            return outcome

        if len(dues) < 2 or self.post_workers < 2:
            return [one(due) for due in dues]
        with self._lifecycle:
            if self._posters is None:
                self._posters = ThreadPoolExecutor(self.post_workers, thread_name_prefix="crsbot-post")
            posters = self._posters
        return list(posters.map(one, dues))

    @staticmethod
    def _due(episode: Episode, group: Sequence[Reminder], now: datetime, chain: Chain, token: str) -> DueReminder:
        reassess = [r for r in group if r.kind == ReminderKind.REASSESS]
        primary = (reassess or list(group))[0]  # the group is ordered by due time
        merged = tuple(r for r in group if r.id != primary.id)
        late_by = max(now - min(r.first_due_at for r in group), timedelta(0))
        return DueReminder(primary, episode, late_by, len(merged), merged, chain, token)

    def _deliver(self, due: DueReminder) -> Outcome | None:
        if due.maybe_posted:
            try:
                found = self._find_posted(due)
            except Exception as exc:  # noqa: BLE001 - cannot tell yet: try again later, still unknown
                return self._retry(due, exc, maybe_posted=True)
            if found is not None:
                log.info("reminder %s was already posted (%s): recorded, not posted again", due.ids, found)
                return self._sent(due, found, reconciled=True)
        if not self._lease_covers_a_post(due):
            log.warning("claim on reminders %s was taken over; leaving them to the new holder", due.ids)
            return None
        try:
            ts = self.notifier.post(due, due.metadata())
        except RateLimited as exc:
            retry_at = as_utc(self.clock.now()) + timedelta(seconds=exc.retry_after)
            log.warning("Slack rate limit: reminders %s handed back until %s", due.ids, retry_at.isoformat())
            return self._release(due, retry_at, str(exc), count_attempt=False)
        except Refused as exc:
            return self._retry(due, exc, maybe_posted=due.maybe_posted)
        except Exception as exc:  # noqa: BLE001 - timeout, connection lost, 5xx: the post may have landed
            return self._retry(due, exc, maybe_posted=True)
        return self._sent(due, ts, reconciled=False)

    def _find_posted(self, due: DueReminder) -> str | None:
        wanted = set(due.ids)
        for ts, metadata in self.notifier.posted(due):
            if wanted & posted_ids(metadata):
                return ts
        return None

    def _lease_covers_a_post(self, due: DueReminder) -> bool:
        """Renew the claim first if a post (up to its timeout) could outlast the lease."""
        now = as_utc(self.clock.now())
        lease_until = due.reminder.lease_until
        if lease_until is not None and now + self.post_timeout + timedelta(seconds=1) < lease_until:
            return True
        return self.repo.renew(due.token, due.ids, now + self.lease)

    def _sent(self, due: DueReminder, ts: str, *, reconciled: bool) -> Outcome:
        self.observer.posted(due, due.late_by, reconciled)
        if due.includes_escalation:
            self.observer.escalated(due)
        ep = due.episode
        return Outcome(
            due.ids, ReminderStatus.SENT, primary_id=due.reminder.id, message_ts=ts, late_by=due.late_by,
            reconciled=reconciled,
            cancel_kinds=(ReminderKind.ESCALATION,) if due.kind == ReminderKind.REASSESS else (),
            audit={"action": "escalation" if due.kind == ReminderKind.ESCALATION else "reminder_sent",
                   "channel_id": ep.channel_id, "patient_label": ep.patient_label,
                   "reminder_id": due.reminder.id, "episode_id": ep.id, "kind": str(due.kind),
                   "message_ts": ts, "late_by_seconds": due.late_by.total_seconds(),
                   "coalesced_ids": [m.id for m in due.merged], "attempt": due.attempt,
                   "step": due.reminder.step, "reconciled": reconciled})

    def _release(self, due: DueReminder, retry_at: datetime, error: str | None, *, count_attempt: bool = True,
                 maybe_posted: bool | None = None) -> Outcome:
        ep = due.episode
        return Outcome(
            due.ids, ReminderStatus.PENDING, retry_at=retry_at, error=error,
            maybe_posted=due.maybe_posted if maybe_posted is None else maybe_posted, count_attempt=count_attempt,
            audit={"action": "reminder_retry", "channel_id": ep.channel_id, "patient_label": ep.patient_label,
                   "reminder_ids": list(due.ids), "attempt": due.attempt, "retry_at": retry_at.isoformat(),
                   "error": error, "counted": count_attempt})

    def _retry(self, due: DueReminder, exc: Exception, *, maybe_posted: bool) -> Outcome:
        error = f"{type(exc).__name__}: {exc}"
        ep = due.episode
        if due.attempt >= self.max_attempts:
            log.error("giving up on reminders %s after %d attempts: %s", due.ids, due.attempt, error)
            self.observer.failed(due, error, True)
            return Outcome(due.ids, ReminderStatus.FAILED, error=error, maybe_posted=maybe_posted,
                           audit={"action": "failure", "channel_id": ep.channel_id,
                                  "patient_label": ep.patient_label, "reminder_ids": list(due.ids),
                                  "kind": str(due.kind), "attempts": due.attempt, "error": error})
        retry_at = as_utc(self.clock.now()) + self.retry_base * due.attempt
        log.warning("posting reminders %s failed (attempt %d%s), retrying at %s: %s", due.ids, due.attempt,
                    ", outcome unknown" if maybe_posted else "", retry_at.isoformat(), error)
        self.observer.failed(due, error, False)
        return self._release(due, retry_at, error, maybe_posted=maybe_posted)

    def _record(self, token: str, now: datetime, outcomes: list[Outcome], bookings: list[Booking]) -> None:
        """Complete a batch; if the database is unreachable, keep the outcomes and try again before the
        next claim (the fencing token makes a late record harmless)."""
        try:
            self.repo.complete(token, self.replica_id, now, outcomes, bookings)
        except Exception as exc:  # noqa: BLE001 - the posts happened; the record must not be lost with this tick
            self.outage.failed(exc)
            self._unrecorded.append((token, now, outcomes, bookings))

    def _record_unrecorded(self) -> None:
        while self._unrecorded:
            token, now, outcomes, bookings = self._unrecorded[0]
            self.repo.complete(token, self.replica_id, now, outcomes, bookings)  # raises while still down
            self._unrecorded.pop(0)

    # --------------------------------------------------------------- lifecycle

    def wake(self) -> None:
        """Something was booked: re-read the next due time now instead of at the end of the sleep."""
        self._wake.set()

    def _idle_seconds(self) -> float:
        next_due = self.repo.next_due_at()
        if next_due is None:
            return self.max_idle
        wait = (next_due - self.lead - as_utc(self.clock.now())).total_seconds()
        return min(max(wait, 0.0), self.max_idle)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                with self._tick_lock:
                    _Pump(self, rolling=True).run()
                self._run_hooks()
                wait = self._idle_seconds()
            except Exception as exc:  # noqa: BLE001 - keep going; the rows are still there next time
                self.outage.failed(exc)
                wait = self.max_idle
            else:
                self.outage.succeeded()
            if wait > 0:
                self._wake.wait(wait)
            self._wake.clear()

    def _listen(self, url: str) -> None:
        """PostgreSQL: other replicas' bookings wake this engine (NOTIFY is sent at their commit)."""
        import psycopg

        outage = OutageLog(log, f"LISTEN {WAKE_CHANNEL} (polling every {self.max_idle}s meanwhile)")
        while not self._stop.is_set():
            try:
                with psycopg.connect(url, autocommit=True) as conn:
                    conn.execute(f"LISTEN {WAKE_CHANNEL}")
                    outage.succeeded()
                    while not self._stop.is_set():
                        for _ in conn.notifies(timeout=0.5, stop_after=1):
                            self._wake.set()
            except Exception as exc:  # noqa: BLE001 - the poll fallback still runs; try again shortly
                outage.failed(exc)
                self._stop.wait(1.0)

    def start(self) -> None:
        """Start the delivery thread (and the PostgreSQL listener); idempotent."""
        with self._lifecycle:
            if self._threads:
                return
            self._stop.clear()
            threads = [threading.Thread(target=self._loop, name="crsbot-reminders", daemon=True)]
            engine = self.repo.engine
            if engine.dialect.name == "postgresql":
                url = engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
                threads.append(threading.Thread(target=self._listen, args=(url,), name="crsbot-listen",
                                                daemon=True))
            for thread in threads:
                thread.start()
            self._threads = threads
            log.info("reminder engine %s started (intervals %s, poll fallback %ss)", self.replica_id,
                     format_intervals(self.policy.intervals), self.max_idle)

    def shutdown(self, wait: bool = True, timeout: float = 30.0) -> None:
        """Stop; with wait=True, let a running pass finish (and record its posts) first."""
        with self._lifecycle:
            threads, self._threads = self._threads, []
        self._stop.set()
        self._wake.set()
        if wait:
            for thread in threads:
                thread.join(timeout=timeout)
        with self._lifecycle:
            pools = [p for p in (self._database, self._posters) if p is not None]
            self._database = self._posters = None
        for pool in pools:
            pool.shutdown(wait=wait)

    @property
    def running(self) -> bool:
        return bool(self._threads)


class _Pump:
    """One run of the engine: claim, post each group at its due time, record.

    Claims roll: once less than half the lead is claimed ahead, the pump hands "record what was posted,
    then claim the next window" to the engine's database thread and goes on posting, so a post never
    waits for the database (behind `/crs` writes, or an fsync) and the next reminder is already claimed
    when it falls due. A claim that comes back full (a catch-up) has the next one claimed the same way
    while it posts. `rolling=False` (`tick()`) does the same work inline and stops when nothing more
    is due now. Stopping hands unposted groups back, due as booked: nothing is posted before its time.
    """

    def __init__(self, engine: ReminderEngine, rolling: bool) -> None:
        self.engine = engine
        self.rolling = rolling
        self.heap: list[tuple[datetime, int, list[Reminder], ClaimedBatch]] = []
        self.results: dict[str, tuple[ClaimedBatch, _Posted]] = {}
        self.ready: list[DueReminder] = []
        self.posted: list[DueReminder] = []
        self.pause = _Pause()  # Slack said Retry-After: hand the rest back untried
        self.horizon: datetime | None = None
        self.more = False  # the last claim came back full: more may be due already
        self.claim_size = engine.batch_size  # grows while claims come back full (ReminderEngine.max_batch_size)
        self.seq = 0
        self.hooks_run_at = time.monotonic()
        self.rolling_job: Future[tuple[ClaimedBatch | None, datetime, int]] | None = None

    def run(self) -> list[DueReminder]:
        eng = self.engine
        eng._record_unrecorded()
        try:
            self.merge(*self.fetch())
            while self.heap or self.more or self.rolling_job is not None:
                if self.rolling_job is not None and (self.rolling_job.done() or not self.heap):
                    job, self.rolling_job = self.rolling_job, None
                    self.merge(*job.result())
                    continue
                if not self.heap:  # the last claim came back full: more is due already
                    if self.rolling:  # claim the next batch on the database thread while this one posts
                        self.rolling_job = eng._database_thread().submit(self.roll, self.take_records())
                        self.flush()
                        continue
                    self.flush()
                    self.write_records(self.take_records())
                    self.merge(*self.fetch())
                    continue
                now = as_utc(eng.clock.now())
                early = (self.heap[0][0] - now).total_seconds()
                if early > 0 and self.pause.until is None:
                    self.flush()
                    if self.rolling and self.horizon is not None and eng.lead > timedelta(0):
                        if self.rolling_job is not None:
                            early = min(early, 0.005)  # look again for the claim soon
                        elif self.horizon - now <= eng.lead / 2:
                            self.rolling_job = eng._database_thread().submit(self.roll, self.take_records())
                            continue
                        elif time.monotonic() - self.hooks_run_at >= eng.max_idle:
                            eng._run_hooks()
                            self.hooks_run_at = time.monotonic()
                            continue
                        else:
                            early = min(early, (self.horizon - eng.lead / 2 - now).total_seconds())
                    if eng._stop.wait(max(early, 0.0)):
                        break  # stopping: what is left is handed back below, never posted early
                    continue
                _, _, group, batch = heapq.heappop(self.heap)
                self.take(group, batch, now)
            self.flush()
        finally:
            if self.rolling_job is not None:
                job, self.rolling_job = self.rolling_job, None
                try:
                    self.merge(*job.result())  # claimed meanwhile: handed back below
                except Exception:  # noqa: BLE001 - the claim failed: nothing of it to hand back
                    log.warning("reminder claim failed while stopping", exc_info=True)
            self.hand_back()
            self.write_records(self.take_records())
        return self.posted

    def fetch(self) -> tuple[ClaimedBatch | None, datetime, int]:
        eng, size = self.engine, self.claim_size
        now = as_utc(eng.clock.now())
        return eng.repo.claim_batch(eng.replica_id, secrets.token_hex(16), now, now + eng.lease, size,
                                    due_by=now + eng.lead), now, size

    def roll(self, records: list[tuple[str, list[Outcome], list[Booking]]]) \
            -> tuple[ClaimedBatch | None, datetime, int]:
        """On the database thread: record the posts so far, then claim the next window."""
        self.write_records(records)
        return self.fetch()

    def merge(self, batch: ClaimedBatch | None, claimed_at: datetime, size: int) -> None:
        eng = self.engine
        self.horizon = claimed_at + eng.lead
        self.more = batch is not None and len(batch.reminders) >= size
        self.claim_size = min(size * 4, eng.max_batch_size) if self.more else eng.batch_size
        if batch is None:
            return
        eng.observer.queue_depth(len(batch.reminders))
        self.results[batch.token] = (batch, _Posted([], [], []))
        for group in eng._groups(batch):
            self.seq += 1
            heapq.heappush(self.heap, (min(r.due_at for r in group), self.seq, group, batch))

    def take(self, group: list[Reminder], batch: ClaimedBatch, now: datetime) -> None:
        """A group whose time has come: cancelled if its episode closed, else ready to post."""
        eng = self.engine
        episode = batch.episodes[group[0].episode_id]
        if episode.status != EpisodeStatus.OPEN and ReminderKind(group[0].kind).is_cadence:
            self.results[batch.token][1].outcomes.append(Outcome(tuple(r.id for r in group),
                                                                 ReminderStatus.CANCELLED))
            return
        chain = eng.policy.chain(batch.chains.get(episode.channel_id), batch.last_assessor.get(episode.id))
        self.ready.append(eng._due(episode, group, now, chain, batch.token))

    def flush(self) -> None:
        eng = self.engine
        ready, self.ready = self.ready, []
        for due, outcome in zip(ready, eng._deliver_all(ready, self.pause), strict=True):
            if outcome is None:
                continue  # the claim was lost (taken over): nothing of ours to record
            result = self.results[due.token][1]
            result.outcomes.append(outcome)
            if outcome.status == ReminderStatus.SENT:
                result.posted.append(due)
                # Whatever was booked for the episode while this post was in flight supersedes it.
                result.bookings.extend(Booking(due.episode.id, kind, at, step, (due.kind,))
                                       for kind, at, step in eng.policy.after_post(
                                           due.kind, due.reminder.step, due.episode.current_grade, due.chain,
                                           as_utc(eng.clock.now())))

    def hand_back(self) -> None:
        """Groups claimed but not posted (stopping, or an error): pending again, due as booked."""
        eng = self.engine
        leftover = [(group, batch) for _, _, group, batch in self.heap]
        self.heap = []
        for group, batch in leftover:
            self.results[batch.token][1].outcomes.append(Outcome(
                tuple(r.id for r in group), ReminderStatus.PENDING, retry_at=min(r.due_at for r in group),
                maybe_posted=any(r.maybe_posted for r in group), count_attempt=False))
        for due in self.ready:
            self.results[due.token][1].outcomes.append(eng._release(due, as_utc(eng.clock.now()), None,
                                                                    count_attempt=False))
        self.ready = []

    def take_records(self) -> list[tuple[str, list[Outcome], list[Booking]]]:
        """What to record now, taken out of the pump (finished batches are let go)."""
        live = {g[3].token for g in self.heap} | {due.token for due in self.ready}
        records = []
        for token, (batch, result) in list(self.results.items()):
            if result.outcomes:
                records.append((token, result.outcomes, result.bookings))
                if not self.rolling:  # the background loop keeps nothing: a catch-up may post thousands
                    self.posted += result.posted
            if token in live:
                self.results[token] = (batch, _Posted([], [], []))
            else:
                del self.results[token]
        return records

    def write_records(self, records: list[tuple[str, list[Outcome], list[Booking]]]) -> None:
        now = as_utc(self.engine.clock.now())
        for token, outcomes, bookings in records:
            self.engine._record(token, now, outcomes, bookings)
