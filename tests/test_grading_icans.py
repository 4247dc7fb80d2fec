"""ASTCT 2019 ICANS grading for adults (reference.md section 3): the most severe domain wins."""

from __future__ import annotations

import pytest

from bot.rulebooks import default_rulebooks
from grading.errors import InputError
from grading.icans import grade_icans
from grading.models import IcansInput, SiteSettings
from grading.pipeline import assess_icans

BOOKS = default_rulebooks()
SITE = SiteSettings()
# Every other domain stated as normal, so the grade under test is exact.
NORMAL = {"ice": "ice=10", "loc": "loc=alert", "seizure": "seizure=none", "motor": "motor=none",
          "edema": "edema=none"}


def icans(text: str):
    return assess_icans(text, SITE, BOOKS)


def with_normal(**given: str) -> str:
    parts = dict(NORMAL)
    parts.update({k: f"{k}={v}" for k, v in given.items()})
    return " ".join(parts.values())


@pytest.mark.parametrize(
    "ice, grade",
    [
        pytest.param(10, 0, id="ice-10-no-icans"),
        pytest.param(9, 1, id="ice-9-1"),
        pytest.param(7, 1, id="ice-7-1"),
        pytest.param(6, 2, id="ice-6-2"),
        pytest.param(3, 2, id="ice-3-2"),
        pytest.param(2, 3, id="ice-2-3"),
        pytest.param(1, 3, id="ice-1-3"),
        pytest.param(0, 3, id="ice-0-awake-3"),
    ],
)
def test_ice_score_bands(ice: int, grade: int) -> None:
    report = icans(with_normal(ice=str(ice)))
    assert report.grade == grade
    assert report.at_least is False
    assert report.unstated == ()


@pytest.mark.parametrize(
    "given, grade",
    [
        pytest.param({"loc": "spontaneous"}, 1, id="awakens-spontaneously-1"),
        pytest.param({"loc": "voice"}, 2, id="awakens-to-voice-2"),
        pytest.param({"loc": "tactile"}, 3, id="awakens-to-touch-3"),
        pytest.param({"loc": "unarousable"}, 4, id="unarousable-4"),
        pytest.param({"loc": "coma"}, 4, id="coma-alias-4"),
        pytest.param({"seizure": "rapid"}, 3, id="seizure-resolving-rapidly-3-not-4"),
        pytest.param({"seizure": "nonconvulsive"}, 3, id="nonconvulsive-eeg-3"),
        pytest.param({"seizure": "prolonged"}, 4, id="seizure-prolonged-4"),
        pytest.param({"seizure": "repetitive"}, 4, id="seizure-repetitive-4"),
        pytest.param({"edema": "focal"}, 3, id="edema-focal-3-not-4"),
        pytest.param({"edema": "diffuse"}, 4, id="edema-diffuse-4"),
        pytest.param({"motor": "weakness"}, 4, id="motor-weakness-4"),
        pytest.param({"motor": "hemiparesis"}, 4, id="hemiparesis-4"),
        pytest.param({"ice": "0", "loc": "unarousable"}, 4, id="ice-0-unarousable-4"),
        pytest.param({"ice": "0", "loc": "tactile"}, 3, id="ice-0-tactile-3"),
        pytest.param({"ice": "0", "loc": "alert"}, 3, id="ice-0-awake-global-aphasia-3"),
    ],
)
def test_domains(given: dict[str, str], grade: int) -> None:
    report = icans(with_normal(**given))
    assert report.grade == grade
    assert max(f.level for f in report.findings) == grade


@pytest.mark.parametrize(
    "given, grade",
    [
        pytest.param({"ice": "8", "seizure": "rapid"}, 3, id="ice-1-level+seizure-3"),
        pytest.param({"ice": "8", "loc": "voice", "edema": "diffuse"}, 4, id="edema-diffuse-wins-4"),
        pytest.param({"ice": "5", "loc": "unarousable"}, 4, id="consciousness-wins-over-ice-4"),
        pytest.param({"ice": "2", "loc": "spontaneous"}, 3, id="ice-wins-over-consciousness-3"),
        pytest.param({"ice": "9", "motor": "weakness", "seizure": "rapid"}, 4, id="motor-wins-4"),
        pytest.param({"ice": "6", "edema": "focal", "loc": "voice"}, 3, id="focal-edema-wins-3"),
    ],
)
def test_most_severe_domain_wins(given: dict[str, str], grade: int) -> None:
    assert icans(with_normal(**given)).grade == grade


def test_ice_10_alone_is_no_icans_but_at_least() -> None:
    report = icans("ice=10")
    assert report.grade == 0
    assert report.findings == ()
    assert report.at_least is True
    assert report.unstated == ("level of consciousness", "seizure", "motor findings", "cerebral edema / raised ICP")
    assert report.management == ()


def test_ice_0_without_consciousness_asks_for_loc() -> None:
    report = icans("ice=0")
    assert report.grade == 3
    assert "loc=unarousable" in report.notes[0]
    assert "grade 4" in report.notes[0]


@pytest.mark.parametrize(
    "note",
    ["sedation", "Tremor and myoclonus do not count", "intracranial hemorrhage is not ICANS", "aged 12 or more"],
)
def test_icans_caveats_are_always_stated(note: str) -> None:
    assert any(note in n for n in icans(with_normal(ice="8")).notes)


@pytest.mark.parametrize(
    "inp, grade",
    [
        pytest.param(IcansInput(ice=10), 0, id="pure-ice-10"),
        pytest.param(IcansInput(ice=0, loc="unarousable"), 4, id="pure-ice-0-unarousable"),
        pytest.param(IcansInput(seizure="rapid", edema="focal"), 3, id="pure-two-grade-3-domains"),
        pytest.param(IcansInput(loc="alert", motor="none"), 0, id="pure-normal"),
    ],
)
def test_pure_grader(inp: IcansInput, grade: int) -> None:
    assert grade_icans(inp)[0] == grade


@pytest.mark.parametrize(
    "text, key",
    [
        pytest.param("ice=11", "ice", id="ice-above-10"),
        pytest.param("ice=-1", "ice", id="ice-negative"),
        pytest.param("ice=7.5", "ice", id="ice-not-whole"),
        pytest.param("ice=" + "9" * 5000, "ice", id="ice-huge-digit-string"),
        pytest.param("loc=sleepy", "loc", id="loc-unknown"),
        pytest.param("seizure=yes", "seizure", id="seizure-must-say-which"),
        pytest.param("edema=yes", "edema", id="edema-must-say-which"),
        pytest.param("motor=tremor", "motor", id="tremor-is-not-a-motor-finding"),
        pytest.param("ice=8 tremor=yes", "tremor", id="tremor-key-unknown"),
    ],
)
def test_bad_icans_input_names_the_key(text: str, key: str) -> None:
    with pytest.raises(InputError) as err:
        icans(text)
    assert err.value.key == key
    assert f"`{key}`" in str(err.value)
    assert "Accepted:" in str(err.value)


def test_icans_needs_a_finding() -> None:
    with pytest.raises(InputError) as err:
        icans("product=iv")
    assert "nothing to grade" in err.value.problem
