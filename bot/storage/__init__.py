"""Persistence for crsbot: schema, migrations runner and the `Store` API."""

from bot.storage.audit_export import export_audit
from bot.storage.db import current_revision, default_database_url, head_revision, make_engine, upgrade
from bot.storage.records import (
    Assessment,
    AuditEntry,
    Episode,
    EpisodeHistory,
    Oncall,
    RecordedAssessment,
    Reminder,
)
from bot.storage.store import AnswerAction, AnswerOutcome, NotFound, Store

__all__ = [
    "AnswerAction",
    "AnswerOutcome",
    "Assessment",
    "AuditEntry",
    "Episode",
    "EpisodeHistory",
    "NotFound",
    "Oncall",
    "RecordedAssessment",
    "Reminder",
    "Store",
    "current_revision",
    "default_database_url",
    "export_audit",
    "head_revision",
    "make_engine",
    "upgrade",
]
