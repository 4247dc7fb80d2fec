"""From grade to actions (reference.md sections 4 and 5): every dose-delay row, premedication by
cycle, the CRS and ICANS management rows (first and recurrent), and VELO never answered with IV
numbers."""

from __future__ import annotations

import re

import pytest

from bot.rulebooks import default_rulebooks
from grading.models import SiteSettings
from grading.pipeline import assess_crs, assess_delay, assess_icans, assess_premed

BOOKS = default_rulebooks()
SITE = SiteSettings()

DELAY_TABLE = "Recommendations for Restarting Therapy with LUNSUMIO After Dose Delay"
RESUME = "resume the planned schedule"


def delay(text: str, **site: object):
    return assess_delay(text, SiteSettings(**site), BOOKS)  # type: ignore[arg-type]


def premed(text: str, **site: object):
    return assess_premed(text, SiteSettings(**site), BOOKS)  # type: ignore[arg-type]


def crs(text: str, **kw: object):
    return assess_crs(text, SITE, BOOKS, **kw)  # type: ignore[arg-type]


def ids(actions) -> list[str]:
    return [a.id for a in actions]


# --- Restarting after a dose delay: every row, at its boundaries ----------------------------------

C1D1_1_2W = [(2, "C1D8")]
C1D1_OVER_2W = [(1, "C1D1"), (2, "C1D8")]
C1D8_1_2W = [(60, "C1D15")]
C1D8_2_6W = [(2, "C1D8"), (60, "C1D15")]
C1D8_6W_PLUS = [(1, "C1D1"), (2, "C1D8"), (60, "C1D15")]
C1D15_1_6W = [(60, "C2D1")]
C1D15_6W_PLUS = [(1, "C2D1"), (2, "C2D8"), (60, "C2D15"), (30, "C3D1")]


@pytest.mark.parametrize(
    "last, since, doses",
    [
        # 1 mg (C1D1): 1-2 weeks -> 2 mg; > 2 weeks -> repeat 1 mg then 2 mg
        pytest.param("c1d1", "7d", C1D1_1_2W, id="C1D1-7d-lower-edge"),
        pytest.param("c1d1", "10d", C1D1_1_2W, id="C1D1-10d"),
        pytest.param("c1d1", "14d", C1D1_1_2W, id="C1D1-14d-upper-edge-still-1-2w"),
        pytest.param("c1d1", "2w", C1D1_1_2W, id="C1D1-2w"),
        pytest.param("c1d1", "14.5d", C1D1_OVER_2W, id="C1D1-14.5d-over-2w"),
        pytest.param("c1d1", "15d", C1D1_OVER_2W, id="C1D1-15d"),
        pytest.param("c1d1", "10w", C1D1_OVER_2W, id="C1D1-10w"),
        # 2 mg (C1D8): 1-2 weeks -> 60 mg; > 2 to < 6 weeks -> repeat 2 then 60; >= 6 weeks -> 1, 2, 60
        pytest.param("c1d8", "7d", C1D8_1_2W, id="C1D8-7d"),
        pytest.param("c1d8", "14d", C1D8_1_2W, id="C1D8-14d-upper-edge"),
        pytest.param("c1d8", "14.1d", C1D8_2_6W, id="C1D8-14.1d-over-2w"),
        pytest.param("c1d8", "4w", C1D8_2_6W, id="C1D8-4w"),
        pytest.param("c1d8", "41.9d", C1D8_2_6W, id="C1D8-41.9d-under-6w"),
        pytest.param("c1d8", "42d", C1D8_6W_PLUS, id="C1D8-42d-6w-edge"),
        pytest.param("c1d8", "6w", C1D8_6W_PLUS, id="C1D8-6w"),
        pytest.param("c1d8", "20w", C1D8_6W_PLUS, id="C1D8-20w"),
        # 60 mg (C1D15): 1 to < 6 weeks -> 60 mg C2D1; >= 6 weeks -> 1, 2, 60 in cycle 2 then 30 mg C3D1
        pytest.param("c1d15", "7d", C1D15_1_6W, id="C1D15-7d"),
        pytest.param("c1d15", "3w", C1D15_1_6W, id="C1D15-3w"),
        pytest.param("c1d15", "41.5d", C1D15_1_6W, id="C1D15-41.5d"),
        pytest.param("c1d15", "42d", C1D15_6W_PLUS, id="C1D15-42d-6w-edge"),
        pytest.param("c1d15", "8w", C1D15_6W_PLUS, id="C1D15-8w"),
    ],
)
def test_every_available_delay_row(last: str, since: str, doses: list[tuple[int, str]]) -> None:
    report = delay(f"last={last} since={since}")
    assert report.available is True
    assert report.reason is None
    assert [(d.mg, d.label) for d in report.next_doses] == doses
    assert report.then == RESUME
    assert (report.source, report.status) == ("USPI-IV", "label")
    assert any("premedicate as for cycles 1 and 2" in n for n in report.notes)


