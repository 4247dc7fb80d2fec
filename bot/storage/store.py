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

import dataclasses
import logging
from collections.abc import Callable, Collection, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from sqlalchemy import ColumnElement, Engine, and_, bindparam, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from bot.clock import Clock, SystemClock, as_utc
from bot.storage.db import READ_ONLY
from bot.storage.records import (
    Assessment,
    AuditEntry,
    Episode,
    EpisodeHistory,
    Oncall,
    RecordedAssessment,
    Reminder,
)
from grading.pipeline import PatientHistory, PriorEpisode, ProductConflictError
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

__all__ = ["AnswerAction", "AnswerOutcome", "ClaimedGroup", "NotFound", "Store"]

log = logging.getLogger(__name__)

AnswerAction = Literal["reassessed", "snooze", "resolved"]
ANSWER_ACTIONS: tuple[str, ...] = ("reassessed", "snooze", "resolved")
# Reminders that belong to an open episode's reassessment cycle (vs. the 72-hour notice).
CADENCE_KINDS = ("reassess", "escalation")
_INTEGRITY_RETRIES = 3


# Statements run for every command, built once, on the tables (no ORM unit of work in the hot path).
_EPISODES = EpisodeRow.__table__
_OPEN_EPISODE = (
    select(*_EPISODES.columns)
    .where(_EPISODES.c.channel_id == bindparam("channel_id"), _EPISODES.c.patient_label == bindparam("patient_label"),
           _EPISODES.c.status == "open")
    .with_for_update()
)
_INSERT_EPISODE = insert(_EPISODES).returning(_EPISODES.c.id)
_INSERT_ASSESSMENT = insert(AssessmentRow.__table__).returning(AssessmentRow.__table__.c.id)
_INSERT_AUDIT = insert(AuditRow.__table__)


class NotFound(LookupError):
    """An id passed to the store does not exist."""


@dataclass(frozen=True)
class ClaimedGroup:
    """Reminders of one episode claimed together by this replica in one tick."""

    episode: Episode
    reminders: tuple[Reminder, ...]


@dataclass(frozen=True)
class AnswerOutcome:
    """What answering a reminder changed, for the Slack reply."""

    episode: Episode
    action: str
    answered_ids: tuple[int, ...]
    snoozed_until: datetime | None
    resolved: bool


def _clean_label(patient_label: str | None) -> str | None:
    if patient_label is None:
        return None
    label = " ".join(patient_label.split())
    return label or None


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _due_or_stale(now: datetime, stale_before: datetime) -> ColumnElement[bool]:
    """Pending and due, or claimed by a replica that has evidently died since."""
    return or_(
        and_(ReminderRow.status == "pending", ReminderRow.due_at <= now),
        and_(ReminderRow.status == "claimed", ReminderRow.claimed_at < stale_before),
    )


