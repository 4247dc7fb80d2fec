"""ASTCT 2019 CRS grading (reference.md section 2), driven through the real /crs text.

Every table row is one rule or pitfall from reference.md; the ids say which.
"""

from __future__ import annotations

import pytest

from bot.rulebooks import default_rulebooks
from grading.crs import grade_crs
from grading.errors import InputError
from grading.models import CrsInput, Device, SiteSettings
from grading.pipeline import assess_crs
from messages.layout import layout_for
from messages.text import render_text

BOOKS = default_rulebooks()
SITE = SiteSettings()


def crs(text: str, **site: object):
    return assess_crs(text, SiteSettings(**site), BOOKS)  # type: ignore[arg-type]


def levels(report) -> dict[str, int]:
    return {f.domain: f.level for f in report.findings}


# A complete "nothing else" background, so the grade under test is exact, not "at least".
CALM = "sbp=120 pressor=0 o2=ra"


# --- Most severe finding wins ("and/or") -------------------------------------------------------

@pytest.mark.parametrize(
    "text, grade",
    [
        pytest.param(f"temp=39 {CALM}", 1, id="fever-alone-1"),
        pytest.param("temp=39 sbp=85 pressor=0 o2=ra", 2, id="fever+sbp85-no-pressor-2"),
        pytest.param("temp=39 fluids=yes pressor=0 o2=ra", 2, id="fever+fluids-2"),
        pytest.param("temp=39 sbp=120 pressor=0 o2=2 device=nc", 2, id="fever+lowflow-nc-2"),
        pytest.param("temp=39 pressor=1 o2=2 device=nc", 3, id="fever+1-pressor+lowflow-nc-3"),
        pytest.param("o2=2 device=nc pressor=1 temp=39", 3, id="same-in-other-order-3"),
        pytest.param("temp=39 sbp=85 pressor=0 device=hfnc", 3, id="fever+fluid-hypotension+hfnc-3"),
        pytest.param("temp=39 pressor=1 device=cpap", 4, id="fever+1-pressor+cpap-4"),
        pytest.param("temp=39 pressor=2 o2=2 device=nc", 4, id="fever+2-pressors+lowflow-4"),
        pytest.param("temp=39 sbp=85 pressor=0 device=vent", 4, id="fever+fluid-hypotension+vent-4"),
        pytest.param("temp=39 pressor=0 sbp=120 device=nrb", 3, id="fever+nrb-only-3"),
    ],
)
def test_most_severe_finding_wins(text: str, grade: int) -> None:
    report = crs(text)
    assert report.grade == grade
    assert report.at_least is False
    organ = [f.level for f in report.findings if f.domain != "fever"]
    assert max(organ, default=1) == grade


def test_most_severe_driver_names_the_worst_finding() -> None:
    report = crs("temp=39 pressor=1 o2=2 device=nc")
    assert levels(report) == {"fever": 1, "hypotension": 3, "hypoxia": 2}
    assert "vasopressor" in report.driver
    assert "nasal cannula" not in report.driver


# --- Vasopressin never counts toward "multiple" -----------------------------------------------

@pytest.mark.parametrize(
    "text, grade",
    [
        pytest.param("temp=39 pressor=1 o2=ra", 3, id="1-pressor-3"),
        pytest.param("temp=39 pressor=1 vasopressin=yes o2=ra", 3, id="1-pressor+vasopressin-3-not-4"),
        pytest.param("temp=39 pressor=1 vaso=yes o2=ra", 3, id="alias-vaso-3"),
        pytest.param("temp=39 pressor=2 o2=ra", 4, id="2-pressors-4"),
        pytest.param("temp=39 pressor=2 vasopressin=yes o2=ra", 4, id="2-pressors+vasopressin-4"),
        pytest.param("temp=39 pressor=3 o2=ra", 4, id="3-pressors-4"),
        pytest.param("temp=39 pressor=0 vasopressin=yes o2=ra", 3, id="vasopressin-alone-3"),
        pytest.param("temp=39 pressor=1 vasopressin=no o2=ra", 3, id="1-pressor+vasopressin-no-3"),
    ],
)
def test_vasopressin_is_not_a_second_vasopressor(text: str, grade: int) -> None:
    report = crs(text)
    assert report.grade == grade
    assert levels(report)["hypotension"] == grade
    assert report.at_least is False


