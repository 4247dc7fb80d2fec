"""`Store`: every database operation the bot performs, one transaction each, composed from the
repositories (SQL only; the rules live in bot/episodes/policy.py and the handlers).

Assessments live here; episodes, reminder bookings and the on-call chain in bot/episodes/repositories.py;
the audit trail in bot/storage/audit_log.py; reminder delivery (claim/complete) in
bot/episodes/repositories.py's `ReminderRepository`, used by the engine only.
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from bot.storage.kinds import AnswerAction, AssessmentKind, EpisodeStatus
from bot.storage.records import Assessment, Episode, RecordedAssessment
from bot.storage.tables import ASSESSMENT_KINDS, PRODUCTS, AssessmentRow, EpisodeRow
from bot.episodes.repositories import AnswerOutcome, BookingRepository, EpisodeRepository, OncallRepository
from bot.storage.audit_log import AuditRepository
from bot.storage.repository import INTEGRITY_RETRIES, NotFound, Repository, clean_label

__all__ = ["AnswerAction", "AnswerOutcome", "AssessmentRepository", "NotFound", "Store"]

log = logging.getLogger(__name__)


class AssessmentRepository(Repository):
    """Graded assessments, joining the patient's open episode or opening one."""

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
        label = clean_label(patient_label)
        for attempt in range(1, INTEGRITY_RETRIES + 1):
            try:
                return self._record_assessment_once(
                    channel_id, label, product, kind, inputs, result, grade, rulebook_id, rulebook_version, user_id
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
                previous = session.scalars(self._last_resolved(channel_id, label, product)).one_or_none()
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


class Store(AssessmentRepository, EpisodeRepository, BookingRepository, OncallRepository, AuditRepository):
    """The bot's persistence API: every repository over one engine."""