class Store:
    """The bot's persistence API over one SQLAlchemy engine (SQLite or PostgreSQL)."""

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
            status="pending",
            attempts=0,
            created_at=now,
        )
        session.add(row)
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
                ReminderRow.status == "pending",
                ReminderRow.kind.in_(list(kinds)),
            )
            .values(status="cancelled")
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
                    ReminderRow.status == "sent",
                    ReminderRow.kind.in_(CADENCE_KINDS),
                )
            )
        )
        Store._set_status(session, ids, ("sent",), {"status": "answered", "answered_by": user_id, "answered_at": now})
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
        *,
        recurrent_of: int | None = None,
        restart_cadence: bool = False,
        next_reassess_at: datetime | None = None,
    ) -> RecordedAssessment:
        """Store an assessment, joining the patient's open episode or opening one, in one transaction.

        Only CRS grades move the episode's current/worst grade (ICANS is graded on
        its own scale); a null grade never lowers anything. `recurrent_of` links the
        episode to the resolved one it recurs after. With `restart_cadence` the
        assessment answers the episode's posted reminders, cancels its pending
        reassess/escalation and books the next reassess at `next_reassess_at` (none if None),
        in the same transaction, so one command costs one write.
        """
        if product not in PRODUCTS:
            raise ValueError(f"unknown product {product!r}; expected one of {PRODUCTS}")
        if kind not in ASSESSMENT_KINDS:
            raise ValueError(f"unknown assessment kind {kind!r}; expected one of {ASSESSMENT_KINDS}")
        label = _clean_label(patient_label)
        for attempt in range(1, _INTEGRITY_RETRIES + 1):
            try:
                return self._record_assessment_once(
                    channel_id, label, product, kind, inputs, result, grade, rulebook_id, rulebook_version, user_id,
                    recurrent_of, restart_cadence, next_reassess_at,
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
        recurrent_of: int | None = None,
        restart_cadence: bool = False,
        next_reassess_at: datetime | None = None,
    ) -> RecordedAssessment:
        now = self._now()
        with self._tx() as session:
            # Core statements, not the ORM unit of work: this runs for every command, and a flush of
            # two new objects costs more CPU than the insert itself.
            db = session.connection()
            episode: Episode | None = None
            is_new = False
            if label is not None:
                found = db.execute(_OPEN_EPISODE, {"channel_id": channel_id, "patient_label": label}).one_or_none()
                grades: dict[str, Any] = {}
                if kind == "crs" and grade is not None:
                    worst = found.worst_grade if found is not None else None
                    grades = {"current_grade": grade, "worst_grade": grade if worst is None else max(worst, grade)}
                if found is None:
                    values = dict(channel_id=channel_id, patient_label=label, product=product, status="open",
                                  opened_at=now, recurrent_of=recurrent_of, **grades)
                    # Raises IntegrityError if another replica opened this patient's episode a moment ago.
                    episode_id = db.execute(_INSERT_EPISODE, values).scalar_one()
                    episode = Episode(**{"id": episode_id, "resolved_at": None, "resolved_by": None, "thread_ts": None,
                                         "symptom_free_until": None, "current_grade": None, "worst_grade": None,
                                         **values})  # type: ignore[arg-type]
                    is_new = True
                else:
                    if found.product != product:
                        raise ProductConflictError(product, found.product)  # type: ignore[arg-type]
                    changes = dict(grades)
                    if recurrent_of is not None and found.recurrent_of is None and recurrent_of != found.id:
                        changes["recurrent_of"] = recurrent_of
                    if changes:
                        db.execute(update(_EPISODES).where(_EPISODES.c.id == found.id).values(changes))
                    episode = dataclasses.replace(Episode.of(found), **changes)  # type: ignore[arg-type]
            assessment = dict(episode_id=episode.id if episode is not None else None, channel_id=channel_id, kind=kind,
                              inputs_json=inputs, result_json=result, grade=grade, rulebook_id=rulebook_id,
                              rulebook_version=rulebook_version, user_id=user_id, created_at=now)
            assessment_id = db.execute(_INSERT_ASSESSMENT, assessment).scalar_one()
            db.execute(_INSERT_AUDIT, dict(
                at=now, channel_id=channel_id, user_id=user_id, action="grade", patient_label=label,
                detail_json={
                    "assessment_id": assessment_id,
                    "episode_id": assessment["episode_id"],
                    "kind": kind,
                    "grade": grade,
                    "product": product,
                    "rulebook_id": rulebook_id,
                    "rulebook_version": rulebook_version,
                    "new_episode": is_new,
                    # What was read and whether the grade is a floor: enough to redraw the episode from an export.
                    "inputs": inputs.get("parsed"),
                    "at_least": result.get("at_least"),
                }))
            booked = None
            if restart_cadence and episode is not None:
                booked = self._restart_cadence(session, episode, user_id, next_reassess_at, now)
                session.flush()
            return RecordedAssessment(
                assessment=Assessment(id=assessment_id, episode_id=assessment["episode_id"], channel_id=channel_id,
                                      kind=kind, inputs=inputs, result=result, grade=grade, rulebook_id=rulebook_id,
                                      rulebook_version=rulebook_version, user_id=user_id, created_at=now,
                                      message_ts=None),
                episode=episode,
                is_new_episode=is_new,
                next_reminder=Reminder.of(booked) if booked is not None else None,
            )

    def _restart_cadence(
        self, session: Session, row: Episode, user_id: str, due_at: datetime | None, now: datetime
    ) -> ReminderRow | None:
        """A new assessment answers "please reassess": posted reminders are answered, pending
        reassess/escalation cancelled, and the next reassess booked (while the episode is open)."""
        self._cancel_pending(session, row.id, CADENCE_KINDS)
        answered = self._mark_answered(session, row.id, user_id, now)
        if answered:
            self._add_audit(session, now, "reminder_answered", row.channel_id, user_id, row.patient_label,
                            {"episode_id": row.id, "action": "assessment", "reminder_ids": list(answered)})
        if due_at is None or row.status != "open":
            return None
        return self._add_reminder(session, row.id, "reassess", due_at, now)

    def patient_history(self, channel_id: str, patient_label: str | None) -> PatientHistory:
        """What grading needs about a patient, in one read: the open episode's product and, per product,
        the last resolved episode (for recurrence)."""
        label = _clean_label(patient_label)
        if label is None:
            return PatientHistory()
        with self._reads.connect() as connection:
            rows = connection.execute(
                select(EpisodeRow.id, EpisodeRow.product, EpisodeRow.status, EpisodeRow.worst_grade)
                .where(EpisodeRow.channel_id == channel_id, EpisodeRow.patient_label == label)
                .order_by(EpisodeRow.resolved_at.desc(), EpisodeRow.id.desc())
            ).all()
        open_product = next((r.product for r in rows if r.status == "open"), None)
        last: dict[str, PriorEpisode] = {}
        for r in rows:
            if r.status == "resolved":
                last.setdefault(r.product, PriorEpisode(r.id, r.worst_grade))
        return PatientHistory(open_product, last)  # type: ignore[arg-type]

    def set_message_ts(self, assessment_id: int, ts: str, episode_id: int | None = None) -> None:
        """After the post: the reply's ts on the assessment and, for a new episode, its thread. Two
        UPDATEs by primary key in one transaction; nothing is loaded."""
        with self._tx() as session:
            session.execute(update(AssessmentRow).where(AssessmentRow.id == assessment_id).values(message_ts=ts)
                            .execution_options(synchronize_session=False))
            if episode_id is not None:
                session.execute(update(EpisodeRow).where(EpisodeRow.id == episode_id, EpisodeRow.thread_ts.is_(None))
                                .values(thread_ts=ts).execution_options(synchronize_session=False))

    def set_assessment_message(self, assessment_id: int, ts: str) -> None:
        """Remember the Slack ts of the reply that showed this assessment."""
        with self._tx() as session:
            row = session.get(AssessmentRow, assessment_id)
            if row is None:
                raise NotFound(f"no assessment with id {assessment_id}")
            row.message_ts = ts

    def assessment_result(self, assessment_id: int, channel_id: str) -> dict[str, Any] | None:
        """The stored report of an assessment shown in this channel (None if it is not this channel's):
        the Details button shows exactly what was decided then, not a re-grade under today's rulebook."""
        with self._tx() as session:
            row = session.get(AssessmentRow, assessment_id)
            if row is None or row.channel_id != channel_id:
                return None
            return dict(row.result_json)

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
                    EpisodeRow.status == "open",
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
                    EpisodeRow.status == "resolved",
                )
                .order_by(EpisodeRow.resolved_at.desc(), EpisodeRow.id.desc())
                .limit(1)
            ).one_or_none()
            return Episode.of(row) if row is not None else None

    def open_episodes(self, channel_id: str) -> list[Episode]:
        with self._tx() as session:
            rows = session.scalars(
                select(EpisodeRow)
                .where(EpisodeRow.channel_id == channel_id, EpisodeRow.status == "open")
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
                    EpisodeRow.status == "open",
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
            if row.status != "open":
                return None
            self._resolve(session, row, user_id, symptom_free_hours, now)
            return Episode.of(row)

    def _resolve(
        self, session: Session, row: EpisodeRow, user_id: str, hours: float | None, now: datetime
    ) -> None:
        """Close the episode, stop its reassessment cycle and book the symptom-free notice (if hours given)."""
        if hours is not None and hours < 0:
            raise ValueError(f"symptom_free_hours must not be negative, got {hours}")
        row.status = "resolved"
        row.resolved_at = now
        row.resolved_by = user_id
        row.symptom_free_until = now + timedelta(hours=hours) if hours else None
        cancelled = self._cancel_pending(session, row.id, REMINDER_KINDS)
        answered = self._mark_answered(session, row.id, user_id, now)
        notice = None
        if row.symptom_free_until is not None:
            notice = self._add_reminder(session, row.id, "symptom_free", row.symptom_free_until, now)
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

    def set_oncall(self, channel_id: str, target: str, user_id: str) -> Oncall:
        """Set who receives escalations in a channel (replaces any previous target)."""
        target = target.strip()
        if not target:
            raise ValueError("on-call target must not be empty")
        for attempt in range(1, _INTEGRITY_RETRIES + 1):
            now = self._now()
            try:
                with self._tx() as session:
                    row = session.get(OncallRow, channel_id, with_for_update=True)
                    previous = row.target if row is not None else None
                    if row is None:
                        row = OncallRow(channel_id=channel_id, target=target, set_by=user_id, set_at=now)
                        session.add(row)
                    else:
                        row.target, row.set_by, row.set_at = target, user_id, now
                    self._add_audit(
                        session, now, "oncall_set", channel_id, user_id, None, {"target": target, "previous": previous}
                    )
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
            return self._set_status(session, [reminder_id], ("pending",), {"status": "cancelled"}) == 1

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
            if new_kind is None or due_at is None or row.status != "open":
                return None
            reminder = self._add_reminder(session, episode_id, new_kind, due_at, now)
            session.flush()
            return Reminder.of(reminder)

    def due_episode_ids(self, now: datetime, stale_before: datetime, limit: int = 100) -> list[int]:
        """Episodes with something to post (due, or stuck in a dead replica's claim), most overdue first."""
        with self._tx() as session:
            stmt = (
                select(ReminderRow.episode_id)
                .where(_due_or_stale(as_utc(now), as_utc(stale_before)))
                .group_by(ReminderRow.episode_id)
                .order_by(func.min(ReminderRow.due_at), ReminderRow.episode_id)
                .limit(limit)
            )
            return list(session.scalars(stmt))

    def claim_due(
        self, episode_id: int, replica_id: str, now: datetime, stale_before: datetime, max_attempts: int
    ) -> ClaimedGroup | None:
        """Claim every due (or stale-claimed) reminder of one episode for `replica_id`.

        Each reminder is claimed with its own conditional UPDATE and counts only
        if exactly one row changed, so concurrent replicas never both win it. On
        PostgreSQL the episode row is locked with SKIP LOCKED, so one replica
        takes the whole group and the others move on instead of splitting it.
        Returns None when nothing was claimed.
        """
        now, stale_before = as_utc(now), as_utc(stale_before)
        with self._tx() as session:
            episode = self._lock_episode(session, episode_id, skip_locked=True)
            if episode is None:
                return None
            candidates = session.execute(
                select(ReminderRow.id, ReminderRow.kind, ReminderRow.status, ReminderRow.attempts)
                .where(ReminderRow.episode_id == episode_id, _due_or_stale(now, stale_before))
                .order_by(ReminderRow.due_at, ReminderRow.id)
            ).all()
            claimed: list[int] = []
            for reminder_id, kind, status, attempts in candidates:
                if episode.status != "open" and kind in CADENCE_KINDS:
                    # Resolved meanwhile (e.g. a stale claim from before the resolve): nothing to ask.
                    self._set_status(session, [reminder_id], ("pending", "claimed"), {"status": "cancelled"})
                    continue
                if status == "claimed" and attempts >= max_attempts:
                    changed = self._set_status(
                        session,
                        [reminder_id],
                        ("claimed",),
                        {"status": "failed", "last_error": f"claim went stale after {attempts} attempts"},
                    )
                    if changed:
                        self._add_audit(
                            session,
                            now,
                            "failure",
                            episode.channel_id,
                            None,
                            episode.patient_label,
                            {"reminder_id": reminder_id, "kind": kind, "attempts": attempts, "error": "stale claim"},
                        )
                    continue
                result = session.execute(
                    update(ReminderRow)
                    .where(ReminderRow.id == reminder_id, _due_or_stale(now, stale_before))
                    .values(
                        status="claimed",
                        claimed_by=replica_id,
                        claimed_at=now,
                        attempts=ReminderRow.attempts + 1,
                    )
                    .execution_options(synchronize_session=False)
                )
                if result.rowcount == 1:  # type: ignore[attr-defined]
                    claimed.append(reminder_id)
            if not claimed:
                return None
            rows = session.scalars(
                select(ReminderRow)
                .where(ReminderRow.id.in_(claimed))
                .order_by(ReminderRow.due_at, ReminderRow.id)
                .execution_options(populate_existing=True)
            )
            return ClaimedGroup(Episode.of(episode), tuple(Reminder.of(r) for r in rows))

    def complete_delivery(
        self,
        primary: Reminder,
        merged: Sequence[Reminder],
        replica_id: str,
        message_ts: str | None,
        late_by: timedelta,
        *,
        next_reassess_after: Callable[[Episode], timedelta | None] | None = None,
        escalate_after: timedelta | None = None,
    ) -> bool:
        """Record a successful post and, for a reassess post, continue the cadence from it.

        The next reassess (and the escalation of this post) are booked at post
        time + interval, using the episode's grade as it is now, and only while
        the episode is open and nobody booked a newer reassess meanwhile (a new
        assessment or a snooze during the post supersedes this one).
        Returns False if the claim was no longer ours (it went stale and was taken over).
        """
        now = self._now()
        with self._tx() as session:
            episode = self._require_episode(session, primary.episode_id)
            sent = self._set_status(
                session,
                [primary.id],
                ("claimed",),
                {
                    "status": "sent",
                    "sent_at": now,
                    "message_ts": message_ts,
                    "late_by_seconds": late_by.total_seconds(),
                    "last_error": None,
                },
                claimed_by=replica_id,
            )
            if sent != 1:
                log.warning("reminder %s was reclaimed by another replica before it was marked sent", primary.id)
                return False
            self._set_status(
                session,
                [m.id for m in merged],
                ("claimed",),
                {"status": "sent", "sent_at": now, "message_ts": message_ts, "coalesced_into": primary.id},
                claimed_by=replica_id,
            )
            next_at: datetime | None = None
            escalation_at: datetime | None = None
            if next_reassess_after is not None and episode.status == "open":
                newer = session.scalars(
                    select(ReminderRow.id).where(
                        ReminderRow.episode_id == episode.id,
                        ReminderRow.kind == "reassess",
                        ReminderRow.status == "pending",
                    )
                ).first()
                interval = next_reassess_after(Episode.of(episode)) if newer is None else None
                if interval is not None:
                    next_at = now + interval
                    self._add_reminder(session, episode.id, "reassess", next_at, now)
                    if escalate_after is not None:
                        escalation_at = now + escalate_after
                        self._add_reminder(session, episode.id, "escalation", escalation_at, now)
            self._add_audit(
                session,
                now,
                "escalation" if primary.kind == "escalation" else "reminder_sent",
                episode.channel_id,
                None,
                episode.patient_label,
                {
                    "reminder_id": primary.id,
                    "episode_id": episode.id,
                    "kind": primary.kind,
                    "message_ts": message_ts,
                    "late_by_seconds": late_by.total_seconds(),
                    "coalesced_ids": [m.id for m in merged],
                    "attempt": primary.attempts,
                    "replica": replica_id,
                    "next_reassess_at": _iso(next_at),
                    "escalation_at": _iso(escalation_at),
                },
            )
            return True

    def release_for_retry(
        self, reminders: Sequence[Reminder], replica_id: str, retry_at: datetime, error: str
    ) -> int:
        """Hand claimed reminders back as pending, due again at `retry_at` (post failed)."""
        now = self._now()
        with self._tx() as session:
            episode = self._require_episode(session, reminders[0].episode_id)
            changed = self._set_status(
                session,
                [r.id for r in reminders],
                ("claimed",),
                {"status": "pending", "due_at": as_utc(retry_at), "claimed_by": None, "claimed_at": None,
                 "last_error": error},
                claimed_by=replica_id,
            )
            self._add_audit(
                session,
                now,
                "reminder_retry",
                episode.channel_id,
                None,
                episode.patient_label,
                {
                    "reminder_ids": [r.id for r in reminders],
                    "attempt": reminders[0].attempts,
                    "retry_at": _iso(retry_at),
                    "error": error,
                    "replica": replica_id,
                },
            )
            return changed

    def mark_failed(self, reminders: Sequence[Reminder], replica_id: str, error: str) -> int:
        """Give up on claimed reminders after the last attempt, loudly (audit 'failure')."""
        now = self._now()
        with self._tx() as session:
            episode = self._require_episode(session, reminders[0].episode_id)
            changed = self._set_status(
                session,
                [r.id for r in reminders],
                ("claimed",),
                {"status": "failed", "last_error": error},
                claimed_by=replica_id,
            )
            self._add_audit(
                session,
                now,
                "failure",
                episode.channel_id,
                None,
                episode.patient_label,
                {
                    "reminder_ids": [r.id for r in reminders],
                    "kind": reminders[0].kind,
                    "attempts": reminders[0].attempts,
                    "error": error,
                    "replica": replica_id,
                },
            )
            return changed

    def answer_episode(
        self,
        episode_id: int,
        user_id: str,
        action: str,
        *,
        snooze_until: datetime | None = None,
        symptom_free_hours: float | None = None,
    ) -> AnswerOutcome:
        """Someone responded to a reminder: mark posted ones answered, stop the escalation, then act.

        "snooze" replaces the pending reassess with one at `snooze_until`;
        "resolved" resolves the episode (booking the symptom-free notice if hours are given).
        """
        if action not in ANSWER_ACTIONS:
            raise ValueError(f"unknown answer action {action!r}; expected one of {ANSWER_ACTIONS}")
        if action == "snooze" and snooze_until is None:
            raise ValueError("snooze needs snooze_until")
        now = self._now()
        with self._tx() as session:
            row = self._require_episode(session, episode_id)
            answered = self._mark_answered(session, episode_id, user_id, now)
            self._cancel_pending(session, episode_id, ("escalation",))
            snoozed: datetime | None = None
            resolved = False
            if row.status == "open" and action == "snooze":
                assert snooze_until is not None
                self._cancel_pending(session, episode_id, ("reassess",))
                snoozed = as_utc(snooze_until)
                self._add_reminder(session, episode_id, "reassess", snoozed, now)
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
            if row.status == "open" and action == "resolved":
                self._resolve(session, row, user_id, symptom_free_hours, now)
                resolved = True
            session.flush()
            return AnswerOutcome(Episode.of(row), action, answered, snoozed, resolved)
