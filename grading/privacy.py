"""The patient-label guard: patients are named by a short bed or study code, never by anything that
could identify them. One function, `check_patient_label`, is called by every entry point (slash
command, form, button, CLI) before a label is used, stored or logged.

Two tiers of rules. The hard rules (dates, phone/SSN/NHS-number shapes, e-mail, several words) can
never be switched off. The shape rules (long digit runs, letters+digits record numbers, initials with
a year, day/month, name-like words) are the default guess at what a label is not; a site that sets an
allow pattern says exactly what its labels look like, and a label matching it in full skips the shape
rules (never the hard ones).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from grading.errors import PatientLabelError

MAX_LABEL_LENGTH = 24
REFUSED_MARKER = "[refused label]"
LABEL_FORM = "one code of letters, digits and - _ . / (up to 24 characters), such as bed12, 4B-07 or study-012-003"

# Words that are parts of a location or study code, not of a name. A longer alphabetic run is
# name-like unless it is one of these (optionally with a bed letter or two attached: bedA, bedzq, xicu).
LOCATION_WORDS = frozenset("""
    bed beds bay bays room rm ward unit icu hdu ccu picu nicu micu sicu cicu pacu amu cdu sdu mau sau
    ed er or side study trial cohort arm site floor fl level wing north south east west day
    onc heme hem bmt chair cub cubicle iso pod suite area obs step down tele walkin stretcher
    trolley recovery infusion clinic suite dlt dose cycle part pt subj subject screen
""".split())

_SEPARATORS = "-_./"
_ALLOWED = re.compile(r"[a-z0-9][a-z0-9_\-/.]*")
_MONTHS = r"(jan|feb|mar|apr|may|jun|jul|aug|sep|sept|oct|nov|dec)[a-z]*"
_SEP = r"[-/._]"

# Hard rules: (pattern searched in the lower-cased label, what it looks like).
_HARD_RULES: tuple[tuple[re.Pattern[str], str], ...] = tuple((re.compile(p), why) for p, why in (
    (r"@", "an e-mail address"),
    (r"\d{3}" + _SEP + r"\d{2}" + _SEP + r"\d{4}", "a social security number"),
    (r"\d{1,4}" + _SEP + r"\d{1,2}" + _SEP + r"\d{1,4}", "a date"),
    (r"(^|\D)(0?[1-9]|1[0-2])" + _SEP + r"(19|20)\d\d($|\D)", "a month and year"),
    (r"(^|\D)(19|20)\d\d" + _SEP + r"(0?[1-9]|1[0-2])($|\D)", "a year and month"),
    (r"\d" + _SEP + r"?" + _MONTHS + r"|" + _MONTHS + _SEP + r"?\d", "a date"),
    (r"(^|[^a-z])(dob|born|birth|bday|ssn|nhs|mrn|chi|urn|hosp|hospital|record|acct|nino)($|[^a-z])",
     "an identifier (it names a record type)"),
    (r"^(mr|id|pid|hn|umrn|rec|hosp|nhs|mrn)[-_./]?\d", "a record number"),
    (r"\d{3}" + _SEP + r"\d{3}" + _SEP + r"\d{4}", "a phone or NHS number"),
    (r"(^|\D)\d{3}" + _SEP + r"\d{4}($|\D)", "a phone number"),
    (r"(^|\D)\d{4}" + _SEP + r"\d{4}($|\D)", "a phone number"),
    (r"^\+", "a phone number"),
))

# Shape rules built from a short letter run (1-3 letters: initials, or a record-number prefix) beside a
# number. A run that is itself a location word (bed, rm, icu, pt, ...) is a code, not initials:
# bed2001 and pt-01234 pass, jd1980 and ab12345 do not. Longer runs are judged by the name-word rule.
_YEAR = r"(?:19\d\d|20[0-2]\d)"  # a birth year
_LETTERS_BEFORE = r"(?<![a-z])([a-z]{1,3})" + _SEP + "?"
_LETTERS_AFTER = _SEP + r"?([a-z]{1,3})(?![a-z])"
_LETTER_NUMBER_RULES: tuple[tuple[re.Pattern[str], str], ...] = tuple((re.compile(p), why) for p, why in (
    (_LETTERS_BEFORE + _YEAR + r"(?!\d)", "it has initials beside a year, like a name and a birth year."),
    (r"(?<!\d)" + _YEAR + _LETTERS_AFTER, "it has initials beside a year, like a name and a birth year."),
    (_LETTERS_BEFORE + r"\d{5}(?!\d)", "it has letters with a 5-digit number, like a record number."),
    (r"(?<!\d)\d{5}" + _LETTERS_AFTER, "it has letters with a 5-digit number, like a record number."),
))
# Two numbers that make a day and a month: joined by / (12/31, 1/4), or by . when both have two digits
# (31.12, 07.04; a decimal such as o2=2.5 or weight=12.5, which the audit redaction also judges, is
# not a date). A hyphen is the usual bed-code separator (3-12, c1-04, 012-003), so it is not read as a
# date here; a bare 4-digit number (0101) is a room number as often as a day and month, so it passes.
_DAY_MONTH = re.compile(r"(?<!\d)(\d{1,2})/(\d{1,2})(?!\d)|(?<!\d)(\d\d)\.(\d\d)(?!\d)")


@dataclass(frozen=True)
class LabelVerdict:
    """The outcome for one label: the normalised label, or the reason it was refused."""

    label: str | None
    reason: str | None = None

    @property
    def allowed(self) -> bool:
        return self.reason is None


def check_patient_label(label: str | None, deny_pattern: str | None = None,
                        allow_pattern: str | None = None) -> str | None:
    """The label as it will be stored (lower-cased, 'study 012-003' joined), or `PatientLabelError`.

    `deny_pattern` (CRSBOT_PATIENT_DENY_PATTERN) adds site rules to the built-in deny set;
    `allow_pattern` (CRSBOT_PATIENT_ALLOW_PATTERN) is what the site's labels look like.
    """
    verdict = judge_label(label, deny_pattern, allow_pattern)
    if not verdict.allowed:
        raise PatientLabelError(label or "", verdict.reason or "")
    return verdict.label


def judge_label(label: str | None, deny_pattern: str | None = None,
                allow_pattern: str | None = None) -> LabelVerdict:
    """Like `check_patient_label`, but returns the verdict instead of raising."""
    if label is None:
        return LabelVerdict(None)
    words = label.strip().lower().split()
    if not words:
        return LabelVerdict(None, "the label is empty.")
    if len(words) > 1:
        joined = _join_study_code(words)
        if joined is None:
            return _refused(f"it has {len(words)} words. Words are never joined (a name would become a label). "
                            f"Type {LABEL_FORM}")
        words = [joined]
    text = words[0]
    if len(text) > MAX_LABEL_LENGTH:
        return _refused(f"it is longer than {MAX_LABEL_LENGTH} characters.")
    if not _ALLOWED.fullmatch(text):
        why = "an e-mail address" if "@" in text else None
        return _refused(f"it looks like {why}." if why else
                        "it has characters other than letters, digits and - _ . /")
    for pattern, why in _HARD_RULES:
        if pattern.search(text):
            return _refused(f"it looks like {why}.")
    if deny_pattern and _compiled(deny_pattern).search(text):
        return _refused("it matches this site's deny pattern (CRSBOT_PATIENT_DENY_PATTERN).")
    if allow_pattern:
        if _compiled(allow_pattern).fullmatch(text):
            return LabelVerdict(text)
        return _refused("it is not in this site's label format (CRSBOT_PATIENT_ALLOW_PATTERN).")
    shape = _shape_problem(text)
    if shape:
        return _refused(shape)
    return LabelVerdict(text)


def _refused(reason: str) -> LabelVerdict:
    return LabelVerdict(None, f"this label looks like a name or a record number: {reason}")


def _join_study_code(words: list[str]) -> str | None:
    """'study 012-003' or 'bed 12': a location/study word and one code with a digit is unambiguous."""
    if len(words) == 2 and words[0] in LOCATION_WORDS and any(c.isdigit() for c in words[1]) \
            and not any(c.isalpha() for c in words[1][:1]):
        return f"{words[0]}-{words[1]}"
    return None


def _shape_problem(text: str) -> str | None:
    """The default shape rules, skipped for labels the site's allow pattern accepts."""
    digits = re.findall(r"\d+", text)
    if any(len(run) >= 6 for run in digits):
        return "it has a run of 6 or more digits, like a record, NHS or phone number or a date."
    if not re.search(r"[a-z]", text) and sum(len(run) for run in digits) >= 7:
        return "it has 7 or more digits and no letters, like a phone or record number."
    for pattern, why in _LETTER_NUMBER_RULES:
        if any(match.group(1) not in LOCATION_WORDS for match in pattern.finditer(text)):
            return why
    if any(_is_day_month(*(int(n) for n in match.groups() if n)) for match in _DAY_MONTH.finditer(text)):
        return "it has a day and a month joined by / or . like a date."
    alpha = re.findall(r"[a-z]+", text)
    unknown = [word for word in alpha if len(word) >= 4 and not _location_word(word)]
    if unknown:
        return "it has a word that could be a name; use bed, room, ward, study codes."
    segments = [s for s in re.split(r"[-_./]", text) if s]
    name_parts = [s for s in segments if s.isalpha() and len(s) >= 2 and not _location_word(s)]
    if len(name_parts) >= 2:
        return "it joins name-like words with a separator."
    return None


