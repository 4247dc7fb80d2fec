"""The replies issue 9 found misleading, each pinned by what the team reads: the headline, the first
screen and the plain text. Written against the old behaviour first (each failed there)."""

from __future__ import annotations

import pytest

from bot.rulebooks import default_rulebooks
from grading.errors import InputError
from grading.models import SiteSettings
from grading.pipeline import assess_crs, assess_icans
from messages.blocks import SEVERITY_EMOJI, assessment_buttons, button_value, render_message
from messages.layout import layout_for
from messages.text import render_text

RULEBOOKS = default_rulebooks()
SITE = SiteSettings()


def headline(text: str) -> str:
    return layout_for(assess_crs(text, SITE, RULEBOOKS)).headline


def posted(text: str) -> dict:
    report = assess_crs(text, SITE, RULEBOOKS)
    return render_message(layout_for(report), assessment_buttons(button_value(t=text, a=1, e=None)))


# --- Safe headlines ---------------------------------------------------------------------------------


@pytest.mark.parametrize("text, grade", [
    ("temp=37 sbp=85 pressor=1", 3),
    ("temp=37 sbp=85 pressor=1 o2=ra", 3),
    ("temp=36.5 pressor=2 o2=ra", 4),
    ("temp=37 sbp=120 pressor=0 device=hfnc", 3),
    ("temp=37 sbp=80 pressor=0 o2=ra", 2),
])
def test_afebrile_with_hypotension_or_hypoxia_leads_with_the_masked_grade_never_no_crs(text: str, grade: int) -> None:
    message = posted(text)
    header = message["blocks"][0]["text"]["text"]
    assert f"grade {grade} if fever is masked" in header
    assert "no fever recorded" in header
    assert "no crs" not in header.lower()
    assert header.startswith(SEVERITY_EMOJI[grade])  # the severity shown is the masked grade's, not grade 0's
    assert "no crs" not in message["text"].splitlines()[0].lower()


def test_temperature_not_stated_with_a_vasopressor_leads_with_the_grade_it_would_be() -> None:
    assert headline("pressor=1 o2=ra") == "CRS grade 3 if fever is present or masked · temperature not stated"


@pytest.mark.parametrize("text, expected", [
    ("temp=39 sbp=85 pressor=1", "CRS at least grade 3"),  # oxygen not stated
    ("temp=37 sbp=85 pressor=1", "CRS at least grade 3 if fever is masked"),
    ("masked=yes", "No CRS finding in what was stated"),
    ("temp=37", "No CRS in what was stated"),
])
def test_unstated_inputs_say_at_least_or_in_what_was_stated_in_the_headline(text: str, expected: str) -> None:
    assert headline(text).startswith(expected)


def test_all_stated_and_afebrile_is_an_exact_grade_0() -> None:
    assert headline("temp=37 sbp=120 pressor=0 o2=ra") == "CRS grade 0 · no fever, hypotension or hypoxia"


@pytest.mark.parametrize("text, expected", [
    ("loc=alert", "No ICANS in what was stated"),
    ("ice=10", "No ICANS in what was stated"),
    ("ice=8", "ICANS at least grade 1"),
    ("ice=10 loc=alert seizure=none motor=none edema=none", "ICANS grade 0 · no ICANS"),
])
def test_icans_headline_says_at_least_when_domains_are_unstated(text: str, expected: str) -> None:
    assert layout_for(assess_icans(text, SITE, RULEBOOKS)).headline == expected


# --- Oxygen as the intervention ---------------------------------------------------------------------


def test_a_flow_without_a_device_is_at_least_and_names_the_device_as_not_stated() -> None:
    report = assess_crs("temp=39 sbp=120 pressor=0 o2=4", SITE, RULEBOOKS)
    assert (report.grade, report.at_least) == (2, True)
    assert "oxygen device" in report.unstated
    assert any("Venturi" in n and "grade 3" in n for n in report.notes)
    assert headline("temp=39 sbp=120 pressor=0 o2=4") == "CRS at least grade 2"
    assert "Not stated: oxygen device" in render_text(layout_for(report))
    # The same flow by a Venturi mask or facemask is grade 3, and exact.
    for device in ("venturi", "facemask"):
        exact = assess_crs(f"temp=39 sbp=120 pressor=0 o2=4 device={device}", SITE, RULEBOOKS)
        assert (exact.grade, exact.at_least) == (3, False)