def test_vasopressin_convention_is_stated_when_vasopressin_given() -> None:
    report = crs("temp=39 pressor=1 vasopressin=yes o2=ra")
    conv = {c.key: c for c in report.conventions}
    assert "vasopressin" in conv
    assert "never counts" in conv["vasopressin"].text
    assert conv["vasopressin"].source == "ASTCT"


def test_vasopressin_alone_with_other_pressors_unstated_is_at_least_3() -> None:
    # The count of other vasopressors was not given: it could be 2 (grade 4), so "at least".
    report = crs("temp=39 vaso=yes o2=ra")
    assert report.grade == 3
    assert report.at_least is True
    assert "vasopressors" in report.unstated


# --- Fever masked by premedication / treatment ------------------------------------------------

@pytest.mark.parametrize(
    "text, grade_if_masked",
    [
        pytest.param("temp=37 pressor=1 o2=ra", 3, id="afebrile-on-pressor"),
        pytest.param("temp=36.8 pressor=2 o2=ra", 4, id="afebrile-2-pressors"),
        pytest.param("temp=37 sbp=85 pressor=0 o2=ra", 2, id="afebrile-fluid-hypotension"),
        pytest.param("temp=37 sbp=120 pressor=0 device=bipap", 4, id="afebrile-bipap"),
        pytest.param("temp=98.6 sbp=120 pressor=0 device=hfnc", 3, id="afebrile-fahrenheit-hfnc"),
    ],
)
def test_afebrile_without_masked_is_grade_0_with_masked_grade_prominent(text: str, grade_if_masked: int) -> None:
    report = crs(text)
    assert report.grade == 0
    assert report.grade_if_fever_masked == grade_if_masked
    assert report.fever_masked is False
    # Prominent: the first note, and the headline itself leads with the masked grade (never "no CRS").
    assert f"grade {grade_if_masked}" in report.notes[0]
    assert "masked=yes" in report.notes[0]
    lines = render_text(layout_for(report)).splitlines()
    assert lines[0].startswith(f"CRS grade {grade_if_masked} if fever is masked · no fever recorded")
    assert "no crs" not in lines[0].lower()
    # Never silently "nothing to do": the actions are those of the masked grade.
    assert report.management, "an afebrile patient on support must still get the CRS actions"
    assert any(f"grade {grade_if_masked}" in n for n in report.notes)


@pytest.mark.parametrize(
    "masking",
    [
        pytest.param("masked=yes", id="masked"),
        pytest.param("toci=yes", id="tocilizumab"),
        pytest.param("tocilizumab=yes", id="tocilizumab-long"),
        pytest.param("steroids=yes", id="steroids"),
        pytest.param("dex=yes", id="dexamethasone"),
        pytest.param("antipyretic=yes", id="antipyretic"),
        pytest.param("acetaminophen=yes", id="acetaminophen"),
        pytest.param("premed=yes", id="premedicated"),
        pytest.param("MASKED=Y", id="masked-uppercase-y"),
    ],
)
def test_masked_fever_grades_on_hypotension_and_hypoxia(masking: str) -> None:
    # The unsafe answer reference.md warns about: afebrile, premedicated, on a vasopressor -> "no CRS".
    report = crs(f"temp=37 pressor=1 o2=ra {masking}")
    assert report.grade == 3
    assert report.grade_if_fever_masked is None
    assert report.fever_masked is True
    assert report.conventions[0].key == "masked_fever"
    assert "not required" in report.conventions[0].text


@pytest.mark.parametrize(
    "text, grade",
    [
        pytest.param("masked=yes pressor=2 o2=ra", 4, id="masked-temp-unstated-2-pressors-4"),
        pytest.param("masked=yes temp=39 sbp=120 pressor=0 o2=ra", 1, id="masked-but-febrile-1"),
        pytest.param("masked=yes temp=37 sbp=120 pressor=0 o2=2 device=nc", 2, id="masked-lowflow-2"),
        pytest.param("masked=yes temp=37 sbp=120 pressor=0 device=cpap", 4, id="masked-cpap-4"),
    ],
)
def test_masked_grade_table(text: str, grade: int) -> None:
    assert crs(text).grade == grade


def test_masked_without_any_finding_says_crs_not_excluded() -> None:
    report = crs("masked=yes temp=37 sbp=120 pressor=0 o2=ra")
    assert report.grade == 0
    assert any("not excluded" in n for n in report.notes)


def test_masked_no_is_the_same_as_not_masked() -> None:
    report = crs("temp=37 pressor=1 o2=ra masked=no")
    assert report.grade == 0
    assert report.grade_if_fever_masked == 3


