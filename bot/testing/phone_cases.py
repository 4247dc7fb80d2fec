"""The replies the phone render test and the README measure: the grade reply of
`temp=39 sbp=85 pressor=1 patient=bed12`, the masked-fever case, a grade 4 case, their Details modal and
the form, each as the bot builds it (the footer is the kind the service adds for a tracked patient)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bot.rulebooks import default_rulebooks
from grading.models import SiteSettings
from grading.pipeline import assess_crs
from messages.blocks import assessment_buttons, button_value, details_view, render_message
from messages.form import build_form
from messages.layout import layout_for

GRADE_CASES = {
    "grade3": "temp=39 sbp=85 pressor=1 patient=bed12",
    "masked": "temp=37 sbp=85 pressor=1 patient=bed12",
    "grade4": "temp=39 pressor=2 device=bipap patient=bed3",
}
README_SHOTS = {"reply-grade3", "reply-masked", "form"}  # the pictures docs/ keeps
SAMPLE_FOOTER = "Next reassessment reminder Tue 01 Dec 04:00 UTC (team setting)"
BEFORE = Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "before-issue-9.json"


def grade_message(text: str) -> dict[str, Any]:
    report = assess_crs(text, SiteSettings(), default_rulebooks())
    return render_message(layout_for(report), assessment_buttons(button_value(t=text, a=1, e=1)),
                          footer=SAMPLE_FOOTER)


def details(text: str) -> dict[str, Any]:
    return details_view(layout_for(assess_crs(text, SiteSettings(), default_rulebooks())))


def before() -> dict[str, Any]:
    """The same replies and form as main built them before issue 9 (recorded once, for the comparison)."""
    return dict(json.loads(BEFORE.read_text(encoding="utf-8")))


def cases() -> list[tuple[str, dict[str, Any], bool]]:
    """(name, payload, is_modal) for every picture and height the README reports."""
    out: list[tuple[str, dict[str, Any], bool]] = []
    for name, text in GRADE_CASES.items():
        out.append((f"reply-{name}", grade_message(text), False))
    out.append(("details-grade3", details(GRADE_CASES["grade3"]), True))
    out.append(("form", build_form("C1"), True))
    old = before()
    for name in GRADE_CASES:
        out.append((f"before-reply-{name}", old[name], False))
    out.append(("before-form", old["form"], True))
    return out
