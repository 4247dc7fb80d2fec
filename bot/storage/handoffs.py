"""Handoff bookkeeping (SQL only): which handoffs were posted where, and the claim that makes a scheduled one
post exactly once across replicas.

A scheduled handoff is claimed by inserting its (channel, slot) row: the unique index lets exactly one replica
succeed, on SQLite and PostgreSQL alike. The claim is a lease from `claimed_at` (its length is the scheduler's):
until the row is posted, its holder renews it before posting, and once it has run out another replica takes it
over. Both are one compare-and-set on (claimed_by, claimed_at), so of two replicas only one holds it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from bot.clock import Clock, as_utc
from bot.storage.records import Episode
from bot.storage.tables import AuditRow, EpisodeRow, HandoffRow

__all__ = ["HandoffClaim", "HandoffLog"]


@dataclass(frozen=True)
class HandoffClaim:
    """A scheduled handoff's row as read: who holds it since when, and whether it was posted."""

    id: int
    channel_id: str
    slot: str
    claimed_by: str
    claimed_at: datetime
    posted_at: datetime | None

    @staticmethod
    def of(row: HandoffRow) -> "HandoffClaim":
        return HandoffClaim(row.id, row.channel_id, row.slot or "", row.claimed_by, row.claimed_at, row.posted_at)


class HandoffLog:
    def __init__(self, engine: Engine, clock: Clock) -> None:
        self.clock = clock
        self._sessions = sessionmaker(engine, expire_on_commit=False)

    @contextmanager
    def _tx(self) -> Iterator[Session]:
        with self._sessions.begin() as session:
            yield session

    def claim(self, channel_id: str, slot: str, replica_id: str) -> HandoffClaim | None:
        """Claim the scheduled handoff `slot` of a channel; None if another replica (or an earlier tick) has."""
        try:
            with self._tx() as session:
                row = HandoffRow(channel_id=channel_id, slot=slot, claimed_by=replica_id,
                                 claimed_at=as_utc(self.clock.now()))
                session.add(row)
                session.flush()
                return HandoffClaim.of(row)
        except IntegrityError:
            return None

    def reclaim(self, claim: HandoffClaim, replica_id: str, at: datetime) -> HandoffClaim | None:
        """Hold `claim` as `replica_id` from `at`, if it is unposted and unchanged since it was read; None if not.
        Renews one's own lease before posting, takes over a claim whose lease ran out, and (with `at` a lease in
        the past) hands a claim back after a failed post, for the next tick of any replica."""
        with self._tx() as session:
            changed = session.execute(
                update(HandoffRow).where(HandoffRow.id == claim.id, HandoffRow.posted_at.is_(None),
                                         HandoffRow.claimed_by == claim.claimed_by,
                                         HandoffRow.claimed_at == as_utc(claim.claimed_at))
                .values(claimed_by=replica_id, claimed_at=as_utc(at)).execution_options(synchronize_session=False))
            if changed.rowcount != 1:  # type: ignore[attr-defined]
                return None
        return HandoffClaim(claim.id, claim.channel_id, claim.slot, replica_id, as_utc(at), None)

    def posted(self, handoff_id: int, message_ts: str, patients: list[str], *, reconciled: bool = False) -> None:
        """Record the post (once: a second report of the same handoff changes nothing). `reconciled`: found in
        the channel after a takeover, posted by an earlier holder that died before recording it."""
        now = as_utc(self.clock.now())
        with self._tx() as session:
            row = session.get(HandoffRow, handoff_id)
            if row is None or row.posted_at is not None:
                return
            row.posted_at, row.message_ts = now, message_ts
            detail = {"handoff_id": row.id, "slot": row.slot, "message_ts": message_ts, "patients": patients,
                      "replica": row.claimed_by, **({"reconciled": True} if reconciled else {})}
            session.add(AuditRow(at=now, channel_id=row.channel_id, user_id=row.user_id, action="handoff",
                                 patient_label=None, detail_json=detail))

    def record_manual(self, channel_id: str, user_id: str, replica_id: str) -> int:
        """A `/crs handoff` typed by someone: logged like a scheduled one, without a slot."""
        with self._tx() as session:
            row = HandoffRow(channel_id=channel_id, slot=None, user_id=user_id, claimed_by=replica_id,
                             claimed_at=as_utc(self.clock.now()))
            session.add(row)
            session.flush()
            return row.id

    def last_posted(self, channel_id: str) -> datetime | None:
        with self._tx() as session:
            return session.scalar(select(func.max(HandoffRow.posted_at)).where(HandoffRow.channel_id == channel_id))

    def posts(self, channel_id: str) -> list[tuple[str | None, datetime | None, str | None]]:
        """(slot, posted_at, message_ts) of the channel's handoffs, oldest first (for tests and audits)."""
        with self._tx() as session:
            return [tuple(r) for r in session.execute(  # type: ignore[misc]
                select(HandoffRow.slot, HandoffRow.posted_at, HandoffRow.message_ts)
                .where(HandoffRow.channel_id == channel_id).order_by(HandoffRow.id))]

    def resolved_since(self, channel_id: str, since: datetime) -> list[Episode]:
        with self._tx() as session:
            rows = session.scalars(select(EpisodeRow).where(
                EpisodeRow.channel_id == channel_id, EpisodeRow.status == "resolved",
                EpisodeRow.resolved_at > as_utc(since)).order_by(EpisodeRow.resolved_at, EpisodeRow.id))
            return [Episode.of(r) for r in rows]

    def active_channels(self, at: datetime, resolved_after: datetime) -> list[str]:
        """Channels that had an episode at `at`, still open or resolved after `resolved_after`: the ones a
        scheduled handoff at `at` is for."""
        with self._tx() as session:
            return list(session.scalars(select(EpisodeRow.channel_id).where(
                EpisodeRow.opened_at <= as_utc(at),
                or_(EpisodeRow.status == "open", EpisodeRow.resolved_at > as_utc(resolved_after)))
                .distinct().order_by(EpisodeRow.channel_id)))

    def claims(self, slot: str) -> dict[str, HandoffClaim]:
        """The claims of a scheduled slot, by channel."""
        with self._tx() as session:
            return {r.channel_id: HandoffClaim.of(r) for r in session.scalars(select(HandoffRow).where(
                HandoffRow.slot == slot))}
