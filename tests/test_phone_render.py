"""The reply as a phone shows it (390 px wide; bot/testing/phone.py explains the approximation): the
headline, the top actions and the first button must be on the first screen (650 px), for the grade
reply of `temp=39 sbp=85 pressor=1 patient=bed12`, the masked-fever case and a grade 4 case. The same
measure applied to the replies main built before issue 9 puts their buttons far below the fold, which
shows the measure can fail."""

from __future__ import annotations

import pytest

from bot.testing.phone import FOLD, STYLE, Run, measure_message, measure_modal, message_html, modal_html, wrap_lines
from bot.testing.phone_cases import GRADE_CASES, before, details, grade_message
from messages.form import build_form


def _do_now(page_boxes: tuple, message: dict) -> float:
    index = next(i for i, b in enumerate(message["blocks"]) if b["type"] == "section"
                 and b["text"]["text"].startswith("*Do now*"))
    return next(b.bottom for b in page_boxes if b.index == index)


@pytest.mark.parametrize("name", list(GRADE_CASES))
def test_headline_top_actions_and_first_button_are_on_the_first_screen(name: str) -> None:
    message = grade_message(GRADE_CASES[name])
    page = measure_message(message)
    header = page.first("header")
    actions = _do_now(page.boxes, message)
    button = page.first_button_bottom()
    print(f"\n{name}: header bottom {header.bottom:.0f} px, top actions bottom {actions:.0f} px, "
          f"first button bottom {button:.0f} px, full height {page.height:.0f} px")
    assert header.bottom <= FOLD
    assert actions <= FOLD, f"top actions end at {actions:.0f} px"
    assert button <= FOLD, f"first button ends at {button:.0f} px (full height {page.height:.0f} px)"
    assert page.height < 800, f"the whole reply is {page.height:.0f} px"


@pytest.mark.parametrize("name", list(GRADE_CASES))
def test_the_reply_before_issue_9_put_its_buttons_below_the_fold(name: str) -> None:
    page = measure_message(before()[name])
    print(f"\nbefore {name}: first button bottom {page.first_button_bottom():.0f} px, "
          f"full height {page.height:.0f} px")
    assert page.first_button_bottom() > 2 * FOLD
    assert page.height > 1500


def test_the_details_modal_holds_what_the_first_screen_leaves_out() -> None:
    view = details(GRADE_CASES["grade3"])
    page = measure_modal(view)
    print(f"\ndetails modal: full height {page.height:.0f} px")
    assert page.height > measure_message(grade_message(GRADE_CASES["grade3"])).height


def test_the_form_is_shorter_than_before() -> None:
    after, old = measure_modal(build_form("C1")), measure_modal(before()["form"])
    print(f"\nform: {old.height:.0f} px before, {after.height:.0f} px now")
    assert after.height < 0.65 * old.height


def test_wrapping_counts_lines_like_a_browser() -> None:
    short = [Run("Hold the infusion.")]
    assert wrap_lines(short, STYLE.content, STYLE.body_size) == 1
    long = [Run("word " * 60)]
    lines = wrap_lines(long, STYLE.content, STYLE.body_size)
    assert 8 <= lines <= 14  # ~300 characters of 15 px text in 314 px
    assert wrap_lines([Run("a\nb\nc")], STYLE.content, STYLE.body_size) == 3
    assert wrap_lines([Run("x" * 400)], STYLE.content, STYLE.body_size) >= 10  # no spaces: broken anywhere


def test_html_rendering_carries_every_block() -> None:
    message = grade_message(GRADE_CASES["grade4"])
    page = message_html(message)
    assert page.count('class="blk ') == len(message["blocks"])
    assert "Details" in page and "Reassessed" in page
    assert modal_html(build_form("C1")).count('class="blk input"') == 9
