"""`Store`: every database operation the bot performs, one transaction each.

Rules that keep replicas consistent:
- an operation that changes an episode or its reminders first locks the episode
  row (`SELECT ... FOR UPDATE` on PostgreSQL; SQLite's `BEGIN IMMEDIATE` already
  serialises writers), always episode-then-reminders, so they cannot deadlock;
- a reminder is only ever claimed by a conditional UPDATE whose rowcount must
  be 1, so exactly one replica posts it;
- state changes write their audit row in the same transaction, so the audit
  trail cannot disagree with the data.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Engine, and_, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from bot.clock import Clock, SystemClock, as_utc
from bot.storage.db import notify_bookings
from bot.storage.kinds import AnswerAction, AssessmentKind, EpisodeStatus, ReminderKind, ReminderStatus
from bot.storage.records import (
    Assessment,
    AuditEntry,
    Episode,
    EpisodeHistory,
    Oncall,
    RecordedAssessment,
    Reminder,
)
from bot.storage.tables import (
    ASSESSMENT_KINDS,
    PRODUCTS,
    REMINDER_KINDS,
    AssessmentRow,
    AuditRow,
    EpisodeRow,
    OncallRow,
    ReminderRow,
)

__all__ = ["AnswerAction", "AnswerOutcome", "NotFound", "Store"]

log = logging.getLogger(__name__)

ANSWER_ACTIONS: tuple[str, ...] = tuple(AnswerAction)
# Reminders that belong to an open episode's reassessment cycle (vs. the symptom-free notice).
CADENCE_KINDS = tuple(k for k in ReminderKind if k.is_cadence)
_INTEGRITY_RETRIES = 3


class NotFound(LookupError):
    """An id passed to the store does not exist."""


@dataclass(frozen=True)
class AnswerOutcome:
    """What answering a reminder changed, for the Slack reply."""

    episode: Episode
    action: str
    answered_ids: tuple[int, ...]
    snoozed_until: datetime | None


def _clean_label(patient_label: str | None) -> str | None:
    if patient_label is None:
        return None
    label = " ".join(patient_label.split())
    return label or None


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


class Store:
    """The bot's persistence API over one SQLAlchemy engine (SQLite or PostgreSQL)."""

    def __init__(self, engine: Engine, clock: Clock | None = None) -> None:
        self.engine = engine
        self.clock: Clock = clock or SystemClock()
        self._sessions = sessionmaker(engine, expire_on_commit=False)

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
    def _add_reminder(session: Session, episode_id: int, kind: str, due_at: datetime, now: datetime) -> ReminderRow:
        if kind not in REMINDER_KINDS:
            raise ValueError(f"unknown reminder kind {kind!r}; expected one of {REMINDER_KINDS}")
        due = as_utc(due_at)
        row = ReminderRow(
            episode_id=episode_id,
            kind=kind,
            due_at=due,
            first_due_at=due,
            status=ReminderStatus.PENDING,
            attempts=0,
            created_at=now,
        )
        session.add(row)
        notify_bookings(session)
        return row

    @staticmethod
    def _set_status(
        session: Session,
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
    def _cancel_pending(session: Session, episode_id: int, kinds: Collection[str]) -> int:
        if not kinds:
            return 0
        stmt = (
            update(ReminderRow)
            .where(
                ReminderRow.episode_id == episode_id,
                ReminderRow.status == ReminderStatus.PENDING,
                ReminderRow.kind.in_(list(kinds)),
            )
            .values(status=ReminderStatus.CANCELLED)
            .execution_options(synchronize_session=False)
        )
        return int(session.execute(stmt).rowcount)  # type: ignore[attr-defined]

    @staticmethod
    def _mark_answered(session: Session, episode_id: int, user_id: str, now: datetime) -> tuple[int, ...]:
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
        Store._set_status(session, ids, (ReminderStatus.SENT,),
                          {"status": ReminderStatus.ANSWERED, "answered_by": user_id, "answered_at": now})
        return ids

    # ---------------------------------------------------------------- assessments

    def record_assessment(
        self,
        channel_id: str,
        patient_label: str | None,
        product: str,
        kind: str,
        inputs: dict[str, Any],
        result: dict[str, Any],
        grade: int | None,
        rulebook_id: str,
        rulebook_version: str,
        user_id: str,
    ) -> RecordedAssessment:
        """Store an assessment, joining the patient's open episode or opening one.

        Only CRS grades move the episode's current/worst grade (ICANS is graded on
        its own scale); a null grade never lowers anything.
        """
        if product not in PRODUCTS:
            raise ValueError(f"unknown product {product!r}; expected one of {PRODUCTS}")
        if kind not in ASSESSMENT_KINDS:
            raise ValueError(f"unknown assessment kind {kind!r}; expected one of {ASSESSMENT_KINDS}")
        label = _clean_label(patient_label)
        for attempt in range(1, _INTEGRITY_RETRIES + 1):
            try:
                return self._record_assessment_once(
                    channel_id, label, product, kind, inputs, result, grade, rulebook_id, rulebook_version, user_id
                )
            except IntegrityError:
                # Another replica opened this patient's episode a moment ago; join it.
                if label is None or attempt == _INTEGRITY_RETRIES:
                    raise
                log.info("concurrent episode open for %s in %s; retrying", label, channel_id)
        raise AssertionError("unreachable")

    def _record_assessment_once(
        self,
        channel_id: str,
        label: str | None,
        product: str,
        kind: str,
        inputs: dict[str, Any],
        result: dict[str, Any],
        grade: int | None,
        rulebook_id: str,
        rulebook_version: str,
        user_id: str,
    ) -> RecordedAssessment:
        now = self._now()
        with self._tx() as session:
            episode: EpisodeRow | None = None
            previous: EpisodeRow | None = None
            is_new = False
            if label is not None:
                episode = session.scalars(
                    select(EpisodeRow)
                    .where(
                        EpisodeRow.channel_id == channel_id,
                        EpisodeRow.patient_label == label,
                        EpisodeRow.status == EpisodeStatus.OPEN,
                    )
                    .with_for_update()
                ).one_or_none()
                previous = session.scalars(
                    select(EpisodeRow)
                    .where(
                        EpisodeRow.channel_id == channel_id,
                        EpisodeRow.patient_label == label,
                        EpisodeRow.product == product,
                        EpisodeRow.status == EpisodeStatus.RESOLVED,
                    )
                    .order_by(EpisodeRow.resolved_at.desc(), EpisodeRow.id.desc())
                    .limit(1)
                ).one_or_none()
                if episode is None:
                    episode = EpisodeRow(
                        channel_id=channel_id, patient_label=label, product=product, status=EpisodeStatus.OPEN, opened_at=now
                    )
                    session.add(episode)
                    session.flush()  # raises IntegrityError here if another replica won the race
                    is_new = True
                if kind == AssessmentKind.CRS and grade is not None:
                    episode.current_grade = grade
                    episode.worst_grade = grade if episode.worst_grade is None else max(episode.worst_grade, grade)
            row = AssessmentRow(
                episode_id=episode.id if episode is not None else None,
                channel_id=channel_id,
                kind=kind,
                inputs_json=inputs,
                result_json=result,
                grade=grade,
                rulebook_id=rulebook_id,
                rulebook_version=rulebook_version,
                user_id=user_id,
                created_at=now,
            )
            session.add(row)
            session.flush()
            self._add_audit(
                session,
                now,
                "grade",
                channel_id,
                user_id,
                label,
                {
                    "assessment_id": row.id,
                    "episode_id": row.episode_id,
                    "kind": kind,
                    "grade": grade,
                    "product": product,
                    "rulebook_id": rulebook_id,
                    "rulebook_version": rulebook_version,
                    "new_episode": is_new,
                },
            )
            session.flush()
            return RecordedAssessment(
                assessment=Assessment.of(row),
                episode=Episode.of(episode) if episode is not None else None,
                is_new_episode=is_new,
                previous_episode=Episode.of(previous) if previous is not None else None,
            )

    def set_assessment_message(self, assessment_id: int, ts: str) -> None:
        """Remember the Slack ts of the reply that showed this assessment."""
        with self._tx() as session:
            row = session.get(AssessmentRow, assessment_id)
            if row is None:
                raise NotFound(f"no assessment with id {assessment_id}")
            row.message_ts = ts

    # ------------------------------------------------------------------- episodes

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

    def get_episode(self, episode_id: int) -> Episode | None:
        with self._tx() as session:
            row = session.get(EpisodeRow, episode_id)
            return Episode.of(row) if row is not None else None

    def find_open_episode(self, channel_id: str, patient_label: str) -> Episode | None:
        label = _clean_label(patient_label)
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
        label = _clean_label(patient_label)
        with self._tx() as session:
            row = session.scalars(
                select(EpisodeRow)
                .where(
                    EpisodeRow.channel_id == channel_id,
                    EpisodeRow.patient_label == label,
                    EpisodeRow.product == product,
                    EpisodeRow.status == EpisodeStatus.RESOLVED,
                )
                .order_by(EpisodeRow.resolved_at.desc(), EpisodeRow.id.desc())
                .limit(1)
            ).one_or_none()
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
        label = _clean_label(patient_label)
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
        label = _clean_label(patient_label)
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
                "symptom_free_until": _iso(row.symptom_free_until),
            },
        )

    # --------------------------------------------------------------------- oncall

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
        for attempt in range(1, _INTEGRITY_RETRIES + 1):
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
                if attempt == _INTEGRITY_RETRIES:
                    raise
        raise AssertionError("unreachable")

    def get_oncall(self, channel_id: str) -> Oncall | None:
        with self._tx() as session:
            row = session.get(OncallRow, channel_id)
            return Oncall.of(row) if row is not None else None

    # ---------------------------------------------------------------------- audit

    def audit(
        self,
        action: str,
        channel_id: str | None,
        user_id: str | None,
        patient_label: str | None = None,
        detail: dict[str, Any] | None = None,
    ) -> AuditEntry:
        """Append an audit row for something not already audited by a store operation (e.g. a command)."""
        now = self._now()
        with self._tx() as session:
            row = self._add_audit(session, now, action, channel_id, user_id, _clean_label(patient_label), detail)
            session.flush()
            return AuditEntry.of(row)

    def iter_audit(self, since: datetime | None = None, *, batch_size: int = 500) -> Iterator[AuditEntry]:
        """Audit rows in insertion order, fetched in batches so a large export stays small in memory."""
        last_id = 0
        while True:
            with self._tx() as session:
                stmt = select(AuditRow).where(AuditRow.id > last_id).order_by(AuditRow.id).limit(batch_size)
                if since is not None:
                    stmt = stmt.where(AuditRow.at >= as_utc(since))
                batch = [AuditEntry.of(r) for r in session.scalars(stmt)]
            yield from batch
            if len(batch) < batch_size:
                return
            last_id = batch[-1].id

    # ------------------------------------------------------------------ reminders

    def get_reminder(self, reminder_id: int) -> Reminder | None:
        with self._tx() as session:
            row = session.get(ReminderRow, reminder_id)
            return Reminder.of(row) if row is not None else None

    def reminders(self, episode_id: int | None = None, status: str | None = None) -> list[Reminder]:
        """Reminders (optionally of one episode / in one status) ordered by due time."""
        with self._tx() as session:
            stmt = select(ReminderRow).order_by(ReminderRow.due_at, ReminderRow.id)
            if episode_id is not None:
                stmt = stmt.where(ReminderRow.episode_id == episode_id)
            if status is not None:
                stmt = stmt.where(ReminderRow.status == status)
            return [Reminder.of(r) for r in session.scalars(stmt)]

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
                    "snoozed_until": _iso(snoozed),
                },
            )
            session.flush()
            return AnswerOutcome(Episode.of(row), action, answered, snoozed)
