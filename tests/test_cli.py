"""The real `crsbot` console script: the JSON contract of issue 2, readable text by default, and
exit 2 with a message on stderr (never a traceback) for bad input."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

CRSBOT = shutil.which("crsbot", path=os.path.dirname(sys.executable))


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CRSBOT_", "SLACK_", "DATABASE_URL"))}
    env.update(extra)
    return env


def run(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    assert CRSBOT, "the crsbot console script is not installed next to this interpreter"
    return subprocess.run([CRSBOT, *args], capture_output=True, text=True, timeout=60, env=clean_env(**env))


def run_json(*args: str, **env: str) -> dict:
    done = run(*args, "--json", **env)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    return json.loads(done.stdout)


# --- grade -------------------------------------------------------------------------------------

def test_grade_json_contract() -> None:
    out = run_json("grade", "temp=39 sbp=85 pressor=1 weight=72")
    assert out["grade"] == 3
    assert out["at_least"] is True
    assert out["unstated"] == ["oxygen"]
    assert out["grade_if_fever_masked"] is None
    assert {"key", "text", "source"} <= set(out["conventions"][0])
    assert "o2rule" in [c["key"] for c in out["conventions"]]
    assert out["rulebook"]["id"] == "crsbot-default-lunsumio-iv"
    assert out["rulebook"]["version"] == "2026.12.1"
    assert out["management"], "grade 3 must come with actions"
    for action in out["management"] + out["next_dose"] + out["supportive"]:
        assert action["source"] in {"USPI-IV", "NCCN-ENGAGE", "NCCN-CART", "ASH-BsAb"}
        assert action["text"]
    assert out["tocilizumab"]["mg"] == 576


@pytest.mark.parametrize(
    "args, grade, masked_grade",
    [
        pytest.param(["temp=37", "pressor=1", "o2=ra"], 0, 3, id="afebrile-on-pressor"),
        pytest.param(["temp=37", "pressor=1", "o2=ra", "masked=yes"], 3, None, id="masked"),
        pytest.param(["pressor=1", "o2=ra"], None, 3, id="temp-not-stated-null"),
        pytest.param(["temp=39", "o2=6", "device=nc"], 3, None, id="label-6L"),
        pytest.param(["temp=39", "o2=6", "device=nc", "o2rule=astct"], 2, None, id="astct-6L"),
        pytest.param(["temp=39", "device=bipap"], 4, None, id="bipap-4"),
    ],
)
def test_grade_json_values(args: list[str], grade: int | None, masked_grade: int | None) -> None:
    out = run_json("grade", *args)
    assert out["grade"] == grade
    assert out["grade_if_fever_masked"] == masked_grade


@pytest.mark.parametrize(
    "args",
    [
        pytest.param(["temp=39 sbp=85 pressor=1"], id="one-quoted-argument"),
        pytest.param(["temp=39", "sbp=85", "pressor=1"], id="separate-arguments"),
        pytest.param(["temp", "=", "39", "sbp:85", "PRESSOR=1"], id="spaced-and-mixed"),
    ],
)
def test_quoted_and_separate_arguments_agree(args: list[str]) -> None:
    out = run_json("grade", *args)
    assert (out["grade"], out["input"]["temp_c"], out["input"]["sbp"], out["input"]["pressors"]) == (3, 39.0, 85, 1)


def test_grade_text_output_is_the_readable_reply() -> None:
    done = run("grade", "temp=37 pressor=1 o2=ra")
    assert done.returncode == 0
    lines = done.stdout.splitlines()
    assert lines[0] == "CRS grade 3 if fever is masked · no fever recorded"
    assert lines[2].startswith("No fever recorded (37.0 C)") and "masked=yes" in lines[2]
    assert "Conventions applied:" in done.stdout
    assert "LUNSUMIO label convention" in done.stdout
    assert "crsbot-default-lunsumio-iv v2026.12.1" in done.stdout
    assert lines[-1].startswith("Rulebook v2026.12.1")


def test_site_settings_come_from_the_environment() -> None:
    out = run_json("grade", "temp=39 o2=6 device=nc", CRSBOT_O2RULE="astct")
    assert out["grade"] == 2
    assert any(c["key"] == "o2rule" and c["source"] == "ASTCT" for c in out["conventions"])


# --- icans, delay, premed ----------------------------------------------------------------------

@pytest.mark.parametrize(
    "text, grade",
    [
        pytest.param("ice=10", 0, id="ice-10"),
        pytest.param("ice=0", 3, id="ice-0-awake"),
        pytest.param("ice=0 loc=unarousable", 4, id="ice-0-unarousable"),
        pytest.param("seizure=rapid", 3, id="seizure-rapid"),
        pytest.param("edema=diffuse", 4, id="edema-diffuse"),
    ],
)
def test_icans_json(text: str, grade: int) -> None:
    out = run_json("icans", text)
    assert out["grade"] == grade
    assert out["rulebook"]["id"] == "crsbot-default-lunsumio-iv"
    assert all(a["source"] for a in out["management"])


def test_delay_json_next_doses() -> None:
    out = run_json("delay", "last=c1d8", "since=3w")
    assert out["available"] is True
    assert out["next_doses"] == [{"mg": 2.0, "label": "C1D8"}, {"mg": 60.0, "label": "C1D15"}]
    assert out["rulebook"]["version"] == "2026.12.1"


@pytest.mark.parametrize(
    "text, needle",
    [
        pytest.param("last=c2d1 since=3w", "60 mg (cycle 2 day 1) row", id="C2D1-not-available"),
        pytest.param("last=c4d1 since=3w", "30 mg (cycle 3 onward) row", id="C3+-not-available"),
        pytest.param("last=c1d8 since=3w product=velo", "LUNSUMIO VELO USPI section 2", id="velo"),
    ],
)
def test_delay_json_not_available(text: str, needle: str) -> None:
    out = run_json("delay", text)
    assert out["available"] is False
    assert out["next_doses"] == []
    assert "Not in this rulebook" in out["reason"]
    assert needle in out["reason"]


@pytest.mark.parametrize(
    "text, required, n_items",
    [
        pytest.param("cycle=1", True, 3, id="cycle-1"),
        pytest.param("cycle=3 priorcrs=yes", True, 3, id="cycle-3-prior-crs"),
        pytest.param("cycle=3 priorcrs=no", False, 0, id="cycle-3-no-crs"),
        pytest.param("cycle=3", None, 3, id="cycle-3-unknown"),
        pytest.param("cycle=1 product=velo", None, 0, id="velo"),
    ],
)
def test_premed_json(text: str, required: bool | None, n_items: int) -> None:
    out = run_json("premed", text)
    assert out["required"] is required
    assert len(out["items"]) == n_items
    for item in out["items"]:
        assert {"name", "dose", "timing"} <= set(item)


# --- Bad input: exit 2, message on stderr, no traceback ----------------------------------------

@pytest.mark.parametrize(
    "args, needle",
    [
        pytest.param(["grade", "tmp=39"], "Did you mean `temp`?", id="unknown-key"),
        pytest.param(["grade", "temp=50"], "`temp`", id="impossible-temp"),
        pytest.param(["grade", "sbp=400"], "`sbp`", id="impossible-sbp"),
        pytest.param(["grade", "o2=100"], "`o2`", id="impossible-o2"),
        pytest.param(["grade", "weight=0", "temp=39"], "`weight`", id="impossible-weight"),
        pytest.param(["grade", "temp=39", "temp=38"], "given twice", id="duplicate"),
        pytest.param(["grade", "temp", "39"], "not a `key=value` pair", id="bare-token"),
        pytest.param(["grade"], "nothing to grade", id="no-text"),
        pytest.param(["grade", "--json", "pressor=9"], "`pressor`", id="json-flag-bad-input"),
        pytest.param(["icans", "ice=11"], "`ice`", id="icans-bad"),
        pytest.param(["delay", "last=c1d2", "since=1w"], "`last`", id="delay-bad"),
        pytest.param(["delay", "since=1w"], "`last` is required", id="delay-missing"),
        pytest.param(["premed", "cycle=0"], "`cycle`", id="premed-bad"),
        pytest.param(["icans", "ice=" + "9" * 5000], "`ice`", id="huge-value"),
    ],
)
def test_bad_input_exits_2_with_message_on_stderr(args: list[str], needle: str) -> None:
    done = run(*args)
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert done.stdout == ""
    assert needle in done.stderr
    assert done.stderr.startswith("crsbot: ")
    assert "Traceback" not in done.stderr


def test_bad_site_rulebook_is_a_configuration_error(tmp_path: Path) -> None:
    bad = tmp_path / "site.toml"
    bad.write_text("[rulebook\n", encoding="utf-8")
    done = run("grade", "temp=39", CRSBOT_RULEBOOK=str(bad))
    assert done.returncode == 3
    assert str(bad) in done.stderr and "not valid TOML" in done.stderr
    assert "Traceback" not in done.stderr


# --- the patient-label guard ---------------------------------------------------------------------

@pytest.mark.parametrize("label", ["John-Smith", "1980-01-01", "01/01/1980", "jd1980", "A1234567"])
@pytest.mark.parametrize("json_flag", [[], ["--json"]], ids=["text", "json"])
def test_an_identifier_label_exits_2_without_repeating_it(label: str, json_flag: list[str]) -> None:
    """The CLI stores nothing, but prints the label in its reply: the same guard as Slack refuses it."""
    done = run("grade", "temp=39", f"patient={label}", *json_flag)
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert done.stdout == ""
    assert done.stderr.startswith("crsbot: `patient`: this label looks like a name or a record number")
    assert "bed or study label" in done.stderr
    assert label.lower() not in done.stderr.lower()
    assert "Traceback" not in done.stderr


def test_a_bed_label_is_graded() -> None:
    done = run("grade", "temp=39", "patient=bed12")
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    assert done.stdout.startswith("bed12 · CRS at least grade 1")


def test_the_site_allow_pattern_reaches_the_cli() -> None:
    """The guard is the site's (settings from the environment), not a default copy."""
    assert run("grade", "temp=39", "patient=012003").returncode == 2  # 6 digits: refused by default
    done = run_json("grade", "temp=39", "patient=012003", CRSBOT_PATIENT_ALLOW_PATTERN=r"\d{6}")
    assert done["input"]["patient"] == "012003"
