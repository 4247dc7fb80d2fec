"""Episode and reminder storage: SQL only, no rules.

Episodes, reminder bookings and answers, and the on-call chain are what commands and buttons change
(`EpisodeRepository`, `BookingRepository`, `OncallRepository`, composed into `Store`). Delivery is the
engine's (`ReminderRepository`): the engine decides what happens to a claimed reminder (post, reconcile,
retry, give up) and what to book next (the policy's answer); this module only makes those decisions durable, batch-wise:
one statement claims a batch of episodes (`UPDATE ... RETURNING`, with `FOR UPDATE SKIP LOCKED` on
PostgreSQL so replicas take disjoint episodes), one transaction records a batch's outcomes. Every claim gets a
fresh token; an outcome is recorded only for rows that still carry that token (fencing), so a
claim that was taken over can never be completed by its former holder.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, and_, bindparam, func, insert, or_, select, union, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from bot.clock import as_utc
from bot.storage.db import notify_bookings
from bot.storage.repository import ANSWER_ACTIONS, INTEGRITY_RETRIES, NotFound, Repository, clean_label, iso
from bot.storage.kinds import AnswerAction, EpisodeStatus, ReminderKind, ReminderStatus
from bot.storage.records import Assessment, Episode, EpisodeHistory, Oncall, Reminder
from bot.storage.tables import REMINDER_KINDS, AssessmentRow, AuditRow, EpisodeRow, OncallRow, ReminderRow

__all__ = ["AnswerOutcome", "Booking", "BookingRepository", "ClaimedBatch", "EpisodeRepository", "OncallRepository",
           "Outcome", "ReminderRepository"]


@dataclass(frozen=True)
class Booking:
    """A reminder to add after a post, only while the episode is open and has no pending reminder of
    the `unless_pending` kinds (a newer assessment or a snooze meanwhile supersedes it)."""

    episode_id: int
    kind: ReminderKind
    due_at: datetime
    step: int = 0
    unless_pending: tuple[ReminderKind, ...] = ()


@dataclass
class Outcome:
    """What became of one claimed group of reminders (one post's worth).

    status SENT: `message_ts` set (`reconciled` if an earlier attempt's post was found instead);
    PENDING: handed back, due again at `retry_at`; FAILED / CANCELLED: final.
    """

    ids: tuple[int, ...]
    status: ReminderStatus
    primary_id: int | None = None
    message_ts: str | None = None
    late_by: timedelta | None = None
    retry_at: datetime | None = None
    error: str | None = None
    maybe_posted: bool = False
    count_attempt: bool = True
    reconciled: bool = False
    cancel_kinds: tuple[ReminderKind, ...] = ()  # pending kinds of the episode superseded by this post
    audit: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ClaimedBatch:
    token: str
    reminders: tuple[Reminder, ...]
    episodes: dict[int, Episode]
    chains: dict[str, Oncall]
    last_assessor: dict[int, str]


class ReminderRepository:
    def __init__(self, engine: Engine) -> None:
        # Core connections throughout, no Session: a catch-up claims and completes thousands of rows, and
        # the ORM's unit of work and identity map cost as much CPU as the posts (bench/reminders.py).
        self.engine = engine
        self._pg = engine.dialect.name == "postgresql"

    # ------------------------------------------------------------------ claim

    @staticmethod
    def _claimable(now: datetime, due_by: datetime, status: Any = ReminderRow.status) -> Any:
        lease_end = func.coalesce(ReminderRow.lease_until, ReminderRow.claimed_at)
        return or_(and_(status == ReminderStatus.PENDING, ReminderRow.due_at <= due_by),
                   and_(status == ReminderStatus.CLAIMED, lease_end < now))

    def claim_batch(self, replica_id: str, token: str, now: datetime, lease_until: datetime,
                    limit: int, due_by: datetime | None = None) -> ClaimedBatch | None:
        """Claim every due (by `due_by`, default `now`) or lease-expired reminder of the episodes of the
        `limit` earliest due reminders, with one UPDATE; None if nothing is due.

        The unit is the episode, not the row: an episode's due reminders always go to one claimer,
        so they become one post. On PostgreSQL the episodes are locked `FOR UPDATE SKIP LOCKED`
        (replicas take disjoint episodes; row-level SKIP LOCKED alone let two replicas split one
        episode's rows between them and post it twice), and so are the rows: a row another replica
        changed after this statement's snapshot is re-checked against the due test as it is locked.
        A taken-over claim (status was already 'claimed') is flagged maybe_posted: its holder may
        have posted before it died or lost the database.
        """
        now, lease_until = as_utc(now), as_utc(lease_until)
        claimable = self._claimable(now, as_utc(due_by or now))
        # Which episodes: those of the earliest due pending rows (a range of the (status, due_at) index,
        # stopped at the limit: grouping every due row cost O(pending) per batch, O(n^2) for a catch-up),
        # plus any whose claim has lapsed (few: a dead replica's batch at most).
        first = (select(ReminderRow.episode_id)
                 .where(ReminderRow.status == ReminderStatus.PENDING, ReminderRow.due_at <= as_utc(due_by or now))
                 .order_by(ReminderRow.due_at, ReminderRow.id))
        lapsed = select(ReminderRow.episode_id).where(
            ReminderRow.status == ReminderStatus.CLAIMED,
            func.coalesce(ReminderRow.lease_until, ReminderRow.claimed_at) < now)
        if self._pg:
            # Candidates beyond `limit` let a second replica find unlocked episodes to take.
            candidates = or_(EpisodeRow.id.in_(first.limit(limit * 4).scalar_subquery()),
                             EpisodeRow.id.in_(lapsed.scalar_subquery()))
            episodes = select(EpisodeRow.id).where(candidates).limit(limit).with_for_update(skip_locked=True)
            pick: Any = (select(ReminderRow.id)
                         .where(claimable, ReminderRow.episode_id.in_(episodes.scalar_subquery()))
                         .with_for_update(of=ReminderRow, skip_locked=True).scalar_subquery())
        else:  # SQLite: one writer at a time, so the statement alone is atomic
            # Driven from the episode list (the (episode_id, status) index). The due test reads the status as
            # `status || ''`, which no index serves: otherwise SQLite's planner walks every due row of the
            # site through the (status, due_at) index and tests each against the list.
            episodes = union(first.limit(limit).subquery().select(), lapsed)
            unindexed = self._claimable(now, as_utc(due_by or now), ReminderRow.status.concat(""))
            pick = (select(ReminderRow.id)
                    .where(ReminderRow.episode_id.in_(episodes.scalar_subquery()), unindexed)
                    .scalar_subquery())
        # Core rows, not ORM objects: a catch-up claims thousands, and the identity map cost half the claim.
        r, e = ReminderRow.__table__.c, EpisodeRow.__table__.c
        stmt = (
            update(ReminderRow.__table__)
            .where(r.id.in_(pick))
            .values(status=ReminderStatus.CLAIMED.value, claim_token=token, claimed_by=replica_id, claimed_at=now,
                    lease_until=lease_until, attempts=r.attempts + 1,
                    maybe_posted=or_(r.maybe_posted, r.status == ReminderStatus.CLAIMED.value))
            .returning(*ReminderRow.__table__.c)
        )
        with self.engine.begin() as session:
            rows = sorted(session.execute(stmt).all(), key=lambda row: (row.due_at, row.id))
            if not rows:
                return None
            reminders = tuple(Reminder.of(row) for row in rows)  # type: ignore[arg-type]
            episode_ids = sorted({row.episode_id for row in reminders})
            episodes = {row.id: Episode.of(row) for row in session.execute(  # type: ignore[arg-type]
                select(EpisodeRow.__table__).where(e.id.in_(episode_ids)))}
            channels = sorted({ep.channel_id for ep in episodes.values()})
            chains = {o.channel_id: Oncall.of(o) for o in session.execute(  # type: ignore[arg-type]
                select(OncallRow.__table__).where(OncallRow.__table__.c.channel_id.in_(channels)))}
            unset = [ep.id for ep in episodes.values() if ep.channel_id not in chains]
            last: dict[int, str] = {}
            if unset:
                a = AssessmentRow.__table__.c
                latest = (select(func.max(a.id)).where(a.episode_id.in_(unset)).group_by(a.episode_id)
                          .scalar_subquery())
                for episode_id, user_id in session.execute(select(a.episode_id, a.user_id).where(a.id.in_(latest))):
                    last[episode_id] = user_id
            return ClaimedBatch(token, reminders, episodes, chains, last)

    def renew(self, token: str, ids: Collection[int], lease_until: datetime) -> bool:
        """Extend a claim before a long wait; False if any row is no longer held by this token."""
        with self.engine.begin() as session:
            changed = session.execute(
                update(ReminderRow)
                .where(ReminderRow.id.in_(list(ids)), ReminderRow.claim_token == token,
                       ReminderRow.status == ReminderStatus.CLAIMED)
                .values(lease_until=as_utc(lease_until))
                .execution_options(synchronize_session=False)
            ).rowcount  # type: ignore[attr-defined]
            return int(changed) == len(ids)

    def next_due_at(self) -> datetime | None:
        """When the engine next has something to do: the earliest pending due time or claim lease end."""
        with self.engine.begin() as session:
            pending = session.scalar(select(func.min(ReminderRow.due_at))
                                     .where(ReminderRow.status == ReminderStatus.PENDING))
            lease = session.scalar(select(func.min(func.coalesce(ReminderRow.lease_until, ReminderRow.claimed_at)))
                                   .where(ReminderRow.status == ReminderStatus.CLAIMED))
        found = [as_utc(v) for v in (pending, lease) if v is not None]
        return min(found) if found else None

    # --------------------------------------------------------------- complete

    def complete(self, token: str, replica_id: str, now: datetime, outcomes: Sequence[Outcome],
                 bookings: Sequence[Booking]) -> set[int]:
        """Record a batch's outcomes and bookings in one transaction; returns the ids recorded.

        Rows no longer held by `token` (taken over meanwhile) are left alone, and bookings of an
        outcome none of whose rows was held are dropped with it.
        """
        now = as_utc(now)
        all_ids = [i for o in outcomes for i in o.ids]
        if not all_ids:
            return set()
        with self.engine.begin() as session:
            held_rows = session.execute(
                select(ReminderRow.id, ReminderRow.episode_id)
                .where(ReminderRow.id.in_(all_ids), ReminderRow.claim_token == token,
                       ReminderRow.status == ReminderStatus.CLAIMED)
                .with_for_update()
            ).all()
            held = {rid for rid, _ in held_rows}
            episode_of = dict(held_rows)
            sent: list[dict[str, Any]] = []
            other: list[dict[str, Any]] = []
            audits: list[dict[str, Any]] = []
            cancel: list[tuple[int, tuple[ReminderKind, ...]]] = []
            kept_episodes: set[int] = set()
            for outcome in outcomes:
                ids = [i for i in outcome.ids if i in held]
                if not ids:
                    continue
                kept_episodes.add(episode_of[ids[0]])
                if outcome.status == ReminderStatus.SENT:
                    for rid in ids:
                        sent.append({"rid": rid, "ts": outcome.message_ts,
                                     "late": outcome.late_by.total_seconds() if outcome.late_by else None,
                                     "into": None if rid == outcome.primary_id else outcome.primary_id})
                    if outcome.cancel_kinds:
                        cancel.append((episode_of[ids[0]], outcome.cancel_kinds))
                else:
                    for rid in ids:
                        other.append({
                            "rid": rid, "status": str(outcome.status),
                            "due": as_utc(outcome.retry_at) if outcome.retry_at else None,
                            "err": outcome.error, "maybe": outcome.maybe_posted,
                            "undo": 0 if outcome.count_attempt else 1,
                        })
                if outcome.audit:
                    detail = dict(outcome.audit)
                    audits.append({"at": now, "action": detail.pop("action"),
                                   "channel_id": detail.pop("channel_id", None), "user_id": None,
                                   "patient_label": detail.pop("patient_label", None),
                                   "detail_json": {**detail, "replica": replica_id}})
            r = ReminderRow.__table__.c
            if sent:
                session.execute(
                    update(ReminderRow.__table__)
                    .where(r.id == bindparam("rid"))
                    .values(status=ReminderStatus.SENT.value, sent_at=now, message_ts=bindparam("ts"),
                            late_by_seconds=bindparam("late"), coalesced_into=bindparam("into"),
                            last_error=None, claim_token=None, lease_until=None),
                    sent)
            if other:
                session.execute(
                    update(ReminderRow.__table__)
                    .where(r.id == bindparam("rid"))
                    .values(status=bindparam("status"), due_at=func.coalesce(bindparam("due"), r.due_at),
                            last_error=bindparam("err"), maybe_posted=bindparam("maybe"),
                            attempts=r.attempts - bindparam("undo"), claim_token=None, claimed_by=None,
                            lease_until=None),
                    other)
            by_kinds: dict[tuple[ReminderKind, ...], list[int]] = {}
            for episode_id, kinds in cancel:
                by_kinds.setdefault(kinds, []).append(episode_id)
            for kinds, episode_ids in by_kinds.items():  # one statement per batch, not per post
                Repository._cancel_pending(session, episode_ids, [str(k) for k in kinds])
            if bookings:
                self._book(session, [b for b in bookings if b.episode_id in kept_episodes], now)
            if audits:
                session.execute(insert(AuditRow), audits)
            return held

    def _book(self, session: Connection, bookings: Sequence[Booking], now: datetime) -> None:
        if not bookings:
            return
        episode_ids = sorted({b.episode_id for b in bookings})
        open_ids = set(session.scalars(select(EpisodeRow.id).where(
            EpisodeRow.id.in_(episode_ids), EpisodeRow.status == EpisodeStatus.OPEN)))
        busy = {(episode_id, kind) for episode_id, kind in session.execute(
            select(ReminderRow.episode_id, ReminderRow.kind)
            .where(ReminderRow.episode_id.in_(episode_ids), ReminderRow.status == ReminderStatus.PENDING))}
        rows = [
            {"episode_id": b.episode_id, "kind": str(b.kind), "due_at": as_utc(b.due_at),
             "first_due_at": as_utc(b.due_at), "status": ReminderStatus.PENDING.value, "attempts": 0,
             "created_at": now, "step": b.step, "maybe_posted": False}
            for b in bookings
            if b.episode_id in open_ids and not any((b.episode_id, str(k)) in busy for k in b.unless_pending)
        ]
        if rows:
            session.execute(insert(ReminderRow), rows)
            notify_bookings(session)


# ---------------------------------------------------------------------------- bookings and answers


@dataclass(frozen=True)
class AnswerOutcome:
    """What answering a reminder changed, for the Slack reply."""

    episode: Episode
    action: str
    answered_ids: tuple[int, ...]
    snoozed_until: datetime | None


class EpisodeRepository(Repository):
    """Episodes: their thread, recurrence, lookups, history and resolution."""

    def set_episode_thread(self, episode_id: int, ts: str) -> None:
        """Remember the Slack ts of the episode's first post (reminders reply in its thread)."""
        with self._tx() as session:
            self._require_episode(session, episode_id).thread_ts = ts

    def mark_recurrence(self, episode_id: int, previous_episode_id: int) -> Episode:
        """Link an episode to the resolved one it recurs after (the caller judged it a recurrence)."""
        if episode_id == previous_episode_id:
            raise ValueError("an episode cannot be a recurrence of itself")
        with self._tx() as session:
            row = self._require_episode(session, episode_id)
            if session.get(EpisodeRow, previous_episode_id) is None:
                raise NotFound(f"no episode with id {previous_episode_id}")
            row.recurrent_of = previous_episode_id
            return Episode.of(row)

    def episode_thread(self, episode_id: int) -> str | None:
        """The ts of the episode's thread, once its first reply has been posted and recorded."""
        with self._reads.connect() as connection:  # a read: no write lock
            return connection.scalar(select(EpisodeRow.thread_ts).where(EpisodeRow.id == episode_id))

    def get_episode(self, episode_id: int) -> Episode | None:
        with self._tx() as session:
            row = session.get(EpisodeRow, episode_id)
            return Episode.of(row) if row is not None else None

    def find_open_episode(self, channel_id: str, patient_label: str) -> Episode | None:
        label = clean_label(patient_label)
        with self._tx() as session:
            row = session.scalars(
                select(EpisodeRow).where(
                    EpisodeRow.channel_id == channel_id,
                    EpisodeRow.patient_label == label,
                    EpisodeRow.status == EpisodeStatus.OPEN,
                )
            ).one_or_none()
            return Episode.of(row) if row is not None else None

    def last_resolved_episode(self, channel_id: str, patient_label: str, product: str) -> Episode | None:
        """The patient's most recently resolved episode with this product: what recurrence is judged against."""
        label = clean_label(patient_label)
        with self._tx() as session:
            row = session.scalars(self._last_resolved(channel_id, label, product)).one_or_none()
            return Episode.of(row) if row is not None else None

    def open_episodes(self, channel_id: str) -> list[Episode]:
        with self._tx() as session:
            rows = session.scalars(
                select(EpisodeRow)
                .where(EpisodeRow.channel_id == channel_id, EpisodeRow.status == EpisodeStatus.OPEN)
                .order_by(EpisodeRow.opened_at, EpisodeRow.id)
            )
            return [Episode.of(r) for r in rows]

    def episode_history(self, channel_id: str, patient_label: str) -> list[EpisodeHistory]:
        """All episodes of one patient in a channel, oldest first, each with its assessments in time order."""
        label = clean_label(patient_label)
        with self._tx() as session:
            episodes = list(
                session.scalars(
                    select(EpisodeRow)
                    .where(EpisodeRow.channel_id == channel_id, EpisodeRow.patient_label == label)
                    .order_by(EpisodeRow.opened_at, EpisodeRow.id)
                )
            )
            ids = [e.id for e in episodes]
            by_episode: dict[int, list[Assessment]] = {i: [] for i in ids}
            if ids:
                for a in session.scalars(
                    select(AssessmentRow)
                    .where(AssessmentRow.episode_id.in_(ids))
                    .order_by(AssessmentRow.created_at, AssessmentRow.id)
                ):
                    by_episode[a.episode_id].append(Assessment.of(a))  # type: ignore[index]
            return [EpisodeHistory(Episode.of(e), tuple(by_episode[e.id])) for e in episodes]

    def resolve_episode(
        self, channel_id: str, patient_label: str, user_id: str, symptom_free_hours: float | None
    ) -> Episode | None:
        """Resolve the patient's open episode; None if there is none.

        `symptom_free_hours` None (or 0) books no symptom-free notice, for
        rulebooks that do not define the interval.
        """
        label = clean_label(patient_label)
        now = self._now()
        with self._tx() as session:
            row = session.scalars(
                select(EpisodeRow)
                .where(
                    EpisodeRow.channel_id == channel_id,
                    EpisodeRow.patient_label == label,
                    EpisodeRow.status == EpisodeStatus.OPEN,
                )
                .with_for_update()
            ).one_or_none()
            if row is None:
                return None
            self._resolve(session, row, user_id, symptom_free_hours, now)
            return Episode.of(row)

    def resolve_episode_by_id(
        self, episode_id: int, user_id: str, symptom_free_hours: float | None
    ) -> Episode | None:
        """Resolve an episode by id; None if it was already resolved. Hours as in `resolve_episode`."""
        now = self._now()
        with self._tx() as session:
            row = self._require_episode(session, episode_id)
            if row.status != EpisodeStatus.OPEN:
                return None
            self._resolve(session, row, user_id, symptom_free_hours, now)
            return Episode.of(row)

    def _resolve(
        self, session: Session, row: EpisodeRow, user_id: str, hours: float | None, now: datetime
    ) -> None:
        """Close the episode, stop its reassessment cycle and book the symptom-free notice (if hours given)."""
        if hours is not None and hours < 0:
            raise ValueError(f"symptom_free_hours must not be negative, got {hours}")
        row.status = EpisodeStatus.RESOLVED
        row.resolved_at = now
        row.resolved_by = user_id
        row.symptom_free_until = now + timedelta(hours=hours) if hours else None
        cancelled = self._cancel_pending(session, row.id, REMINDER_KINDS)
        answered = self._mark_answered(session, row.id, user_id, now)
        notice = None
        if row.symptom_free_until is not None:
            notice = self._add_reminder(session, row.id, ReminderKind.SYMPTOM_FREE, row.symptom_free_until, now)
        session.flush()
        self._add_audit(
            session,
            now,
            "resolve",
            row.channel_id,
            user_id,
            row.patient_label,
            {
                "episode_id": row.id,
                "worst_grade": row.worst_grade,
                "cancelled_reminders": cancelled,
                "answered_reminders": list(answered),
                "symptom_free_reminder_id": notice.id if notice is not None else None,
                "symptom_free_until": iso(row.symptom_free_until),
            },
        )


class OncallRepository(Repository):
    """The channel's escalation chain."""

    def set_oncall(self, channel_id: str, target: str, user_id: str, *, secondary: str | None = None,
                   secondary_after: timedelta | None = None, channel_after: timedelta | None = None,
                   repeat: timedelta | None = None) -> Oncall:
        """Set the channel's escalation chain (replaces the previous one); None delays keep site defaults."""
        target = target.strip()
        if not target:
            raise ValueError("on-call target must not be empty")

        def secs(value: timedelta | None) -> int | None:
            return int(value.total_seconds()) if value is not None else None

        chain = {"secondary": secondary, "secondary_after_seconds": secs(secondary_after),
                 "channel_after_seconds": secs(channel_after), "repeat_seconds": secs(repeat)}
        for attempt in range(1, INTEGRITY_RETRIES + 1):
            now = self._now()
            try:
                with self._tx() as session:
                    row = session.get(OncallRow, channel_id, with_for_update=True)
                    previous = row.target if row is not None else None
                    if row is None:
                        row = OncallRow(channel_id=channel_id, target=target, set_by=user_id, set_at=now, **chain)
                        session.add(row)
                    else:
                        row.target, row.set_by, row.set_at = target, user_id, now
                        for key, value in chain.items():
                            setattr(row, key, value)
                    self._add_audit(session, now, "oncall_set", channel_id, user_id, None,
                                    {"target": target, "previous": previous, **chain})
                    session.flush()
                    return Oncall.of(row)
            except IntegrityError:
                if attempt == INTEGRITY_RETRIES:
                    raise
        raise AssertionError("unreachable")

    def get_oncall(self, channel_id: str) -> Oncall | None:
        with self._reads.connect() as connection:  # read-only, Core: asked on every new episode
            row = connection.execute(select(OncallRow.__table__).where(OncallRow.__table__.c.channel_id == channel_id)
                                     ).one_or_none()
            return Oncall.of(row) if row is not None else None  # type: ignore[arg-type]


class BookingRepository(Repository):
    """Reminders as commands and answers book, cancel and answer them (delivery is ReminderRepository's)."""

    def get_reminder(self, reminder_id: int) -> Reminder | None:
        with self._tx() as session:
            row = session.get(ReminderRow, reminder_id)
            return Reminder.of(row) if row is not None else None

    def reminders(self, episode_id: int | None = None, status: str | None = None) -> list[Reminder]:
        """Reminders (optionally of one episode / in one status) ordered by due time."""
        with self._tx() as session:
            stmt = select(ReminderRow)
            if episode_id is not None:
                # Sorted here, not in SQL: an ORDER BY due_at lets SQLite pick the (status, due_at) index
                # and walk every pending reminder of every episode instead of this episode's few.
                stmt = stmt.where(ReminderRow.episode_id == episode_id)
            else:
                stmt = stmt.order_by(ReminderRow.due_at, ReminderRow.id)
            if status is not None:
                stmt = stmt.where(ReminderRow.status == status)
            found = [Reminder.of(r) for r in session.scalars(stmt)]
            return sorted(found, key=lambda r: (r.due_at, r.id)) if episode_id is not None else found

    def next_due(self, episode_ids: Collection[int], kind: ReminderKind | None = None) -> dict[int, datetime]:
        """Each episode's earliest pending reminder (of `kind`, if given), in one query: for lists of
        episodes (status, App Home), which must not cost a query per patient."""
        if not episode_ids:
            return {}
        with self._tx() as session:
            stmt = (select(ReminderRow.episode_id, func.min(ReminderRow.due_at))
                    .where(ReminderRow.episode_id.in_(list(episode_ids)), ReminderRow.status == ReminderStatus.PENDING)
                    .group_by(ReminderRow.episode_id))
            if kind is not None:
                stmt = stmt.where(ReminderRow.kind == kind)
            return {episode_id: as_utc(due) for episode_id, due in session.execute(stmt)}

    def queue_counts(self, now: datetime) -> dict[str, int]:
        """How many reminders are pending, overdue (pending and past due) and claimed: counted in SQL."""
        with self._tx() as session:
            pending, overdue, claimed = session.execute(select(
                func.count().filter(ReminderRow.status == ReminderStatus.PENDING),
                func.count().filter(ReminderRow.status == ReminderStatus.PENDING, ReminderRow.due_at <= as_utc(now)),
                func.count().filter(ReminderRow.status == ReminderStatus.CLAIMED),
            ).where(ReminderRow.status.in_([ReminderStatus.PENDING, ReminderStatus.CLAIMED]))).one()
            return {"pending": int(pending), "overdue": int(overdue), "claimed": int(claimed)}

    def cancel_reminder(self, reminder_id: int) -> bool:
        """Cancel one pending reminder; False if it was not pending (already posted, claimed or gone)."""
        with self._tx() as session:
            return self._set_status(session, [reminder_id], (ReminderStatus.PENDING,),
                                    {"status": ReminderStatus.CANCELLED}) == 1

    def schedule_reminder(self, episode_id: int, kind: str, due_at: datetime) -> Reminder:
        """Add one pending reminder (no cancellation of others)."""
        now = self._now()
        with self._tx() as session:
            self._require_episode(session, episode_id)
            row = self._add_reminder(session, episode_id, kind, due_at, now)
            session.flush()
            return Reminder.of(row)

    def reschedule(
        self,
        episode_id: int,
        cancel_kinds: Collection[str],
        new_kind: str | None = None,
        due_at: datetime | None = None,
        *,
        answered_by: str | None = None,
    ) -> Reminder | None:
        """Atomically cancel the episode's pending reminders of `cancel_kinds` and book a new one.

        With `answered_by`, posted reminders are also marked answered (a new
        assessment is the answer to "please reassess"). Nothing new is booked for
        a resolved episode.
        """
        now = self._now()
        with self._tx() as session:
            row = self._require_episode(session, episode_id)
            self._cancel_pending(session, episode_id, cancel_kinds)
            if answered_by is not None:
                answered = self._mark_answered(session, episode_id, answered_by, now)
                if answered:
                    self._add_audit(
                        session,
                        now,
                        "reminder_answered",
                        row.channel_id,
                        answered_by,
                        row.patient_label,
                        {"episode_id": episode_id, "action": "assessment", "reminder_ids": list(answered)},
                    )
            if new_kind is None or due_at is None or row.status != EpisodeStatus.OPEN:
                return None
            reminder = self._add_reminder(session, episode_id, new_kind, due_at, now)
            session.flush()
            return Reminder.of(reminder)

    def answer_episode(
        self,
        episode_id: int,
        user_id: str,
        action: str,
        *,
        snooze_until: datetime | None = None,
    ) -> AnswerOutcome:
        """Someone responded to a reminder: mark posted ones answered, stop the escalation, then act.

        "snooze" replaces the pending reassess with one at `snooze_until` (the caller's policy
        decides when); "reassessed" and "ack" only answer.
        """
        if action not in ANSWER_ACTIONS:
            raise ValueError(f"unknown answer action {action!r}; expected one of {ANSWER_ACTIONS}")
        if action == AnswerAction.SNOOZE and snooze_until is None:
            raise ValueError("snooze needs snooze_until")
        now = self._now()
        with self._tx() as session:
            row = self._require_episode(session, episode_id)
            answered = self._mark_answered(session, episode_id, user_id, now)
            self._cancel_pending(session, episode_id, (ReminderKind.ESCALATION,))
            snoozed: datetime | None = None
            if row.status == EpisodeStatus.OPEN and action == AnswerAction.SNOOZE:
                assert snooze_until is not None
                snoozed = as_utc(snooze_until)
                session.execute(
                    update(ReminderRow)
                    .where(ReminderRow.episode_id == episode_id, ReminderRow.status == ReminderStatus.PENDING,
                           ReminderRow.kind == ReminderKind.REASSESS, ReminderRow.due_at < snoozed)
                    .values(status=ReminderStatus.CANCELLED)
                    .execution_options(synchronize_session=False))
                self._add_reminder(session, episode_id, ReminderKind.REASSESS, snoozed, now)
            self._add_audit(
                session,
                now,
                "reminder_answered",
                row.channel_id,
                user_id,
                row.patient_label,
                {
                    "episode_id": episode_id,
                    "action": action,
                    "reminder_ids": list(answered),
                    "snoozed_until": iso(snoozed),
                },
            )
            session.flush()
            return AnswerOutcome(Episode.of(row), action, answered, snoozed)