@pytest.mark.parametrize(
    "last, since, row",
    [
        pytest.param("c2d1", "1d", "60 mg (cycle 2 day 1) row", id="C2D1-1d"),
        pytest.param("c2d1", "10d", "60 mg (cycle 2 day 1) row", id="C2D1-10d"),
        pytest.param("c2d1", "7w", "60 mg (cycle 2 day 1) row", id="C2D1-7w"),
        pytest.param("c3d1", "2w", "30 mg (cycle 3 onward) row", id="C3D1-2w"),
        pytest.param("c8d1", "5w", "30 mg (cycle 3 onward) row", id="C8D1-5w"),
        pytest.param("c17d1", "10w", "30 mg (cycle 3 onward) row", id="C17D1-10w"),
    ],
)
def test_not_available_delay_rows_say_so_and_name_the_uspi_section(last: str, since: str, row: str) -> None:
    report = delay(f"last={last} since={since}")
    assert report.available is False
    assert report.next_doses == ()
    assert report.then is None
    assert report.status == "not_available"
    assert report.reason.startswith("Not in this rulebook")
    assert "USPI section 2" in report.reason
    assert DELAY_TABLE in report.reason
    assert row in report.reason
    assert not re.search(r"\b(1|2|30|60) mg\b(?! \()", report.reason.replace(row, "")), report.reason


@pytest.mark.parametrize(
    "last, since",
    [
        pytest.param("c1d1", "6d", id="C1D1-under-a-week"),
        pytest.param("c1d8", "0d", id="C1D8-same-day"),
        pytest.param("c1d15", "6.9d", id="C1D15-under-a-week"),
    ],
)
def test_under_a_week_is_not_a_dose_delay(last: str, since: str) -> None:
    report = delay(f"last={last} since={since}")
    assert report.available is False
    assert report.next_doses == ()
    assert "shorter than the table's first row (7 days)" in report.reason


def test_delay_rows_match_the_reference_table_exactly() -> None:
    rows = {r.id: [(d.mg, d.label) for d in r.next] for r in BOOKS["iv"].delay.rows}
    assert rows == {
        "c1d1-1-2w": C1D1_1_2W, "c1d1-over-2w": C1D1_OVER_2W,
        "c1d8-1-2w": C1D8_1_2W, "c1d8-2-6w": C1D8_2_6W, "c1d8-6w-plus": C1D8_6W_PLUS,
        "c1d15-1-6w": C1D15_1_6W, "c1d15-6w-plus": C1D15_6W_PLUS,
        "c2d1-any": [], "c3-plus-any": [],
    }


def test_delay_rows_cover_every_day_without_overlap() -> None:
    rows = BOOKS["iv"].delay.rows
    for last in ("C1D1", "C1D8", "C1D15", "C2D1", "C3+D1"):
        for tenth in range(0, 200 * 10):
            days = tenth / 10
            hits = [r.id for r in rows if r.last == last and r.covers(days)]
            assert len(hits) <= 1, (last, days, hits)
            if days >= 7:
                assert len(hits) == 1, (last, days)


# --- Premedication by cycle --------------------------------------------------------------------

PREMED_DOSES = ["dexamethasone 20 mg IV", "methylprednisolone 80 mg IV", "diphenhydramine 50-100 mg",
                "acetaminophen 500-1000 mg"]


