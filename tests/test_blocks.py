"""Block Kit rendering stays within Slack's limits however long the content, and the form speaks
the same grammar as the command."""

from __future__ import annotations

import json
from typing import Any

import pytest

from bot.rulebooks import default_rulebooks
from grading.models import SiteSettings
from grading.parse import parse_crs
from grading.pipeline import assess_crs, assess_delay, assess_icans, assess_premed
from messages.blocks import GRADE_COLOURS, UNKNOWN_COLOUR, assessment_buttons, button_value, render_message
from messages.form import build_form, submission_text
from messages.ids import ActionId, CallbackId
from messages.layout import JUDGMENT, Layout, Section, layout_for

RULEBOOKS = default_rulebooks()
SITE = SiteSettings()


def all_blocks(message: dict[str, Any]) -> list[dict[str, Any]]:
    return list(message["blocks"]) + [b for a in message.get("attachments", []) for b in a["blocks"]]


def assert_within_limits(message: dict[str, Any]) -> None:
    assert len(message["blocks"]) <= 50
    for attachment in message.get("attachments", []):
        assert len(attachment["blocks"]) <= 50
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
    ("temp=36.8 pressor=1", 0), ("sbp=80", None), ("temp=39 o2=6 product=velo weight=120", 3),
])
def test_every_grade_renders_within_limits_with_its_colour_and_footer(text: str, grade: int | None) -> None:
    report = assess_crs(text, SITE, RULEBOOKS)
    assert report.grade == grade
    message = render_message(layout_for(report), assessment_buttons(button_value(t=text, a=1, e=None)))
    assert_within_limits(message)
    assert message["attachments"][0]["color"] == (GRADE_COLOURS[grade] if grade is not None else UNKNOWN_COLOUR)
    context = [b for b in message["attachments"][0]["blocks"] if b["type"] == "context"][-1]
    assert JUDGMENT in context["elements"][0]["text"]
    assert report.rulebook.version in context["elements"][0]["text"]
    assert message["text"].startswith("CRS grade")


def test_masked_fever_warning_is_at_the_top_of_the_message() -> None:
    message = render_message(layout_for(assess_crs("temp=37 pressor=1", SITE, RULEBOOKS)))
    header, alert = message["blocks"][0], message["blocks"][1]
    assert header["text"]["text"].startswith("CRS grade 0")
    assert "GRADE 3" in alert["text"]["text"]


def test_a_very_long_reply_is_split_and_shortened_not_rejected() -> None:
    long_line = "x" * 2500
    layout = Layout(headline="H" * 400, grade=2, alert="A" * 4000,
                    sections=tuple(Section(f"S{i}", (long_line, long_line, long_line)) for i in range(40)),
                    context="C" * 5000, summary="s")
    message = render_message(layout, assessment_buttons(button_value(t="t=" + "9" * 5000, a=1, e=2)))
    assert_within_limits(message)
    body = message["attachments"][0]["blocks"]
    assert body[-1]["type"] == "context" and body[-2]["type"] == "actions"  # buttons and footer survive
    assert any("shortened" in b["text"]["text"] for b in body if b["type"] == "section")


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
    assert_within_limits(render_message(layout_for(report)))


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
    view = build_form("C1", "temp=39 bp=85/50 pressors=1 vaso=yes o2=4 device=nc patient=bed4 toci=yes")
    assert view["callback_id"] == CallbackId.CRS_FORM.value
    assert len(view["blocks"]) <= 100 and len(view["title"]["text"]) <= 24
    assert json.loads(view["private_metadata"]) == {"channel": "C1"}
    prefilled = {b["block_id"]: b["element"].get("initial_value") or b["element"].get("initial_option", {}).get("value")
                 for b in view["blocks"] if b["type"] == "input"}
    assert prefilled["temp"] == "39" and prefilled["sbp"] == "85/50" and prefilled["pressor"] == "1"
    assert prefilled["vasopressin"] == "yes" and prefilled["device"] == "nc" and prefilled["masked"] == "yes"
    assert prefilled["patient"] == "bed4"


def test_form_submission_reads_exactly_like_the_command() -> None:
    values = {"temp": "38.9", "sbp": "84", "pressor": "1", "vasopressin": "yes", "o2": "6", "device": "nc",
              "masked": "no", "patient": "bed9", "product": "iv", "weight": "70"}
    text = submission_text(_state_from(build_form("C1"), values))
    assert parse_crs(text) == parse_crs(" ".join(f"{k}={v}" for k, v in values.items()))


def test_form_free_text_with_spaces_is_kept_whole_for_the_parser() -> None:
    text = submission_text(_state_from(build_form("C1"), {"temp": "38. 9", "o2": "4 l"}))
    assert "temp=38.9" in text and "o2=4l" in text
