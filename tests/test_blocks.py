"""Block Kit rendering stays within Slack's limits however long the content, and the form speaks
the same grammar as the command."""

from __future__ import annotations

import json
from typing import Any

import pytest

from bot.rulebooks import default_rulebooks
from grading.models import IcansReport, SiteSettings
from grading.parse import parse_crs
from grading.pipeline import assess_crs, assess_delay, assess_icans, assess_premed
from messages.blocks import (
    SEVERITY_EMOJI,
    UNKNOWN_EMOJI,
    assessment_buttons,
    button_value,
    details_view,
    render_message,
)
from messages.form import build_form, submission_text
from messages.ids import ActionId, CallbackId
from messages.layout import JUDGMENT, Layout, Section, layout_for

RULEBOOKS = default_rulebooks()
SITE = SiteSettings()


def all_blocks(message: dict[str, Any]) -> list[dict[str, Any]]:
    return list(message["blocks"])


def assert_within_limits(message: dict[str, Any]) -> None:
    assert "attachments" not in message, "Block Kit only: no legacy attachments"
    assert len(message["blocks"]) <= 50
    assert len(message["text"]) <= 4000
    for block in all_blocks(message):
        if block["type"] == "header":
            assert len(block["text"]["text"]) <= 150
        if block["type"] == "section":
            assert len(block["text"]["text"]) <= 3000
        if block["type"] == "actions":
            for element in block["elements"]:
                assert len(element["value"]) <= 2000
                assert element["action_id"] in {a.value for a in ActionId}
        if block["type"] == "context":
            assert len(block["elements"]) <= 10


@pytest.mark.parametrize("text, grade", [
    ("temp=38.5", 1), ("temp=39 o2=2", 2), ("temp=39 sbp=85 pressor=1", 3), ("temp=39 pressor=2", 4),
    ("temp=36.8 pressor=1", 3), ("sbp=80", 2), ("temp=36.8 sbp=120 pressor=0 o2=ra", 0),
    ("sbp=120 pressor=0 o2=ra", None), ("temp=39 o2=6 product=velo weight=120", 3),
])
def test_every_grade_renders_within_limits_with_its_severity_in_words_and_emoji(text: str, grade: int | None) -> None:
    report = assess_crs(text, SITE, RULEBOOKS)
    message = render_message(layout_for(report), assessment_buttons(button_value(t=text, a=1, e=None)))
    assert_within_limits(message)
    header = message["blocks"][0]
    assert header["type"] == "header"
    emoji = SEVERITY_EMOJI[grade] if grade is not None else UNKNOWN_EMOJI
    assert header["text"]["text"].startswith(emoji + " ")
    # The words say it too (the emoji is never the only carrier of severity).
    words = header["text"]["text"]
    assert (f"grade {grade}" in words) if grade else ("grade" in words or "No CRS" in words)
    context = message["blocks"][-1]
    assert context["type"] == "context"
    assert JUDGMENT in context["elements"][0]["text"]
    assert report.rulebook.version in context["elements"][0]["text"]


def test_masked_fever_headline_leads_with_the_masked_grade() -> None:
    message = render_message(layout_for(assess_crs("temp=37 pressor=1", SITE, RULEBOOKS)))
    header = message["blocks"][0]["text"]["text"]
    assert "grade 3 if fever is masked" in header and "no fever recorded" in header
    assert "no CRS" not in header.lower().replace("no crs finding", "")


def test_buttons_come_before_the_footer_and_details_are_a_tap_away() -> None:
    report = assess_crs("temp=39 sbp=85 pressor=1 patient=bed12", SITE, RULEBOOKS)
    message = render_message(layout_for(report), assessment_buttons(button_value(t="x", a=1, e=None)))
    kinds = [b["type"] for b in message["blocks"]]
    assert kinds == ["header", "section", "section", "actions", "context"]
    text = json.dumps(message["blocks"])
    assert "Supportive care" not in text and "Conventions applied" not in text  # one tap away, not here
    assert ActionId.DETAILS.value in [e["action_id"] for e in message["blocks"][3]["elements"]]
    view = details_view(layout_for(report))
    assert view["callback_id"] == CallbackId.CRS_DETAILS.value and len(view["title"]["text"]) <= 24
    full = json.dumps(view)
    for title in ("Why", "What to do now", "Next dose", "Supportive care", "Conventions applied", "Rulebook"):
        assert f"*{title}*" in full
    assert "[NCCN-ENGAGE, consensus]" in full and report.rulebook.version in full


def test_without_buttons_the_details_follow_inline() -> None:
    message = render_message(layout_for(assess_crs("temp=39 sbp=85 pressor=1", SITE, RULEBOOKS)))
    assert "Supportive care" in json.dumps(message["blocks"])


def test_notification_text_alone_names_patient_grade_and_first_action() -> None:
    report = assess_crs("temp=39 sbp=85 pressor=1 patient=bed12", SITE, RULEBOOKS)
    message = render_message(layout_for(report), assessment_buttons(button_value(t="x", a=1, e=None)))
    first_line = message["text"].splitlines()[0]
    assert first_line.startswith("bed12 · CRS at least grade 3")
    assert "First: Hold LUNSUMIO until the CRS has resolved" in first_line


