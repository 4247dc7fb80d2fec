"""The closed vocabularies stored in the database: kinds and statuses as enums.

They are `StrEnum`s so a value compares equal to the string stored in its column, and the
CHECK constraints in `tables` are generated from them: one list per vocabulary.
"""

from __future__ import annotations

from enum import StrEnum

__all__ = ["AnswerAction", "AssessmentKind", "EpisodeStatus", "Product", "ReminderKind", "ReminderStatus"]


class EpisodeStatus(StrEnum):
    OPEN = "open"
    RESOLVED = "resolved"


class Product(StrEnum):
    IV = "iv"
    VELO = "velo"


class AssessmentKind(StrEnum):
    CRS = "crs"
    ICANS = "icans"


class ReminderKind(StrEnum):
    """What a scheduled post is for; a new kind plugs in with a policy rule and a renderer."""

    REASSESS = "reassess"
    ESCALATION = "escalation"
    SYMPTOM_FREE = "symptom_free"

    @property
    def is_cadence(self) -> bool:
        """Part of an open episode's reassessment cycle (stopped by resolution or an answer)."""
        return self in (ReminderKind.REASSESS, ReminderKind.ESCALATION)


class ReminderStatus(StrEnum):
    PENDING = "pending"
    CLAIMED = "claimed"
    SENT = "sent"
    ANSWERED = "answered"
    CANCELLED = "cancelled"
    FAILED = "failed"


class AnswerAction(StrEnum):
    """How someone responded to a reminder (button or command)."""

    REASSESSED = "reassessed"
    SNOOZE = "snooze"
    ACK = "ack"
