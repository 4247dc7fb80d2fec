"""Audit trail export for governance reviews (CSV for spreadsheets, JSON lines for tools)."""

from __future__ import annotations

import csv
import json
from datetime import datetime
from typing import Any, Literal, TextIO

from bot.storage.records import AuditEntry
from bot.storage.store import Store

__all__ = ["AUDIT_COLUMNS", "export_audit"]

AUDIT_COLUMNS = ("id", "at", "channel_id", "user_id", "action", "patient_label", "detail")


def _as_dict(entry: AuditEntry) -> dict[str, Any]:
    return {
        "id": entry.id,
        "at": entry.at.isoformat(),
        "channel_id": entry.channel_id,
        "user_id": entry.user_id,
        "action": entry.action,
        "patient_label": entry.patient_label,
        "detail": entry.detail,
    }


def export_audit(
    store: Store, fmt: Literal["csv", "jsonl"], out: TextIO, *, since: datetime | None = None
) -> int:
    """Write the audit trail (optionally from `since`) to `out`; returns the number of rows written.

    CSV keeps `detail` as a JSON string in one column; JSON lines keep it as an object.
    """
    if fmt not in ("csv", "jsonl"):
        raise ValueError(f"unknown audit export format {fmt!r}; expected 'csv' or 'jsonl'")
    count = 0
    if fmt == "csv":
        writer = csv.DictWriter(out, fieldnames=AUDIT_COLUMNS, lineterminator="\n")
        writer.writeheader()
        for entry in store.iter_audit(since):
            row = _as_dict(entry)
            row["detail"] = json.dumps(row["detail"], sort_keys=True, ensure_ascii=False)
            writer.writerow(row)
            count += 1
    else:
        for entry in store.iter_audit(since):
            out.write(json.dumps(_as_dict(entry), sort_keys=True, ensure_ascii=False) + "\n")
            count += 1
    return count