def _is_day_month(first: int, second: int) -> bool:
    """Either order: 12/31 (month/day) or 31.12 (day.month)."""
    return any(1 <= month <= 12 and 1 <= day <= 31 for month, day in ((first, second), (second, first)))


def _location_word(word: str) -> bool:
    if word in LOCATION_WORDS or len(word) <= 1:
        return True
    return any(len(w) >= 3 and (word.startswith(w) and len(word) - len(w) <= 2
                                or word.endswith(w) and len(word) - len(w) <= 1) for w in LOCATION_WORDS)


@lru_cache(maxsize=16)
def _compiled(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern, flags=re.IGNORECASE)


def redact_labels(text: str, deny_pattern: str | None = None, allow_pattern: str | None = None,
                  words: frozenset[str] = frozenset()) -> str:
    """Command text safe to audit or log: any value that fails the guard, and any bare word that is
    not one of `words` (sub-commands) or a Slack mention, become the refused marker. What a refused
    label was is never kept."""
    kept = []
    for word in text.split():
        key, sep, value = word.partition("=") if "=" in word else word.partition(":")
        if not sep or not key:
            mention = re.fullmatch(r"<(@[UW][A-Z0-9]+|!subteam\^[A-Z0-9]+)(\|[^>]*)?>", word)
            kept.append(word if word.lower() in words else f"<{mention.group(1)}>" if mention else REFUSED_MARKER)
            continue
        verdict = judge_label(value, deny_pattern, allow_pattern)
        kept.append(f"{key}{sep}{verdict.label if verdict.allowed else REFUSED_MARKER}")
    return " ".join(kept)
