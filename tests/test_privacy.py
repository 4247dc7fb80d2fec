"""The patient-label guard as a privacy officer would test it: a table of identifier-shaped labels
that must be refused and of real bed/study labels that must pass (counts are asserted, so the
table cannot quietly shrink)."""

from __future__ import annotations

from pathlib import Path

import pytest

from grading.errors import PatientLabelError
from grading.privacy import REFUSED_MARKER, check_patient_label, judge_label, redact_labels

IDENTIFIERS = [
    # dates, every common spelling
    "1980-01-01", "01/01/1980", "1/1/80", "01.01.1980", "31-12-1999", "12/31/99", "2001.12.31", "1980_01_01",
    "19800101", "010180", "01jan1980", "1jan80", "jan-01-1980", "dec311999", "03/1980", "1980-03",
    "dob-0101", "born1980", "15march1975",
    # day and month without a year, joined by / or .
    "12/31", "31.12", "1/4", "07.04",
    # phone numbers
    "555-123-4567", "555.123.4567", "5551234567", "07700900123", "+447700900123", "555-1234", "1234-5678",
    "020-7946-0958",
    # SSN and NHS-number shapes
    "123-45-6789", "123_45_6789", "123456789", "943-476-5919", "9434765919", "nhs-9434765919", "nhs4765",
    # e-mail
    "john@example.com", "j.smith@nhs.net", "a@b",
    # record numbers: letters + long digit runs, prefixed ids
    "A1234567", "hosp-1234567", "MRN-0042", "mrn12", "mr-44", "id-45", "id7", "pid-330", "K123456",
    "RJ1234567", "12345678", "ab-123456", "x0000001", "chi-0101", "urn-22", "record7",
    # letters with a 5-digit number (record-number shapes one digit short of the run rule)
    "a12345", "ab12345", "ab-12345", "12345ab",
    # names, joined by separators or run together
    "John-Smith", "smith/john", "john.smith", "j.smith", "smith_j", "mary-jane-smith", "jsmith1980",
    "johnsmith", "smith", "ann-lee", "joe.doe", "bob-smith-4", "o.connor", "edward", "eastwood2",
    # initials with a birth year, either order, with or without a separator
    "jd1980", "jd-1980", "1980jd", "jo.1980", "j_1985", "mk2003",
    # several words (never joined)
    "John Smith", "smith john 12", "bed 12 john", "mary ann",
]

LEGITIMATE = [
    "bed12", "4B-07", "ICU-3", "icu.b", "bed_a", "012-003", "study-012-003", "rm4.bed2", "c1-04", "a.b",
    "bed7", "bed2", "bedzq77", "bay3-bed4", "ward5/bed2", "hdu-1", "picu.2", "side-room-4", "rm12",
    "b12", "4a", "12", "3-12", "icu-b", "pt-03", "cohort2-07", "arm-b-004", "study-7-21", "walkin0001",
    "chair-6", "bed000", "c2", "5n-14", "icu_b-2",
    # a location or study word beside a year-like or 5-digit number is a code, not initials or an MRN
    "pt-01234", "study-01234", "rm2010",
    # a bare 4-digit number is a room number as often as a day and month (0101 = floor 1, room 01)
    "0101", "1204",
]


@pytest.mark.parametrize("label", IDENTIFIERS)
def test_identifier_shaped_labels_are_refused(label: str) -> None:
    with pytest.raises(PatientLabelError) as caught:
        check_patient_label(label)
    assert "name or a record number" in caught.value.user_message()


@pytest.mark.parametrize("label", IDENTIFIERS)
def test_the_refusal_never_repeats_the_label(label: str) -> None:
    reason = judge_label(label).reason or ""
    assert reason
    assert "".join(label.lower().split()) not in reason.lower()
    with pytest.raises(PatientLabelError) as caught:
        check_patient_label(label)
    assert label.lower() not in caught.value.user_message().lower()


@pytest.mark.parametrize("label", LEGITIMATE)
def test_real_bed_and_study_labels_pass(label: str) -> None:
    assert check_patient_label(label) == label.lower()


def test_the_table_is_big_enough() -> None:
    assert len(set(IDENTIFIERS)) == len(IDENTIFIERS) >= 60
    assert len(set(LEGITIMATE)) == len(LEGITIMATE) >= 30


def test_the_readme_reports_the_table_s_counts() -> None:
    """The admin reads the counts in README's Security section: they are this table's."""
    readme = " ".join((Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8").split())
    assert f"{len(IDENTIFIERS)} identifier-shaped labels, all refused" in readme
    assert f"{len(LEGITIMATE)} real bed and study labels, all accepted" in readme


def test_a_study_word_and_one_code_is_joined_unambiguously() -> None:
    assert check_patient_label("study 012-003") == "study-012-003"
    assert check_patient_label("bed 12") == "bed-12"
    with pytest.raises(PatientLabelError, match="never joined"):
        check_patient_label("John Smith")
    with pytest.raises(PatientLabelError, match="never joined"):
        check_patient_label("study smith")


def test_no_label_is_no_problem() -> None:
    assert check_patient_label(None) is None


def test_the_allow_pattern_admits_its_own_shape_only() -> None:
    allow = r"bed\d{1,3}|study-\d{6}|\d{6}"
    assert check_patient_label("012003", allow_pattern=allow) == "012003"
    assert check_patient_label("study-012003", allow_pattern=allow) == "study-012003"
    with pytest.raises(PatientLabelError, match="CRSBOT_PATIENT_ALLOW_PATTERN"):
        check_patient_label("icu-3", allow_pattern=allow)
    with pytest.raises(PatientLabelError):  # refused by default: 6 digits look like a record number or date
        check_patient_label("012003")


def test_the_allow_pattern_never_admits_hard_shapes() -> None:
    anything = r".*"
    for label in ("1980-01-01", "555-123-4567", "123-45-6789", "a@b.c", "John Smith", "943-476-5919"):
        assert not judge_label(label, allow_pattern=anything).allowed, label


def test_the_site_deny_pattern_adds_to_the_built_in_set() -> None:
    with pytest.raises(PatientLabelError, match="CRSBOT_PATIENT_DENY_PATTERN"):
        check_patient_label("bed13", deny_pattern=r"13")
    assert check_patient_label("bed12", deny_pattern=r"13") == "bed12"


def test_redacted_text_keeps_no_refused_label() -> None:
    text = "history patient=John-Smith temp=39 John Smith pt=01/01/1980 <@U123|jane>"
    redacted = redact_labels(text, words=frozenset({"history"}))
    for secret in ("john", "smith", "1980", "jane"):
        assert secret not in redacted.lower()
    assert redacted.startswith("history ")
    assert "temp=39" in redacted and "<@U123>" in redacted
    assert redacted.count(REFUSED_MARKER) == 4
    assert redact_labels("temp=39 patient=bed12") == "temp=39 patient=bed12"


def test_redaction_keeps_clinical_decimals() -> None:
    """The day/month rule reads 31.12 as a date, not o2=2.5 or weight=12.5 (the audit judges every value)."""
    text = "temp=38.5 o2=2.5 weight=12.5 fio2=0.4 sbp=85 patient=31.12"
    assert redact_labels(text) == f"temp=38.5 o2=2.5 weight=12.5 fio2=0.4 sbp=85 patient={REFUSED_MARKER}"
