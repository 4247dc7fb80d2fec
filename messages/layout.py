"""One layout for every reply, rendered as Block Kit for Slack and as plain text for the notification
fallback, the CLI and the console. Keeping the words here means every surface says the same thing.

A layout has two parts. The first screen is what the on-call team reads on a phone without scrolling:
the headline (grade, with "at least" or "if fever is masked" in it), the finding that drove it, and the
two or three actions that matter most now, the next-dose consequence among them. Everything else (the
reasons in full, every action with its source, supportive care, conventions) is in `details`, one tap
away behind the Details button.
"""

from __future__ import annotations

from dataclasses import dataclass

from grading.crs import celsius_text
from grading.models import Action, CrsReport, DelayReport, IcansReport, PremedReport, RulebookRef

JUDGMENT = "crsbot supports the team's clinical judgment; it does not replace it."
PRODUCT_NAMES = {"iv": "LUNSUMIO (IV)", "velo": "LUNSUMIO VELO (SC)"}
STATUS_TAGS = {"label": "label", "consensus": "consensus", "site": "site rule", "not_available": "not in rulebook"}
NEXT_DOSE = "Next dose"
MASKERS = "premedication, antipyretics, tocilizumab or steroids"


@dataclass(frozen=True)
class Section:
    title: str
    lines: tuple[str, ...]


@dataclass(frozen=True)
class Layout:
    """What one reply says. `grade` is the severity it leads with (for a masked-fever reply, the grade if
    fever is masked), so the emoji and words never show a lower one than the headline."""

    headline: str
    grade: int | None
    lead: tuple[str, ...]
    first: tuple[str, ...]
    details: tuple[Section, ...]
    context: str
    summary: str
    graded: bool = True  # a grade reply (severity emoji in the header); delay and premed answers are not


def context_line(ref: RulebookRef) -> str:
    reviewed = f", reviewed by {ref.reviewed_by} on {ref.reviewed_on}" if ref.reviewed_by else ""
    return f"Rulebook v{ref.version}{reviewed} · {JUDGMENT}"


def action_line(action: Action) -> str:
    return f"{action.text} [{action.source}, {STATUS_TAGS[action.status]}]"


def _section(title: str, lines: list[str] | tuple[str, ...]) -> list[Section]:
    return [Section(title, tuple(lines))] if lines else []


def _with_patient(patient: str | None, phrase: str) -> str:
    return f"{patient} · {phrase}" if patient else phrase


def _summary(headline: str, first: tuple[str, ...]) -> str:
    """The notification: patient and grade (the headline), then the first action."""
    return f"{headline}. First: {first[0]}" if first else headline


# ----------------------------------------------------------------------------------------------- CRS


def _not_stated(unstated: tuple[str, ...]) -> list[str]:
    return [u for u in unstated if u != "temperature"]


def crs_grade_phrase(report: CrsReport) -> str:
    """The headline's verdict. Never "no CRS" when masked fever could explain a finding, and "at least" (or
    "in what was stated") whenever an input that could raise the grade was not stated."""
    at_least = "at least " if report.at_least else ""
    masked_grade, grade = report.grade_if_fever_masked, report.grade
    if masked_grade:
        if grade is None:
            return f"CRS {at_least}grade {masked_grade} if fever is present or masked · temperature not stated"
        return f"CRS {at_least}grade {masked_grade} if fever is masked · no fever recorded"
    if grade is None:
        return "CRS grade not given · temperature not stated"
    if grade > 0:
        return f"CRS {at_least}grade {grade}"
    if report.fever_masked:
        if _not_stated(report.unstated):
            return "No CRS finding in what was stated · fever may be masked"
        return "No hypotension or hypoxia · fever may be masked, CRS not excluded"
    if _not_stated(report.unstated):
        return "No CRS in what was stated · no fever"
    return "CRS grade 0 · no fever, hypotension or hypoxia"


def crs_headline(report: CrsReport) -> str:
    return _with_patient(report.input.patient, crs_grade_phrase(report))


def _crs_why(report: CrsReport) -> str:
    fever = next((f.text for f in report.findings if f.domain == "fever"), None)
    why = report.driver
    if fever and fever != report.driver:
        why += f", with {fever}"
    return f"Why: {why}."


def _crs_lead(report: CrsReport) -> list[str]:
    lead = [_crs_why(report)]
    basis = report.grade or report.grade_if_fever_masked
    if report.grade_if_fever_masked:
        temp = report.input.temp_c
        seen = f"No fever recorded ({celsius_text(temp)})" if temp is not None else "Temperature not stated"
        lead.append(f"{seen}: {MASKERS} can hide fever, so the actions are those for grade {basis}. "
                    "Add `masked=yes` if fever was masked.")
    not_stated = _not_stated(report.unstated)
    if not_stated:
        lead.append("Not stated: " + ", ".join(not_stated) + " (not assumed present).")
    product = PRODUCT_NAMES[report.product]
    if report.recurrent and any(a.status == "not_available" and "recurrent" in a.id for a in report.next_dose):
        product += f" · recurrent grade {basis}"
    lead.append(product)
    return lead