def test_masked_reasons_are_recorded() -> None:
    report = crs("temp=37 pressor=1 o2=ra toci=yes steroids=yes")
    assert report.input.masked_by == ("tocilizumab", "corticosteroids")
    assert "tocilizumab" in report.conventions[0].text


# --- Temperature not stated -------------------------------------------------------------------

def test_temperature_not_stated_grade_is_null_and_says_what_is_missing() -> None:
    report = crs("pressor=1 o2=ra")
    assert report.grade is None
    assert report.unstated[0] == "temperature"
    assert report.grade_if_fever_masked == 3
    assert report.notes[0].startswith("Temperature not stated")
    assert report.at_least is False  # "at least" only qualifies a grade that exists
    assert "temperature not stated" in render_text(layout_for(report)).splitlines()[0]


def test_temperature_not_stated_and_nothing_else_has_no_masked_grade() -> None:
    report = crs("sbp=120 pressor=0 o2=ra")
    assert report.grade is None
    assert report.grade_if_fever_masked is None
    assert report.management == ()


# --- The 6 L/min boundary, both ways --------------------------------------------------------

@pytest.mark.parametrize(
    "o2, site_rule, grade, convention_source",
    [
        pytest.param("o2=6 device=nc", "label", 3, "USPI-IV", id="label-6-is-high-flow-3"),
        pytest.param("o2=5.9 device=nc", "label", 2, "USPI-IV", id="label-5.9-is-low-flow-2"),
        pytest.param("o2=6.1 device=nc", "label", 3, "USPI-IV", id="label-6.1-3"),
        pytest.param("o2=6", "label", 3, "USPI-IV", id="label-6-no-device-3"),
        pytest.param("o2=6 device=nc", "astct", 2, "ASTCT", id="astct-6-is-low-flow-2"),
        pytest.param("o2=6.1 device=nc", "astct", 3, "ASTCT", id="astct-6.1-is-high-flow-3"),
        pytest.param("o2=5.9 device=nc", "astct", 2, "ASTCT", id="astct-5.9-2"),
        pytest.param("o2=6 device=nc o2rule=astct", "label", 2, "ASTCT", id="command-astct-overrides-site-label"),
        pytest.param("o2=6 device=nc o2rule=label", "astct", 3, "USPI-IV", id="command-label-overrides-site-astct"),
        pytest.param("o2=6l device=nc", "label", 3, "USPI-IV", id="flow-with-l-suffix"),
        pytest.param("o2=6 device=nc product=velo", "label", 3, "USPI-VELO", id="velo-label-6-is-high-flow-3"),
        pytest.param("o2=5.9 device=nc product=velo", "label", 2, "USPI-VELO", id="velo-label-5.9-2"),
        pytest.param("o2=6 device=nc product=velo", "astct", 2, "ASTCT", id="velo-astct-6-2"),
    ],
)
def test_six_litre_boundary(o2: str, site_rule: str, grade: int, convention_source: str) -> None:
    report = crs(f"temp=39 sbp=120 pressor=0 {o2}", o2rule=site_rule)
    assert report.grade == grade
    conv = {c.key: c for c in report.conventions}
    assert conv["o2rule"].source == convention_source
    expected = {"USPI-IV": "LUNSUMIO label convention", "USPI-VELO": "LUNSUMIO VELO label convention",
                "ASTCT": "ASTCT convention"}[convention_source]
    assert expected in conv["o2rule"].text


def test_site_default_is_the_label_convention() -> None:
    assert SITE.o2rule == "label"
    assert crs("temp=39 sbp=120 pressor=0 o2=6 device=nc").grade == 3


def test_exactly_six_litres_explains_both_conventions() -> None:
    note = next(n for n in crs("temp=39 sbp=120 pressor=0 o2=6 device=nc").notes if "6 L/min" in n)
    assert "grade 3 under the label convention" in note
    assert "grade 2 under the astct convention" in note


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("temp=39", id="fever-only"),
        pytest.param("temp=37 pressor=1", id="afebrile"),
        pytest.param("pressor=1", id="temp-unstated"),
        pytest.param("masked=yes device=cpap", id="masked"),
        pytest.param("temp=39 device=hfnc", id="device"),
        pytest.param("temp=39 o2=4 o2rule=astct", id="astct"),
        pytest.param("temp=39 product=velo", id="velo"),
    ],
)
def test_oxygen_convention_is_stated_in_every_reply(text: str) -> None:
    report = crs(text)
    keys = [c.key for c in report.conventions]
    assert "o2rule" in keys
    assert "Conventions applied" in render_text(layout_for(report))


