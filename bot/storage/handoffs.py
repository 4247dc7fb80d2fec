"""Handoff bookkeeping (SQL only): which handoffs were posted where, and the claim that makes a scheduled one
post exactly once across replicas.

A scheduled handoff is claimed by inserting its (channel, slot) row: the unique index lets exactly one replica
succeed, on SQLite and PostgreSQL alike. A failed post deletes its claim so the next tick retries it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime

from sqlalchemy import Engine, delete, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from bot.clock import Clock, as_utc
from bot.storage.records import Episode
from bot.storage.tables import AuditRow, EpisodeRow, HandoffRow

__all__ = ["HandoffLog"]


class HandoffLog:
    def __init__(self, engine: Engine, clock: Clock) -> None:
        self.clock = clock
        self._sessions = sessionmaker(engine, expire_on_commit=False)

    @contextmanager
    def _tx(self) -> Iterator[Session]:
        with self._sessions.begin() as session:
            yield session

    def claim(self, channel_id: str, slot: str, replica_id: str) -> int | None:
        """Claim the scheduled handoff `slot` of a channel; None if another replica (or an earlier tick) has."""
        try:
            with self._tx() as session:
                row = HandoffRow(channel_id=channel_id, slot=slot, claimed_by=replica_id,
                                 claimed_at=as_utc(self.clock.now()))
                session.add(row)
                session.flush()
                return row.id
        except IntegrityError:
            return None

    def release(self, handoff_id: int) -> None:
        """Give a claim back after a failed post, so a later tick (here or on another replica) posts it."""
        with self._tx() as session:
            session.execute(delete(HandoffRow).where(HandoffRow.id == handoff_id, HandoffRow.posted_at.is_(None)))

    def posted(self, handoff_id: int, message_ts: str, patients: list[str]) -> None:
        now = as_utc(self.clock.now())
        with self._tx() as session:
            row = session.get(HandoffRow, handoff_id)
            if row is None:
                return
            row.posted_at, row.message_ts = now, message_ts
            session.add(AuditRow(at=now, channel_id=row.channel_id, user_id=row.user_id, action="handoff",
                                 patient_label=None, detail_json={"handoff_id": row.id, "slot": row.slot,
                                                                  "message_ts": message_ts, "patients": patients,
                                                                  "replica": row.claimed_by}))

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

    def claimed_channels(self, slot: str) -> set[str]:
        with self._tx() as session:
            return set(session.scalars(select(HandoffRow.channel_id).where(HandoffRow.slot == slot)))
