"""The shared base of the bot's repositories: one transaction per operation, and the SQL helpers
several of them use (locking an episode, adding reminders and audit rows).

Rules that keep replicas consistent:
- an operation that changes an episode or its reminders first locks the episode row
  (`SELECT ... FOR UPDATE` on PostgreSQL; SQLite's `BEGIN IMMEDIATE` already serialises writers),
  always episode-then-reminders, so they cannot deadlock;
- state changes write their audit row in the same transaction, so the audit trail cannot disagree
  with the data.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, Select, insert, select, update
from sqlalchemy.orm import Session, sessionmaker

from bot.clock import Clock, SystemClock, as_utc
from bot.storage.db import READ_ONLY, notify_bookings
from bot.storage.kinds import AnswerAction, EpisodeStatus, ReminderKind, ReminderStatus
from bot.storage.tables import REMINDER_KINDS, AuditRow, EpisodeRow, ReminderRow

__all__ = ["ANSWER_ACTIONS", "CADENCE_KINDS", "INTEGRITY_RETRIES", "NotFound", "Repository", "clean_label", "iso"]

log = logging.getLogger(__name__)

ANSWER_ACTIONS: tuple[str, ...] = tuple(AnswerAction)
# Reminders that belong to an open episode's reassessment cycle (vs. the symptom-free notice).
CADENCE_KINDS = tuple(k for k in ReminderKind if k.is_cadence)
INTEGRITY_RETRIES = 3


class NotFound(LookupError):
    """An id passed to the store does not exist."""



def clean_label(patient_label: str | None) -> str | None:
    if patient_label is None:
        return None
    label = " ".join(patient_label.split())
    return label or None


def iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


class Repository:
    """SQL over one SQLAlchemy engine (SQLite or PostgreSQL); subclasses group it by what it holds."""

    def __init__(self, engine: Engine, clock: Clock | None = None) -> None:
        self.engine = engine
        self.clock: Clock = clock or SystemClock()
        self._sessions = sessionmaker(engine, expire_on_commit=False)
        self._reads = engine.execution_options(**{READ_ONLY: True})

    # ------------------------------------------------------------------ plumbing

    @contextmanager
    def _tx(self) -> Iterator[Session]:
        with self._sessions.begin() as session:
            yield session

    def _now(self) -> datetime:
        return as_utc(self.clock.now())

    @staticmethod
    def _lock_episode(session: Session, episode_id: int, *, skip_locked: bool = False) -> EpisodeRow | None:
        stmt = select(EpisodeRow).where(EpisodeRow.id == episode_id).with_for_update(skip_locked=skip_locked)
        return session.scalars(stmt).one_or_none()

    @staticmethod
    def _last_resolved(channel_id: str, label: str | None, product: str) -> Select[tuple[EpisodeRow]]:
        """The patient's most recently resolved episode with this product: what recurrence is judged against."""
        return (select(EpisodeRow)
                .where(EpisodeRow.channel_id == channel_id, EpisodeRow.patient_label == label,
                       EpisodeRow.product == product, EpisodeRow.status == EpisodeStatus.RESOLVED)
                .order_by(EpisodeRow.resolved_at.desc(), EpisodeRow.id.desc())
                .limit(1))

    def _require_episode(self, session: Session, episode_id: int) -> EpisodeRow:
        row = self._lock_episode(session, episode_id)
        if row is None:
            raise NotFound(f"no episode with id {episode_id}")
        return row

    @staticmethod
    def _add_audit(
        session: Session,
        at: datetime,
        action: str,
        channel_id: str | None,
        user_id: str | None,
        patient_label: str | None = None,
        detail: dict[str, Any] | None = None,
    ) -> AuditRow:
        row = AuditRow(
            at=at,
            channel_id=channel_id,
            user_id=user_id,
            action=action,
            patient_label=patient_label,
            detail_json=dict(detail or {}),
        )
        session.add(row)
        return row

    @staticmethod
    def _add_reminder(session: Session | Connection, episode_id: int, kind: str, due_at: datetime, now: datetime) -> ReminderRow:
        if kind not in REMINDER_KINDS:
            raise ValueError(f"unknown reminder kind {kind!r}; expected one of {REMINDER_KINDS}")
        due = as_utc(due_at)
        table = ReminderRow.__table__
        row = session.execute(insert(table).returning(*table.c), dict(  # Core: one statement, no flush
            episode_id=episode_id, kind=str(kind), due_at=due, first_due_at=due, status=ReminderStatus.PENDING.value,
            attempts=0, created_at=now)).one()
        notify_bookings(session)
        return row  # type: ignore[return-value]  (a Row with the ReminderRow columns)

    @staticmethod
    def _set_status(
        session: Session | Connection,
        ids: Collection[int],
        from_statuses: Collection[str],
        values: dict[str, Any],
        *,
        claimed_by: str | None = None,
    ) -> int:
        if not ids:
            return 0
        stmt = update(ReminderRow).where(ReminderRow.id.in_(list(ids)), ReminderRow.status.in_(list(from_statuses)))
        if claimed_by is not None:
            stmt = stmt.where(ReminderRow.claimed_by == claimed_by)
        result = session.execute(stmt.values(**values).execution_options(synchronize_session=False))
        return int(result.rowcount)  # type: ignore[attr-defined]

    @staticmethod
    def _cancel_pending(session: Session | Connection, episode_ids: int | Collection[int], kinds: Collection[str]) -> int:
        """Cancel the pending reminders of `kinds` of one episode or of many (one statement either way)."""
        if not kinds:
            return 0
        ids = [episode_ids] if isinstance(episode_ids, int) else list(episode_ids)
        stmt = (
            update(ReminderRow)
            .where(
                ReminderRow.episode_id.in_(ids),
                ReminderRow.status == ReminderStatus.PENDING,
                ReminderRow.kind.in_(list(kinds)),
            )
            .values(status=ReminderStatus.CANCELLED)
            .execution_options(synchronize_session=False)
        )
        return int(session.execute(stmt).rowcount)  # type: ignore[attr-defined]

    @staticmethod
    def _mark_answered(session: Session | Connection, episode_id: int, user_id: str, now: datetime) -> tuple[int, ...]:
        """Mark the episode's posted, unanswered cadence reminders as answered."""
        ids = tuple(
            session.scalars(
                select(ReminderRow.id).where(
                    ReminderRow.episode_id == episode_id,
                    ReminderRow.status == ReminderStatus.SENT,
                    ReminderRow.kind.in_(CADENCE_KINDS),
                )
            )
        )
        Repository._set_status(session, ids, (ReminderStatus.SENT,),
                          {"status": ReminderStatus.ANSWERED, "answered_by": user_id, "answered_at": now})
        return ids