@pytest.mark.parametrize("text, key", [
    ("temp=39 o2=0 device=hfnc", "o2"),
    ("temp=39 o2=0 device=cpap", "o2"),
    ("temp=39 o2=0 o2comfort=yes", "o2comfort"),
    ("temp=39 device=ra o2comfort=yes", "o2comfort"),
    ("temp=39 o2comfort=yes", "o2comfort"),
])
def test_contradictory_oxygen_input_is_refused_with_what_how_and_an_example(text: str, key: str) -> None:
    with pytest.raises(InputError) as caught:
        assess_crs(text, SITE, RULEBOOKS)
    error = caught.value
    assert error.key == key
    assert error.accepted and error.example
    message = error.user_message()
    assert "Accepted:" in message and "Example:" in message


def test_comfort_only_oxygen_does_not_count() -> None:
    report = assess_crs("temp=39 sbp=120 pressor=0 o2=2 device=nc o2comfort=yes", SITE, RULEBOOKS)
    assert (report.grade, report.at_least) == (1, False)
    assert not [f for f in report.findings if f.domain == "hypoxia"]
    assert any("comfort only" in n and "does not count" in n for n in report.notes)
    counted = assess_crs("temp=39 sbp=120 pressor=0 o2=2 device=nc o2comfort=no", SITE, RULEBOOKS)
    assert counted.grade == 2


def test_comfort_oxygen_by_a_grade_3_device_says_what_it_would_be() -> None:
    report = assess_crs("temp=39 sbp=120 pressor=0 device=nrb comfort=yes", SITE, RULEBOOKS)
    assert report.grade == 1
    assert any("would be grade 3" in n for n in report.notes)


# --- Recurrent and not-in-rulebook replies -----------------------------------------------------------


@pytest.mark.parametrize("text", [
    "temp=39 sbp=85 pressor=1 o2=ra recurrent=yes",  # recurrent grade 3
    "temp=39 sbp=85 pressor=0 o2=ra recurrent=yes",  # recurrent grade 2
    "temp=39 sbp=85 pressor=1 o2=ra product=velo",  # VELO: no next-dose rows in the rulebook
])
def test_no_next_dose_step_presumes_a_rechallenge_when_the_rulebook_does_not_know(text: str) -> None:
    report = assess_crs(text, SITE, RULEBOOKS)
    full = render_text(layout_for(report))
    assert "Premedicate before the next dose" not in full
    assert "restart with the dose-delay table" not in full
    assert "72 hours" not in full
    assert "admitted to hospital" not in full
    assert [a.status for a in report.next_dose] == ["not_available"]
    first = layout_for(report).first
    assert first[-1].startswith("Next dose: Not in this rulebook")


def test_a_first_grade_3_still_gets_its_next_dose_steps() -> None:
    full = render_text(layout_for(assess_crs("temp=39 sbp=85 pressor=1 o2=ra", SITE, RULEBOOKS)))
    assert "Premedicate before the next dose" in full and "admitted to hospital" in full


# --- Displayed values never contradict the verdict ------------------------------------------------


@pytest.mark.parametrize("temp, shown", [("100.39f", "37.99 C"), ("37.96", "37.96 C"), ("100.399f", "37.99 C")])
def test_a_temperature_just_below_fever_is_never_shown_as_38(temp: str, shown: str) -> None:
    report = assess_crs(f"temp={temp} sbp=120 pressor=0 o2=ra", SITE, RULEBOOKS)
    assert report.grade == 0
    full = render_text(layout_for(report))
    assert "38.0 C" not in full
    assert shown in full


def test_a_fever_at_the_threshold_is_shown_as_38() -> None:
    full = render_text(layout_for(assess_crs("temp=100.4f sbp=120 pressor=0 o2=ra", SITE, RULEBOOKS)))
    assert "fever 38.0 C" in full


def test_a_flow_just_below_the_boundary_is_never_shown_as_6() -> None:
    report = assess_crs("temp=39 sbp=120 pressor=0 o2=5.9999999 device=nc", SITE, RULEBOOKS)
    assert report.grade == 2
    assert "5.9999999 L/min" in report.driver and " 6 L/min" not in report.driver
