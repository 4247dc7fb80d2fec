"""`Store`: every database operation the bot performs, one transaction each, composed from the
repositories (SQL only; the rules live in bot/episodes/policy.py and the handlers).

Assessments live here; episodes, reminder bookings and the on-call chain in bot/episodes/repositories.py;
the audit trail in bot/storage/audit_log.py; reminder delivery (claim/complete) in
bot/episodes/repositories.py's `ReminderRepository`, used by the engine only.
"""

from __future__ import annotations

import dataclasses
import logging
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, bindparam, insert, select, update
from sqlalchemy.exc import IntegrityError

from bot.clock import Clock
from bot.storage.compiled import CompiledInsert
from bot.storage.kinds import AnswerAction, EpisodeStatus, ReminderKind
from bot.storage.records import Assessment, Episode, RecordedAssessment, Reminder
from bot.storage.tables import ASSESSMENT_KINDS, PRODUCTS, AssessmentRow, AuditRow, EpisodeRow, ReminderRow
from grading.pipeline import PatientHistory, PriorEpisode, ProductConflictError
from bot.episodes.repositories import AnswerOutcome, BookingRepository, EpisodeRepository, OncallRepository
from bot.storage.audit_log import AuditRepository
from bot.storage.repository import CADENCE_KINDS, INTEGRITY_RETRIES, NotFound, Repository, clean_label

__all__ = ["AnswerAction", "AnswerOutcome", "AssessmentRepository", "NotFound", "Store"]

log = logging.getLogger(__name__)

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
_ASSESSMENT_COLUMNS = ("episode_id", "channel_id", "kind", "inputs_json", "result_json", "grade", "rulebook_id",
                       "rulebook_version", "user_id", "created_at")
_AUDIT_COLUMNS = ("at", "channel_id", "user_id", "action", "patient_label", "detail_json")


class AssessmentRepository(Repository):
    """Graded assessments, joining the patient's open episode or opening one."""

    def __init__(self, engine: Engine, clock: Clock | None = None) -> None:
        super().__init__(engine, clock)
        # Every command writes these two rows: on the driver's cursor, inside the same transaction.
        self._assessment_row = CompiledInsert(_INSERT_ASSESSMENT, engine, _ASSESSMENT_COLUMNS)
        self._grade_audit_row = CompiledInsert(_INSERT_AUDIT, engine, _AUDIT_COLUMNS)

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
        label = clean_label(patient_label)
        for attempt in range(1, INTEGRITY_RETRIES + 1):
            try:
                return self._record_assessment_once(
                    channel_id, label, product, kind, inputs, result, grade, rulebook_id, rulebook_version, user_id,
                    recurrent_of, restart_cadence, next_reassess_at,
                )
            except IntegrityError:
                # Another replica opened this patient's episode a moment ago; join it.
                if label is None or attempt == INTEGRITY_RETRIES:
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
        with self.engine.begin() as db:
            # A Core connection, not a Session and its unit of work: this runs for every command, and the
            # Session's layers cost more CPU than the statements themselves.
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
            cursor = db.connection.cursor()  # this transaction's own driver connection
            try:
                assessment_id = self._assessment_row.run(cursor, assessment)
                self._grade_audit_row.run(cursor, dict(
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
            finally:
                cursor.close()
            booked = None
            if restart_cadence and episode is not None:
                booked = self._restart_cadence(db, episode, user_id, next_reassess_at, now, is_new)
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
        self, db: Connection, row: Episode, user_id: str, due_at: datetime | None, now: datetime, is_new: bool
    ) -> ReminderRow | None:
        """A new assessment answers "please reassess": posted reminders are answered, pending
        reassess/escalation cancelled, and the next reassess booked (while the episode is open)."""
        answered: tuple[int, ...] = ()
        if not is_new:  # a new episode has no reminders yet
            self._cancel_pending(db, row.id, CADENCE_KINDS)
            answered = self._mark_answered(db, row.id, user_id, now)
        if answered:
            db.execute(_INSERT_AUDIT, dict(
                at=now, channel_id=row.channel_id, user_id=user_id, action="reminder_answered",
                patient_label=row.patient_label,
                detail_json={"episode_id": row.id, "action": "assessment", "reminder_ids": list(answered)}))
        if due_at is None or row.status != EpisodeStatus.OPEN:
            return None
        return self._add_reminder(db, row.id, ReminderKind.REASSESS, due_at, now)

    def patient_history(self, channel_id: str, patient_label: str | None) -> PatientHistory:
        """What grading needs about a patient, in one read: the open episode's product and, per product,
        the last resolved episode (for recurrence)."""
        label = clean_label(patient_label)
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
        a, e = AssessmentRow.__table__.c, EpisodeRow.__table__.c
        with self.engine.begin() as connection:  # Core: no ORM session for two keyed UPDATEs
            connection.execute(update(AssessmentRow.__table__).where(a.id == assessment_id).values(message_ts=ts))
            if episode_id is not None:
                connection.execute(update(EpisodeRow.__table__).where(e.id == episode_id, e.thread_ts.is_(None))
                                   .values(thread_ts=ts))

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


class Store(AssessmentRepository, EpisodeRepository, BookingRepository, OncallRepository, AuditRepository):
    """The bot's persistence API: every repository over one engine."""