# --- Devices -----------------------------------------------------------------------------------

@pytest.mark.parametrize(
    "device, grade",
    [
        pytest.param("ra", 1, id="room-air-no-hypoxia"),
        pytest.param("nc o2=2", 2, id="nasal-cannula-2L-2"),
        pytest.param("blowby", 2, id="blow-by-2"),
        pytest.param("blowby o2=10", 2, id="blow-by-any-flow-2"),
        pytest.param("hfnc", 3, id="hfnc-3"),
        pytest.param("hfnc o2=2", 3, id="hfnc-at-2L-still-high-flow-3"),
        pytest.param("hfnc o2=60", 3, id="hfnc-60L-3"),
        pytest.param("facemask", 3, id="facemask-3"),
        pytest.param("mask", 3, id="mask-alias-3"),
        pytest.param("facemask o2=4", 3, id="facemask-at-4L-3"),
        pytest.param("nrb", 3, id="non-rebreather-3"),
        pytest.param("venturi", 3, id="venturi-3"),
        pytest.param("cpap", 4, id="cpap-4-not-3"),
        pytest.param("bipap", 4, id="bipap-4-not-3"),
        pytest.param("vent", 4, id="ventilator-4"),
        pytest.param("intubated", 4, id="intubated-alias-4"),
    ],
)
def test_devices(device: str, grade: int) -> None:
    report = crs(f"temp=39 sbp=120 pressor=0 device={device}")
    assert report.grade == grade
    assert report.at_least is False
    assert levels(report).get("hypoxia", 1) == grade


@pytest.mark.parametrize(
    "o2, grade",
    [
        pytest.param("o2=cpap", 4, id="device-named-in-o2-cpap"),
        pytest.param("o2=hfnc", 3, id="device-named-in-o2-hfnc"),
        pytest.param("o2=nc device=nc", 2, id="same-device-twice-ok"),
        pytest.param("o2=0", 1, id="zero-flow-no-hypoxia"),
    ],
)
def test_oxygen_forms(o2: str, grade: int) -> None:
    assert crs(f"temp=39 sbp=120 pressor=0 {o2}").grade == grade


def test_nasal_cannula_without_flow_is_low_flow_at_least() -> None:
    report = crs("temp=39 sbp=120 pressor=0 device=nc")
    assert report.grade == 2
    assert report.at_least is True
    assert "oxygen flow" in report.unstated
    assert any("flow not stated" in n for n in report.notes)


def test_pure_grader_hfnc_is_high_flow_whatever_the_flow() -> None:
    for flow in (0.5, 2, 5.9, 6, 40):
        for rule in ("label", "astct"):
            graded = grade_crs(CrsInput(temp_c=39, sbp=120, pressors=0, device=Device.HIGH_FLOW_NC, o2_flow=flow),
                               SiteSettings(o2rule=rule))
            assert graded.grade == 3, (flow, rule)


# --- Unstated findings are listed, not assumed absent -----------------------------------------

@pytest.mark.parametrize(
    "text, grade, unstated",
    [
        pytest.param("temp=39", 1, ("blood pressure", "vasopressors", "oxygen"), id="only-fever"),
        pytest.param("temp=39 pressor=1", 3, ("oxygen",), id="oxygen-unstated"),
        pytest.param("temp=39 o2=ra", 1, ("blood pressure", "vasopressors"), id="hypotension-unstated"),
        pytest.param("temp=39 sbp=85 o2=ra", 2, ("vasopressors",), id="low-sbp-pressors-unstated"),
        pytest.param("temp=39 sbp=120 o2=ra", 1, ("vasopressors",), id="normal-sbp-may-be-on-pressors"),
        pytest.param("temp=39 vaso=no sbp=120 o2=ra", 1, ("vasopressors",), id="vasopressin-no-is-not-pressor-0"),
        pytest.param("temp=39 pressor=0 o2=ra", 1, ("blood pressure",), id="pressor-0-bp-unstated"),
        pytest.param("temp=39 device=nc sbp=120 pressor=0", 2, ("oxygen flow",), id="nc-flow-unstated"),
    ],
)
def test_unstated_findings_give_at_least(text: str, grade: int, unstated: tuple[str, ...]) -> None:
    report = crs(text)
    assert report.grade == grade
    assert report.unstated == unstated
    assert report.at_least is True
    rendered = render_text(layout_for(report))
    assert f"CRS at least grade {grade}" in rendered.splitlines()[0]
    assert f"at least grade {grade}" in rendered
    assert "Not stated (not assumed present)" in rendered


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("temp=39 sbp=120 pressor=0 o2=ra", id="all-stated-calm"),
        pytest.param("temp=39 pressor=1 vasopressin=no device=nrb", id="pressor-count-and-device"),
        pytest.param("temp=39 fluids=yes pressor=0 o2=3 device=nc", id="fluids-and-flow"),
    ],
)
def test_fully_stated_is_exact(text: str) -> None:
    report = crs(text)
    assert report.unstated == ()
    assert report.at_least is False


