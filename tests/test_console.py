"""`crsbot console` is the local mode the README's main command runs: drive it as a user would,
through its standard input, and read what it prints."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from messages.timeline import SIZE_PX

CRSBOT = shutil.which("crsbot", path=os.path.dirname(sys.executable))


def run_console(lines: list[str], tmp_path: Path, *args: str) -> str:
    assert CRSBOT, "the crsbot console script is not installed in this environment"
    result = subprocess.run(
        [CRSBOT, "console", "--data-dir", str(tmp_path), *args],
        input="\n".join(lines) + "\nquit\n", capture_output=True, text=True, timeout=120,
        env={**os.environ, "CRSBOT_LOG_LEVEL": "WARNING"},
    )
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    return result.stdout


@pytest.fixture(scope="module")
def session(tmp_path_factory: pytest.TempPathFactory) -> str:
    return run_console([
        "/crs oncall <@U0ONCALL99|dr.oncall>",
        "/crs temp=39 sbp=85 pressor=1 patient=bed7",
        "press snooze",
        "advance 16m",
        "advance 15m",
        "press resolved",
        "/crs status",
        "/crs history patient=bed7",
    ], tmp_path_factory.mktemp("console"))


def test_a_grade_is_posted_in_channel_with_numbered_buttons(session: str) -> None:
    assert "── crsbot (#oncall)" in session
    assert "bed7 · CRS at least grade 3. First: Hold LUNSUMIO until the CRS has resolved" in session
    assert "[1] Reassessed  [2] Details  [3] Resolved  [4] Snooze 15 min  [5] New assessment" in session


def test_a_button_press_updates_the_message(session: str) -> None:
    assert "── message updated: :zzz: <@U0CLINIC01> snoozed the reminder for 15 min" in session


def test_the_snoozed_reminder_arrives_then_escalates_to_the_oncall_target(session: str) -> None:
    reminder = session.index(":alarm_clock: <@U0ONCALL99>: time to reassess patient *bed7*")
    escalation = session.index(":rotating_light: *ESCALATION* <@U0ONCALL99>")
    assert reminder < escalation


def test_resolving_from_a_reminder_button_closes_the_episode(session: str) -> None:
    resolved = session.index("CRS episode for *bed7* resolved by <@U0CLINIC01>")
    status = session.index("> /crs status")
    assert resolved < status
    assert "No open CRS episodes in this channel." in session[status:]


def test_history_saves_the_episode_picture_and_prints_its_path(session: str) -> None:
    history = session[session.index("> /crs history patient=bed7"):]
    match = re.search(r"picture saved: (\S+\.png)", history)
    assert match, history
    image = Image.open(match.group(1))
    assert image.format == "PNG" and image.size == SIZE_PX
    assert "Timeline of patient *bed7*'s CRS episode" in history
    assert "History for bed7" in history, "the text history is still shown"


def test_bad_input_and_form_errors_are_explained_not_traced(tmp_path: Path) -> None:
    out = run_console(["/crs temp=39 presor=1", "/crs form", "submit temp=500", "submit temp=38.2 o2=4"],
                      tmp_path)
    assert "Did you mean `pressor`?" in out
    assert "form error on `temp`" in out
    assert "CRS at least grade 2" in out  # blood pressure and the oxygen device unstated: a lower bound


def test_demo_script_plays_through(tmp_path: Path) -> None:
    out = run_console([], tmp_path, "--demo")
    for expected in ("CRS at least grade 2", "CRS grade 3", "details opened", "*Supportive care*", "*ESCALATION*",
                     "form opened", "Open CRS episodes",
                     "Restart after a dose delay", "Did you mean `pressor`?"):
        assert expected in out, expected


def test_resolving_books_the_72_hour_notice_only_for_grades_it_covers(tmp_path: Path) -> None:
    out = run_console(["/crs temp=39 o2=2 sbp=120 pressor=0 patient=bed2",
                       "/crs temp=39 pressor=2 patient=bed4",
                       "/crs resolve patient=bed2", "/crs resolve patient=bed4"], tmp_path)
    grade2 = out[out.index("> /crs resolve patient=bed2"):out.index("> /crs resolve patient=bed4")]
    grade4 = out[out.index("> /crs resolve patient=bed4"):]
    assert "A notice will be posted when 72 symptom-free hours have passed" in grade2
    assert "A notice will be posted" not in grade4
    assert "covers grade 1, 2 episodes [NCCN-ENGAGE]; this one reached grade 4, so no notice is booked" in grade4
