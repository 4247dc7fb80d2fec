"""Immutable snapshots of stored rows, handed to the rest of the bot.

They are plain frozen dataclasses (not ORM instances) so they can cross threads
and outlive their transaction without lazy loads or stale-state surprises.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bot.storage.tables import AssessmentRow, AuditRow, EpisodeRow, OncallRow, ReminderRow

__all__ = [
    "Assessment",
    "AuditEntry",
    "Episode",
    "EpisodeHistory",
    "Oncall",
    "RecordedAssessment",
    "Reminder",
]


@dataclass(frozen=True)
class Episode:
    id: int
    channel_id: str
    patient_label: str
    product: str
    status: str
    opened_at: datetime
    resolved_at: datetime | None
    resolved_by: str | None
    current_grade: int | None
    worst_grade: int | None
    recurrent_of: int | None
    thread_ts: str | None
    symptom_free_until: datetime | None

    @property
    def is_open(self) -> bool:
        return self.status == "open"

    @classmethod
    def of(cls, row: EpisodeRow) -> Episode:
        return cls(
            id=row.id,
            channel_id=row.channel_id,
            patient_label=row.patient_label,
            product=row.product,
            status=row.status,
            opened_at=row.opened_at,
            resolved_at=row.resolved_at,
            resolved_by=row.resolved_by,
            current_grade=row.current_grade,
            worst_grade=row.worst_grade,
            recurrent_of=row.recurrent_of,
            thread_ts=row.thread_ts,
            symptom_free_until=row.symptom_free_until,
        )


@dataclass(frozen=True)
class Assessment:
    id: int
    episode_id: int | None
    channel_id: str
    kind: str
    inputs: dict[str, Any]
    result: dict[str, Any]
    grade: int | None
    rulebook_id: str
    rulebook_version: str
    user_id: str
    created_at: datetime
    message_ts: str | None

    @classmethod
    def of(cls, row: AssessmentRow) -> Assessment:
        return cls(
            id=row.id,
            episode_id=row.episode_id,
            channel_id=row.channel_id,
            kind=row.kind,
            inputs=row.inputs_json,
            result=row.result_json,
            grade=row.grade,
            rulebook_id=row.rulebook_id,
            rulebook_version=row.rulebook_version,
            user_id=row.user_id,
            created_at=row.created_at,
            message_ts=row.message_ts,
        )


@dataclass(frozen=True)
class RecordedAssessment:
    """What `Store.record_assessment` did, so the caller can word its reply.

    `next_reminder` is the reassess it booked when asked to restart the episode's cadence.
    """

    assessment: Assessment
    episode: Episode | None
    is_new_episode: bool
    next_reminder: Reminder | None = None

    @property
    def assessment_id(self) -> int:
        return self.assessment.id


@dataclass(frozen=True)
class EpisodeHistory:
    episode: Episode
    assessments: tuple[Assessment, ...]


@dataclass(frozen=True)
class Reminder:
    id: int
    episode_id: int
    kind: str
    due_at: datetime
    first_due_at: datetime
    status: str
    attempts: int
    claimed_by: str | None
    claimed_at: datetime | None
    sent_at: datetime | None
    late_by_seconds: float | None
    message_ts: str | None
    answered_by: str | None
    answered_at: datetime | None
    coalesced_into: int | None
    last_error: str | None
    created_at: datetime

    @classmethod
    def of(cls, row: ReminderRow) -> Reminder:
        return cls(
            id=row.id,
            episode_id=row.episode_id,
            kind=row.kind,
            due_at=row.due_at,
            first_due_at=row.first_due_at,
            status=row.status,
            attempts=row.attempts,
            claimed_by=row.claimed_by,
            claimed_at=row.claimed_at,
            sent_at=row.sent_at,
            late_by_seconds=row.late_by_seconds,
            message_ts=row.message_ts,
            answered_by=row.answered_by,
            answered_at=row.answered_at,
            coalesced_into=row.coalesced_into,
            last_error=row.last_error,
            created_at=row.created_at,
        )


@dataclass(frozen=True)
class Oncall:
    channel_id: str
    target: str
    set_by: str
    set_at: datetime

    @classmethod
    def of(cls, row: OncallRow) -> Oncall:
        return cls(channel_id=row.channel_id, target=row.target, set_by=row.set_by, set_at=row.set_at)


@dataclass(frozen=True)
class AuditEntry:
    id: int
    at: datetime
    channel_id: str | None
    user_id: str | None
    action: str
    patient_label: str | None
    detail: dict[str, Any]

    @classmethod
    def of(cls, row: AuditRow) -> AuditEntry:
        return cls(
            id=row.id,
            at=row.at,
            channel_id=row.channel_id,
            user_id=row.user_id,
            action=row.action,
            patient_label=row.patient_label,
            detail=row.detail_json,
        )