# --- Temperature: Celsius / Fahrenheit inference and the 38.0 C fever line --------------------

@pytest.mark.parametrize(
    "temp, celsius, fever, note",
    [
        pytest.param("39", 39.0, True, "read as Celsius", id="bare-39-celsius"),
        pytest.param("38", 38.0, True, "read as Celsius", id="bare-38.0-is-fever"),
        pytest.param("37.9", 37.9, False, "read as Celsius", id="bare-37.9-no-fever"),
        pytest.param("37.996c", 37.996, False, None, id="37.996c-not-rounded-into-fever"),
        pytest.param("38.5c", 38.5, True, None, id="explicit-celsius-no-note"),
        pytest.param("30", 30.0, False, "read as Celsius", id="celsius-low-bound"),
        pytest.param("45", 45.0, True, "read as Celsius", id="celsius-high-bound"),
        pytest.param("101.3f", 38.5, True, "F = 38.5 C", id="explicit-fahrenheit"),
        pytest.param("101.3", 38.5, True, "read as Fahrenheit", id="bare-101.3-fahrenheit"),
        pytest.param("100.4", 38.0, True, "read as Fahrenheit", id="100.4F-is-fever"),
        pytest.param("100.3", 37.94, False, "read as Fahrenheit", id="100.3F-no-fever"),
        pytest.param("100.399f", 37.9994, False, "F =", id="100.399F-not-rounded-into-fever"),
        pytest.param("86", 30.0, False, "read as Fahrenheit", id="fahrenheit-low-bound"),
        pytest.param("113", 45.0, True, "read as Fahrenheit", id="fahrenheit-high-bound"),
        pytest.param("39°c", 39.0, True, None, id="degree-sign"),
    ],
)
def test_temperature_units(temp: str, celsius: float, fever: bool, note: str | None) -> None:
    report = crs(f"temp={temp} {CALM}")
    assert report.input.temp_c == pytest.approx(celsius, abs=0.005)
    assert report.grade == (1 if fever else 0)
    assert any(f.domain == "fever" for f in report.findings) is fever
    temp_notes = [n for n in report.input.notes if n.startswith("Temperature")]
    if note is None:
        assert temp_notes == []
    else:
        assert len(temp_notes) == 1 and note in temp_notes[0]


@pytest.mark.parametrize(
    "temp",
    [
        pytest.param("50", id="50-neither-unit"),
        pytest.param("45.5", id="just-above-celsius"),
        pytest.param("85.9", id="just-below-fahrenheit"),
        pytest.param("114", id="above-fahrenheit"),
        pytest.param("29", id="below-celsius"),
        pytest.param("46c", id="46c-impossible"),
        pytest.param("120f", id="120f-impossible"),
        pytest.param("39k", id="unknown-unit"),
        pytest.param("hot", id="not-a-number"),
    ],
)
def test_impossible_temperatures_are_refused_naming_the_key(temp: str) -> None:
    with pytest.raises(InputError) as err:
        crs(f"temp={temp}")
    assert err.value.key == "temp"
    assert "`temp`" in str(err.value)
    assert "Celsius" in str(err.value)


# --- SpO2, SBP threshold, organ toxicity -----------------------------------------------------

def test_spo2_alone_does_not_grade_hypoxia() -> None:
    report = crs("temp=39 sbp=120 pressor=0 spo2=82")
    assert report.grade == 1
    assert "hypoxia" not in levels(report)
    assert "oxygen" in report.unstated
    assert any("does not grade hypoxia" in n for n in report.notes)


def test_spo2_with_room_air_is_still_grade_1() -> None:
    assert crs("temp=39 sbp=120 pressor=0 spo2=85 o2=ra").grade == 1


