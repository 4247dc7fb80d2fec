"""Reminder delivery storage: SQL only, no rules.

The engine decides what happens to a claimed reminder (post, reconcile, retry, give up) and what
to book next (the policy's answer); this module only makes those decisions durable, batch-wise:
one statement claims a batch (`UPDATE ... RETURNING`, with `FOR UPDATE SKIP LOCKED` on PostgreSQL
so replicas take disjoint batches), one transaction records a batch's outcomes. Every claim gets a
fresh token; an outcome is recorded only for rows that still carry that token (fencing), so a
claim that was taken over can never be completed by its former holder.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, and_, bindparam, func, insert, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from bot.clock import as_utc
from bot.storage.db import notify_bookings
from bot.storage.kinds import EpisodeStatus, ReminderKind, ReminderStatus
from bot.storage.records import Episode, Oncall, Reminder
from bot.storage.tables import AssessmentRow, AuditRow, EpisodeRow, OncallRow, ReminderRow

__all__ = ["Booking", "ClaimedBatch", "Outcome", "ReminderRepository"]


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
        self.engine = engine
        self._sessions = sessionmaker(engine, expire_on_commit=False)
        self._pg = engine.dialect.name == "postgresql"

    # ------------------------------------------------------------------ claim

    @staticmethod
    def _claimable(now: datetime, due_by: datetime) -> Any:
        return or_(
            and_(ReminderRow.status == ReminderStatus.PENDING, ReminderRow.due_at <= due_by),
            and_(ReminderRow.status == ReminderStatus.CLAIMED,
                 func.coalesce(ReminderRow.lease_until, ReminderRow.claimed_at) < now),
        )

    def claim_batch(self, replica_id: str, token: str, now: datetime, lease_until: datetime,
                    limit: int, due_by: datetime | None = None) -> ClaimedBatch | None:
        """Claim up to `limit` reminders due by `due_by` (default `now`) or lease-expired, with one
        UPDATE; None if nothing is due.

        A taken-over claim (status was already 'claimed') is flagged maybe_posted: its holder may
        have posted before it died or lost the database.
        """
        now, lease_until = as_utc(now), as_utc(lease_until)
        pick = (select(ReminderRow.id).where(self._claimable(now, as_utc(due_by or now)))
                .order_by(ReminderRow.due_at, ReminderRow.id).limit(limit))
        if self._pg:
            pick = pick.with_for_update(skip_locked=True)
        stmt = (
            update(ReminderRow)
            .where(ReminderRow.id.in_(pick.scalar_subquery()))
            .values(status=ReminderStatus.CLAIMED, claim_token=token, claimed_by=replica_id, claimed_at=now,
                    lease_until=lease_until, attempts=ReminderRow.attempts + 1,
                    maybe_posted=or_(ReminderRow.maybe_posted, ReminderRow.status == ReminderStatus.CLAIMED))
            .returning(ReminderRow)
            .execution_options(synchronize_session=False)
        )
        with self._sessions.begin() as session:
            rows = sorted(session.scalars(stmt).all(), key=lambda r: (r.due_at, r.id))
            if not rows:
                return None
            reminders = tuple(Reminder.of(r) for r in rows)
            episode_ids = sorted({r.episode_id for r in reminders})
            episodes = {e.id: Episode.of(e) for e in session.scalars(
                select(EpisodeRow).where(EpisodeRow.id.in_(episode_ids)))}
            channels = sorted({e.channel_id for e in episodes.values()})
            chains = {o.channel_id: Oncall.of(o) for o in session.scalars(
                select(OncallRow).where(OncallRow.channel_id.in_(channels)))}
            unset = [e.id for e in episodes.values() if e.channel_id not in chains]
            last: dict[int, str] = {}
            if unset:
                for episode_id, user_id in session.execute(
                        select(AssessmentRow.episode_id, AssessmentRow.user_id)
                        .where(AssessmentRow.episode_id.in_(unset))
                        .order_by(AssessmentRow.created_at, AssessmentRow.id)):
                    last[episode_id] = user_id
            return ClaimedBatch(token, reminders, episodes, chains, last)

    def renew(self, token: str, ids: Collection[int], lease_until: datetime) -> bool:
        """Extend a claim before a long wait; False if any row is no longer held by this token."""
        with self._sessions.begin() as session:
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
        with self._sessions.begin() as session:
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
        with self._sessions.begin() as session:
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
            for episode_id, kinds in cancel:
                self.cancel_pending(session, episode_id, kinds)
            if bookings:
                self._book(session, [b for b in bookings if b.episode_id in kept_episodes], now)
            if audits:
                session.execute(insert(AuditRow), audits)
            return held

    @staticmethod
    def cancel_pending(session: Session, episode_id: int, kinds: Iterable[ReminderKind]) -> int:
        return int(session.execute(
            update(ReminderRow)
            .where(ReminderRow.episode_id == episode_id, ReminderRow.status == ReminderStatus.PENDING,
                   ReminderRow.kind.in_([str(k) for k in kinds]))
            .values(status=ReminderStatus.CANCELLED)
            .execution_options(synchronize_session=False)
        ).rowcount)  # type: ignore[attr-defined]

    def _book(self, session: Session, bookings: Sequence[Booking], now: datetime) -> None:
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