@pytest.mark.parametrize(
    "text, required, has_items",
    [
        pytest.param("cycle=1", True, True, id="cycle-1-everyone"),
        pytest.param("cycle=2", True, True, id="cycle-2-everyone"),
        pytest.param("cycle=1 priorcrs=no", True, True, id="cycle-1-even-without-prior-crs"),
        pytest.param("cycle=3 priorcrs=yes", True, True, id="cycle-3-after-crs"),
        pytest.param("cycle=3 priorcrs=no", False, False, id="cycle-3-no-crs-not-required"),
        pytest.param("cycle=3", None, True, id="cycle-3-prior-crs-unknown"),
        pytest.param("cycle=9 priorcrs=yes", True, True, id="cycle-9-after-crs"),
        pytest.param("cycle=17 priorcrs=no", False, False, id="cycle-17-no-crs"),
    ],
)
def test_premedication_by_cycle(text: str, required: bool | None, has_items: bool) -> None:
    report = premed(text)
    assert report.available is True
    assert report.required is required
    assert bool(report.items) is has_items
    assert (report.source, report.status) == ("USPI-IV", "label")
    if has_items:
        joined = " | ".join(f"{i.dose} {i.timing}" for i in report.items)
        for dose in PREMED_DOSES:
            assert dose in joined
        assert "at least 1 hour before" in joined
        assert "at least 30 minutes before" in joined


def test_unknown_prior_crs_asks_for_it() -> None:
    report = premed("cycle=4")
    assert "priorcrs=yes" in report.reason and "priorcrs=no" in report.reason


def test_premedication_notes_say_it_can_mask_fever() -> None:
    assert any("hide fever" in n for n in premed("cycle=1").notes)


# --- CRS management rows (IV): first and recurrent -------------------------------------------------

GRADE_TEXT = {
    1: "temp=39 sbp=120 pressor=0 o2=ra",
    2: "temp=39 sbp=85 pressor=0 o2=ra",
    3: "temp=39 pressor=1 o2=ra",
    4: "temp=39 pressor=2 o2=ra",
}


@pytest.mark.parametrize(
    "grade, recurrent, management, next_dose, supportive",
    [
        pytest.param(1, False, ["label-row-grade-1", "infusion-interrupt-g1-2"],
                     ["next-dose-72h-g1-2", "next-dose-premed", "next-dose-delay-table"],
                     ["grade1-home", "grade1-return", "hlh-after-a-week"], id="grade-1"),
        pytest.param(2, False, ["label-row-grade-2", "infusion-interrupt-g1-2"],
                     ["next-dose-72h-g1-2", "next-dose-premed", "next-dose-delay-table"],
                     ["steroids-g2", "antifungal-with-steroids", "hlh-after-a-week"], id="grade-2"),
        # Recurrent rows: the label's row is not in the rulebook, so no step that presumes another dose.
        pytest.param(2, True, ["label-row-recurrent-grade-2", "infusion-interrupt-g1-2"],
                     ["next-dose-recurrent-g2"],
                     ["steroids-g2", "antifungal-with-steroids", "hlh-after-a-week"], id="recurrent-grade-2"),
        pytest.param(3, False, ["label-row-grade-3", "infusion-hold-g3"],
                     ["next-dose-admit-g3", "next-dose-premed", "next-dose-delay-table"],
                     ["steroids-g3", "antifungal-with-steroids", "hlh-after-a-week"], id="grade-3"),
        pytest.param(3, True, ["label-row-recurrent-grade-3", "infusion-hold-g3"],
                     ["next-dose-recurrent-g3"],
                     ["steroids-g3", "antifungal-with-steroids", "hlh-after-a-week"], id="recurrent-grade-3"),
        pytest.param(4, False, ["label-row-grade-4"], ["discontinue-g4"],
                     ["steroids-g4", "antifungal-with-steroids", "hlh-after-a-week"], id="grade-4"),
        pytest.param(4, True, ["label-row-grade-4"], ["discontinue-g4"],
                     ["steroids-g4", "antifungal-with-steroids", "hlh-after-a-week"], id="grade-4-recurrent"),
    ],
)
def test_crs_management_rows(grade: int, recurrent: bool, management: list[str], next_dose: list[str],
                             supportive: list[str]) -> None:
    report = crs(GRADE_TEXT[grade] + (" recurrent=yes" if recurrent else ""))
    assert report.grade == grade
    general = ["withhold-until-resolved", "manage-per-table", "other-causes", "refractory-hlh", "not-interchangeable"]
    assert ids(report.management) == general + management
    assert ids(report.next_dose) == next_dose
    assert ids(report.supportive) == supportive
    label_row = next(a for a in report.management if a.id.startswith("label-row"))
    assert label_row.status == "not_available"
    assert label_row.text.startswith("Not in this rulebook")
    assert "USPI section 2.4" in label_row.text


