"""The append-only audit trail: rows written by operations that are not audited by another repository."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

from sqlalchemy import select

from bot.clock import as_utc
from bot.storage.records import AuditEntry
from bot.storage.tables import AuditRow

from bot.storage.repository import Repository, clean_label

__all__ = ["AuditRepository"]


class AuditRepository(Repository):
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
            row = self._add_audit(session, now, action, channel_id, user_id, clean_label(patient_label), detail)
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