def _crs_first(report: CrsReport) -> tuple[str, ...]:
    return tuple(f"{NEXT_DOSE}: {a.text}" if a.phase == "next_dose" else a.text for a in report.first)


def crs_details(report: CrsReport) -> tuple[Section, ...]:
    why = [f"Driven by: {report.driver}."]
    if report.findings:
        why.append("Findings: " + "; ".join(
            f.text if f.domain == "fever" else f"{f.text} ({f.domain}, grade {f.level})" for f in report.findings) + ".")
    if report.unstated:
        line = "Not stated (not assumed present): " + ", ".join(report.unstated) + "."
        shown = report.grade or report.grade_if_fever_masked
        if report.at_least and shown:
            line += f" Graded on what was given: at least grade {shown}."
        why.append(line)
    return tuple([
        *_section("Why", why + list(report.notes)),
        *_section("What to do now", [action_line(a) for a in report.management]),
        *_section(NEXT_DOSE, [action_line(a) for a in report.next_dose]),
        *_section("Supportive care", [action_line(a) for a in report.supportive]),
        *_section("Tocilizumab dose", [f"{report.tocilizumab.text} [{report.tocilizumab.source}]"]
                  if report.tocilizumab else []),
        *_section("Conventions applied", [c.text + f" [{c.source}]" for c in report.conventions]),
        Section("Rulebook", (f"{report.rulebook.title}: {report.rulebook.id} v{report.rulebook.version}.",)),
    ])


def crs_layout(report: CrsReport) -> Layout:
    headline = crs_headline(report)
    first = _crs_first(report)
    shown = report.grade_if_fever_masked or report.grade
    return Layout(headline=headline, grade=shown, lead=tuple(_crs_lead(report)), first=first,
                  details=crs_details(report), context=context_line(report.rulebook),
                  summary=_summary(headline, first))


# --------------------------------------------------------------------------------------------- ICANS


def icans_grade_phrase(report: IcansReport) -> str:
    if report.grade:
        return f"ICANS {'at least ' if report.at_least else ''}grade {report.grade}"
    return "No ICANS in what was stated" if report.at_least else "ICANS grade 0 · no ICANS"


def icans_layout(report: IcansReport) -> Layout:
    headline = _with_patient(report.input.patient, icans_grade_phrase(report))
    lead = ["Why: " + ("; ".join(f"{f.text} (grade {f.level})" for f in report.findings) or "no ICANS finding")
            + "."]
    if report.unstated:
        lead.append("Not stated: " + ", ".join(report.unstated) + " (not assumed present).")
    lead.append(PRODUCT_NAMES[report.product])
    first = tuple(a.text for a in report.management if a.status != "not_available")
    details = (*_section("Why", list(report.notes)),
               *_section("What it means for dosing", [action_line(a) for a in report.management]),
               Section("Rulebook", (f"{report.rulebook.title}: {report.rulebook.id} v{report.rulebook.version}.",)))
    return Layout(headline=headline, grade=report.grade, lead=tuple(lead), first=first, details=details,
                  context=context_line(report.rulebook), summary=_summary(headline, first))


# ---------------------------------------------------------------------------------- delay and premed


def delay_layout(report: DelayReport) -> Layout:
    inp = report.input
    headline = f"Restart after a dose delay · last dose {inp.last}, {inp.since_days:g} days ago · " \
               f"{PRODUCT_NAMES[report.product]}"
    if report.available:
        steps = [f"{i}. {d.mg:g} mg ({d.label})" for i, d in enumerate(report.next_doses, 1)]
        steps.append(f"Then {report.then}." if report.then else "")
        lines = [s for s in steps if s] + [f"[{report.source}, {STATUS_TAGS[report.status]}]"]
    else:
        lines = [report.reason or ""]
    details = (*_section("Next doses", lines), *_section("Notes", report.notes))
    return Layout(headline=headline, grade=None, lead=(), first=(), details=details,
                  context=context_line(report.rulebook), summary=headline, graded=False)


def premed_layout(report: PremedReport) -> Layout:
    inp = report.input
    if not report.available:
        verdict = "not in this rulebook"
    else:
        verdict = {True: "required", False: "not required", None: "depends on prior CRS"}[report.required]
    headline = f"Premedication, cycle {inp.cycle}: {verdict} · {PRODUCT_NAMES[report.product]}"
    items = [f"{i.name}: {i.dose}, {i.timing}." for i in report.items]
    if items:
        items.append(f"[{report.source}, {STATUS_TAGS[report.status]}]")
    details = (*_section("Why", [report.reason]), *_section("Premedication", items),
               *_section("Notes", report.notes))
    return Layout(headline=headline, grade=None, lead=(), first=(), details=details,
                  context=context_line(report.rulebook), summary=headline, graded=False)


def layout_for(report: CrsReport | IcansReport | DelayReport | PremedReport) -> Layout:
    match report:
        case CrsReport():
            return crs_layout(report)
        case IcansReport():
            return icans_layout(report)
        case DelayReport():
            return delay_layout(report)
        case PremedReport():
            return premed_layout(report)
    raise TypeError(f"no layout for {type(report).__name__}")