@pytest.mark.parametrize("grade", [2, 3])
def test_recurrent_row_is_named_as_not_in_the_rulebook(grade: int) -> None:
    report = crs(GRADE_TEXT[grade] + " recurrent=yes")
    assert report.recurrent is True
    row = next(a for a in report.management if a.id == f"label-row-recurrent-grade-{grade}")
    assert f"See USPI section 2.4, CRS management table, recurrent grade {grade} row" in row.text
    assert f"label-row-grade-{grade}" not in ids(report.management)
    assert any(f"Recurrent grade {grade}" in n for n in report.notes)


def test_recurrent_from_episode_history() -> None:
    report = crs(GRADE_TEXT[3], known_recurrent=True)
    assert report.recurrent is True
    assert "label-row-recurrent-grade-3" in ids(report.management)
    assert "next-dose-admit-g3" not in ids(report.next_dose)
    recurrent_next = next(a for a in report.next_dose if a.id == "next-dose-recurrent-g3")
    assert recurrent_next.status == "not_available"
    assert "recurrent grade 3 row" in recurrent_next.text


def test_grade_4_is_permanent_discontinuation_without_a_restart_plan() -> None:
    report = crs(GRADE_TEXT[4])
    assert "permanently" in report.next_dose[0].text
    assert "next-dose-72h-g1-2" not in ids(report.next_dose)
    assert "next-dose-delay-table" not in ids(report.next_dose)


def test_no_crs_gets_no_actions() -> None:
    report = crs("temp=37 sbp=120 pressor=0 o2=ra")
    assert report.grade == 0
    assert (report.management, report.next_dose, report.supportive) == ((), (), ())


@pytest.mark.parametrize("text", [*GRADE_TEXT.values(), "temp=37 pressor=1", "pressor=2"])
@pytest.mark.parametrize("recurrent", ["", " recurrent=yes"])
def test_not_available_actions_always_point_to_the_label(text: str, recurrent: bool) -> None:
    report = crs(text + recurrent)
    for action in (*report.management, *report.next_dose, *report.supportive):
        assert action.source.split(";")[0].strip() in BOOKS["iv"].sources
        if action.status == "not_available":
            assert action.text.startswith("Not in this rulebook: ")
            assert "See USPI section" in action.text


# --- ICANS management rows (IV) ---------------------------------------------------------------------

@pytest.mark.parametrize(
    "text, expected",
    [
        pytest.param("ice=8", ["icans-continue-g1"], id="grade-1-continue"),
        pytest.param("ice=5", ["icans-hold-g2", "icans-label-row-2"], id="grade-2-hold"),
        pytest.param("ice=1", ["icans-hold-g3", "icans-label-row-3"], id="grade-3-hold"),
        pytest.param("ice=1 recurrent=yes", ["icans-discontinue-recurrent-g3", "icans-label-row-3"],
                     id="recurrent-grade-3-discontinue"),
        pytest.param("seizure=prolonged", ["icans-discontinue-g4", "icans-label-row-4"], id="grade-4-discontinue"),
        pytest.param("ice=10 loc=alert seizure=none motor=none edema=none", [], id="no-icans-no-actions"),
    ],
)
def test_icans_management_rows(text: str, expected: list[str]) -> None:
    report = assess_icans(text, SITE, BOOKS)
    assert sorted(ids(report.management)) == sorted(expected)
    for action in report.management:
        assert action.source in BOOKS["iv"].sources
        if action.status == "not_available":
            assert "neurologic toxicity" in action.text and "USPI section 2" in action.text


def test_icans_hold_says_72_hours_at_grade_1_or_baseline() -> None:
    action = assess_icans("ice=5", SITE, BOOKS).management[0]
    assert "72 hours" in action.text and "grade 1 or at baseline" in action.text


