"""One layout for every reply, rendered twice: Block Kit for Slack and plain text for the
fallback, the CLI and the console. Keeping the words here means both always say the same thing.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from grading.models import Action, CrsReport, DelayReport, IcansReport, PremedReport, RulebookRef

JUDGMENT = "crsbot supports the team's clinical judgment; it does not replace it."
PRODUCT_NAMES = {"iv": "LUNSUMIO (IV)", "velo": "LUNSUMIO VELO (SC)"}
STATUS_TAGS = {"label": "label", "consensus": "consensus", "site": "site rule", "not_available": "not in rulebook"}


@dataclass(frozen=True)
class Section:
    title: str
    lines: tuple[str, ...]


@dataclass(frozen=True)
class Layout:
    headline: str
    grade: int | None
    alert: str | None
    sections: tuple[Section, ...]
    context: str
    summary: str = ""
    extra: dict[str, str] = field(default_factory=dict)


def context_line(ref: RulebookRef) -> str:
    reviewed = f", reviewed by {ref.reviewed_by} on {ref.reviewed_on}" if ref.reviewed_by else ""
    return f"Rulebook {ref.id} v{ref.version}{reviewed} · {JUDGMENT}"


def action_line(action: Action) -> str:
    tag = STATUS_TAGS[action.status]
    return f"{action.text} [{action.source}, {tag}]"


def _section(title: str, lines: list[str] | tuple[str, ...]) -> list[Section]:
    return [Section(title, tuple(lines))] if lines else []


def _who(patient: str | None) -> str:
    return f" · patient {patient}" if patient else ""


def crs_headline(report: CrsReport) -> str:
    product = PRODUCT_NAMES[report.product]
    if report.grade is None:
        grade = "CRS grade: cannot be given (temperature not stated)"
    else:
        grade = f"CRS grade {'>= ' if report.at_least and report.grade else ''}{report.grade}"
        if report.grade == 0:
            grade += " (no CRS by ASTCT: no fever)" if not report.fever_masked else " (no hypotension or hypoxia)"
    return f"{grade} · {product}{_who(report.input.patient)}"


def crs_layout(report: CrsReport) -> Layout:
    alert = None
    if report.grade_if_fever_masked:
        alert = (f"If fever was masked (premedication, antipyretics, tocilizumab, steroids) this is "
                 f"GRADE {report.grade_if_fever_masked}. Add masked=yes if so.")
    why = [f"Driven by: {report.driver}."]
    if report.findings:
        why.append("Findings: " + "; ".join(
            f.text if f.domain == "fever" else f"{f.text} ({f.domain}, grade {f.level})" for f in report.findings) + ".")
    unstated = []
    if report.unstated:
        lead = "Not stated (not assumed present): " + ", ".join(report.unstated) + "."
        if report.at_least and report.grade:
            lead += f" Graded on what was given: at least grade {report.grade}."
        unstated.append(lead)
    sections = [
        *_section("Why", why + unstated + list(report.notes)),
        *_section("Conventions applied", [c.text + f" [{c.source}]" for c in report.conventions]),
        *_section("What to do now", [action_line(a) for a in report.management]),
        *_section("Next dose", [action_line(a) for a in report.next_dose]),
        *_section("Supportive care", [action_line(a) for a in report.supportive]),
        *_section("Tocilizumab dose", [f"{report.tocilizumab.text} [{report.tocilizumab.source}]"]
                  if report.tocilizumab else []),
    ]
    summary = crs_headline(report) + (f" — {alert}" if alert else "")
    return Layout(headline=crs_headline(report), grade=report.grade if report.grade is not None else None,
                  alert=alert, sections=tuple(sections), context=context_line(report.rulebook), summary=summary)


def icans_layout(report: IcansReport) -> Layout:
    grade = f"ICANS grade {'>= ' if report.at_least and report.grade else ''}{report.grade}"
    if report.grade == 0:
        grade += " (no ICANS)"
    headline = f"{grade} · {PRODUCT_NAMES[report.product]}{_who(report.input.patient)}"
    why = [f"{f.text} (grade {f.level} level)" for f in report.findings]
    if report.unstated:
        why.append("Not stated (not assumed present): " + ", ".join(report.unstated) + ".")
    sections = [
        *_section("Why", why + list(report.notes)),
        *_section("What it means for dosing", [action_line(a) for a in report.management]),
    ]
    return Layout(headline=headline, grade=report.grade, alert=None, sections=tuple(sections),
                  context=context_line(report.rulebook), summary=headline)


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
    sections = [*_section("Next doses", lines), *_section("Notes", report.notes)]
    return Layout(headline=headline, grade=None, alert=None, sections=tuple(sections),
                  context=context_line(report.rulebook), summary=headline)


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
    sections = [*_section("Why", [report.reason]), *_section("Premedication", items),
                *_section("Notes", report.notes)]
    return Layout(headline=headline, grade=None, alert=None, sections=tuple(sections),
                  context=context_line(report.rulebook), summary=headline)


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