@pytest.mark.parametrize(
    "sbp, threshold, grade",
    [
        pytest.param(89, 90, 2, id="89-below-90"),
        pytest.param(90, 90, 1, id="90-not-below-90"),
        pytest.param(95, 100, 2, id="site-threshold-100"),
        pytest.param(85, 80, 1, id="site-threshold-80"),
    ],
)
def test_sbp_threshold_is_a_site_setting(sbp: int, threshold: int, grade: int) -> None:
    report = crs(f"temp=39 sbp={sbp} pressor=0 o2=ra", sbp_threshold=threshold)
    assert report.grade == grade
    conv = {c.key: c for c in report.conventions}
    assert f"< {threshold} mmHg" in conv["sbp_threshold"].text


def test_fluids_no_with_normal_sbp_is_no_hypotension() -> None:
    assert crs("temp=39 sbp=110 fluids=no pressor=0 o2=ra").grade == 1


@pytest.mark.parametrize("organ", ["creatinine=3", "alt=400", "ast=300"])
def test_organ_toxicity_is_not_part_of_astct_crs(organ: str) -> None:
    # Lee 2014 / MDCalc scales use organ toxicity; ASTCT does not, so the grammar refuses it.
    with pytest.raises(InputError) as err:
        crs(f"temp=39 {organ}")
    assert err.value.key == organ.split("=")[0]


# --- Pure grader (no parsing) --------------------------------------------------------------------

@pytest.mark.parametrize(
    "inp, grade, masked_grade",
    [
        pytest.param(CrsInput(temp_c=38.0, pressors=0, sbp=120, o2_flow=0), 1, None, id="38.0-exact-fever"),
        pytest.param(CrsInput(temp_c=37.99, pressors=1, o2_flow=0), 0, 3, id="37.99-afebrile-pressor"),
        pytest.param(CrsInput(temp_c=39, pressors=6, vasopressin=True, device=Device.VENTILATOR), 4, None,
                     id="everything-4"),
        pytest.param(CrsInput(masked=True, pressors=0, vasopressin=True, o2_flow=0), 3, None, id="masked-vaso-3"),
        pytest.param(CrsInput(pressors=2, o2_flow=0), None, 4, id="temp-unstated"),
    ],
)
def test_pure_grader(inp: CrsInput, grade: int | None, masked_grade: int | None) -> None:
    graded = grade_crs(inp, SITE)
    assert graded.grade == grade
    assert graded.grade_if_fever_masked == masked_grade


# --- Tocilizumab dose by weight ---------------------------------------------------------------------

@pytest.mark.parametrize(
    "weight, mg, capped",
    [
        pytest.param("70", 560, False, id="70kg-560mg"),
        pytest.param("100", 800, False, id="100kg-exactly-800"),
        pytest.param("120", 800, True, id="120kg-capped-800"),
        pytest.param("154lb", 559.2, False, id="pounds"),
    ],
)
def test_tocilizumab_dose_by_weight(weight: str, mg: float, capped: bool) -> None:
    report = crs(f"temp=39 pressor=1 o2=ra weight={weight}")
    assert report.tocilizumab is not None
    assert report.tocilizumab.mg == pytest.approx(mg, abs=0.5)
    assert report.tocilizumab.capped is capped
    assert "800 mg" in report.tocilizumab.text
    assert report.tocilizumab.source in BOOKS["iv"].sources


def test_no_tocilizumab_dose_without_weight_or_without_crs() -> None:
    assert crs("temp=39 pressor=1 o2=ra").tocilizumab is None
    assert crs(f"temp=37 {CALM} weight=70").tocilizumab is None


# --- Product, rulebook reference ---------------------------------------------------------------

@pytest.mark.parametrize(
    "text, site_product, product",
    [
        pytest.param("temp=39", "iv", "iv", id="site-default-iv"),
        pytest.param("temp=39 product=velo", "iv", "velo", id="command-velo"),
        pytest.param("temp=39 product=sc", "iv", "velo", id="command-sc-alias"),
        pytest.param("temp=39", "velo", "velo", id="site-default-velo"),
        pytest.param("temp=39 product=iv", "velo", "iv", id="command-iv-overrides-site-velo"),
    ],
)
def test_product_selects_the_rulebook(text: str, site_product: str, product: str) -> None:
    report = crs(text, product=site_product)
    assert report.product == product
    assert report.rulebook.product == product
    assert report.rulebook.id == BOOKS[product].rulebook.id
    assert report.rulebook.version == BOOKS[product].rulebook.version
