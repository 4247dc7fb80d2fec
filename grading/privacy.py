"""Patients are referred to by bed or study label only; this refuses labels that look like a
name or a record number, using the site's pattern."""

from __future__ import annotations

import re

from grading.errors import PatientLabelError


def check_patient_label(label: str | None, deny_pattern: str) -> None:
    if label is None:
        return
    if re.search(deny_pattern, label, flags=re.IGNORECASE):
        raise PatientLabelError(label, f"`{label}` looks like a name or a record number.")