def test_a_very_long_reply_is_split_and_shortened_not_rejected() -> None:
    long_line = "x" * 2500
    layout = Layout(headline="H" * 400, grade=2, lead=("A" * 4000,), first=("F" * 4000,) * 3,
                    details=tuple(Section(f"S{i}", (long_line, long_line, long_line)) for i in range(40)),
                    context="C" * 5000, summary="s")
    message = render_message(layout, assessment_buttons(button_value(t="t=" + "9" * 5000, a=1, e=2)))
    assert_within_limits(message)
    body = message["blocks"]
    assert body[-1]["type"] == "context" and body[-2]["type"] == "actions"  # buttons and footer survive
    inline = render_message(layout)
    assert_within_limits(inline)
    assert any("Shortened" in b["text"]["text"] for b in inline["blocks"] if b["type"] == "section")
    view = details_view(layout)
    assert len(view["blocks"]) <= 100
    assert all(len(b["text"]["text"]) <= 3000 for b in view["blocks"] if b["type"] == "section")


def test_a_long_button_value_keeps_valid_json_with_the_ids() -> None:
    value = button_value(t="temp=39 " * 1000, a=7, e=3)
    assert len(value) <= 2000
    data = json.loads(value)
    assert (data["a"], data["e"]) == (7, 3)


@pytest.mark.parametrize("report", [
    assess_icans("ice=2 seizure=rapid", SITE, RULEBOOKS), assess_delay("last=c1d15 since=50d", SITE, RULEBOOKS),
    assess_premed("cycle=3", SITE, RULEBOOKS), assess_premed("cycle=1 product=velo", SITE, RULEBOOKS),
], ids=["icans", "delay", "premed", "premed-velo"])
def test_other_answers_render_within_limits(report: Any) -> None:
    message = render_message(layout_for(report))
    assert_within_limits(message)
    header = message["blocks"][0]["text"]["text"]
    assert header.startswith(":") == isinstance(report, IcansReport)  # severity emoji only on a grade


def _state_from(view: dict[str, Any], values: dict[str, str]) -> dict[str, Any]:
    state: dict[str, Any] = {}
    for block in view["blocks"]:
        if block["type"] == "input" and block["block_id"] in values:
            if block["element"]["type"] == "static_select":
                state[block["block_id"]] = {"value": {"selected_option": {"value": values[block["block_id"]]}}}
            else:
                state[block["block_id"]] = {"value": {"value": values[block["block_id"]]}}
    return state


def test_form_is_a_valid_modal_prefilled_from_earlier_text() -> None:
    view = build_form("C1", "temp=39 bp=85/50 pressors=1 vaso=yes o2=4 device=nc patient=bed4 toci=yes product=velo")
    assert view["callback_id"] == CallbackId.CRS_FORM.value
    assert len(view["blocks"]) <= 100 and len(view["title"]["text"]) <= 24
    assert json.loads(view["private_metadata"]) == {"channel": "C1"}
    prefilled = {b["block_id"]: b["element"].get("initial_value") or b["element"].get("initial_option", {}).get("value")
                 for b in view["blocks"] if b["type"] == "input"}
    assert prefilled["temp"] == "39" and prefilled["sbp"] == "85/50" and prefilled["pressor"] == "1"
    assert prefilled["device"] == "nc" and prefilled["masked"] == "yes" and prefilled["patient"] == "bed4"
    # Keys without a field of their own are folded into "Other findings", under their first name.
    assert prefilled["product"] == "velo"
    assert prefilled["other"] == "vasopressin=yes"


def test_form_puts_the_common_fields_first_and_folds_the_rest() -> None:
    ids = [b["block_id"] for b in build_form("C1")["blocks"] if b["type"] == "input"]
    assert ids[:8] == ["patient", "product", "temp", "masked", "sbp", "pressor", "o2", "device"]
    assert ids[-1] == "other" and len(ids) == 9


def test_form_submission_reads_exactly_like_the_command() -> None:
    values = {"temp": "38.9", "sbp": "84", "pressor": "1", "o2": "6", "device": "nc", "masked": "no",
              "patient": "bed9", "product": "iv", "other": "vasopressin=yes   weight=70"}
    text = submission_text(_state_from(build_form("C1"), values))
    typed = "temp=38.9 sbp=84 pressor=1 o2=6 device=nc masked=no patient=bed9 vasopressin=yes product=iv weight=70"
    assert parse_crs(text) == parse_crs(typed)


def test_a_bad_key_in_other_findings_is_reported_on_that_field() -> None:
    from bot.listeners.errors import field_for
    from grading.errors import InputError

    text = submission_text(_state_from(build_form("C1"), {"temp": "39", "other": "fluids=maybe"}))
    with pytest.raises(InputError) as caught:
        parse_crs(text)
    assert field_for(caught.value) == "other"


def test_form_free_text_with_spaces_is_kept_whole_for_the_parser() -> None:
    text = submission_text(_state_from(build_form("C1"), {"temp": "38. 9", "o2": "4 l"}))
    assert "temp=38.9" in text and "o2=4l" in text