# --- LUNSUMIO VELO: never answered with IV numbers ---------------------------------------------------

VELO_GAP = "LUNSUMIO VELO USPI section 2"
IV_SCHEDULE = re.compile(r"\b(C\dD\d+|1 mg|2 mg|30 mg|60 mg|20 mg|80 mg)\b", re.IGNORECASE)
ANY_MG = re.compile(r"\d\s*mg\b", re.IGNORECASE)


@pytest.mark.parametrize(
    "last, since",
    [(last, since) for last in ("c1d1", "c1d8", "c1d15", "c2d1", "c5d1") for since in ("3d", "10d", "3w", "8w")],
)
@pytest.mark.parametrize("how", ["product=velo", "product=sc", "site-default"])
def test_velo_delay_is_not_in_this_rulebook(last: str, since: str, how: str) -> None:
    text = f"last={last} since={since}" + ("" if how == "site-default" else f" {how}")
    report = delay(text, product="velo" if how == "site-default" else "iv")
    assert report.product == "velo"
    assert report.available is False
    assert report.next_doses == ()
    assert "not in this rulebook" in report.reason.lower()
    assert VELO_GAP in report.reason
    dumped = report.model_dump_json(exclude={"input"})
    assert not ANY_MG.search(dumped), dumped


@pytest.mark.parametrize("text", ["cycle=1", "cycle=2", "cycle=3 priorcrs=yes", "cycle=3 priorcrs=no", "cycle=8"])
def test_velo_premed_is_not_in_this_rulebook(text: str) -> None:
    report = premed(text + " product=velo")
    assert report.available is False
    assert report.required is None
    assert report.items == ()
    assert "not in this rulebook" in report.reason.lower()
    assert VELO_GAP in report.reason
    assert not ANY_MG.search(report.model_dump_json(exclude={"input"}))


@pytest.mark.parametrize("grade", [1, 2, 3, 4])
@pytest.mark.parametrize("recurrent", ["", " recurrent=yes"])
def test_velo_crs_management_has_no_iv_numbers(grade: int, recurrent: str) -> None:
    report = crs(GRADE_TEXT[grade] + " product=velo" + recurrent)
    assert report.rulebook.product == "velo"
    label_side = [*report.management, *report.next_dose]
    assert label_side
    for action in label_side:
        assert not ANY_MG.search(action.text), action.text
        assert "USPI-IV" not in action.source
        assert "NCCN-ENGAGE" not in action.source  # the ENGAGE rows quoted are for mosunetuzumab IV
    gaps = [a for a in label_side if a.status == "not_available"]
    assert {a.phase for a in gaps} >= {"general", "next_dose"}
    for gap in gaps:
        assert gap.text.lower().startswith("not in this rulebook")
        assert VELO_GAP in gap.text
    # Supportive care is product-agnostic consensus (NCCN-CART / ASH-BsAb), never the IV schedule.
    for action in report.supportive:
        assert action.source in {"NCCN-CART", "ASH-BsAb"}
        assert not re.search(r"\bC\dD\d+\b|step-up|dexamethasone 20 mg|methylprednisolone 80 mg", action.text)
    whole = report.model_dump_json(exclude={"input", "supportive", "tocilizumab"})
    assert not IV_SCHEDULE.search(whole), IV_SCHEDULE.search(whole)


def test_iv_says_the_products_are_not_interchangeable() -> None:
    # reference.md section 4 states it for the IV label; section 5 (VELO) does not, and the VELO
    # rulebook must not lean on the IV label, so only IV replies say it.
    report = crs(GRADE_TEXT[2])
    [action] = [a for a in report.management if "not interchangeable" in a.text]
    assert (action.source, action.status) == ("USPI-IV", "label")


@pytest.mark.parametrize("text", ["ice=8", "ice=5", "ice=1 recurrent=yes", "seizure=prolonged"])
def test_velo_icans_is_not_in_this_rulebook(text: str) -> None:
    report = assess_icans(text + " product=velo", SITE, BOOKS)
    assert report.management
    for action in report.management:
        assert action.status == "not_available"
        assert VELO_GAP in action.text
        assert not ANY_MG.search(action.text)
        assert action.source == "USPI-VELO"
