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


def run_console(lines: list[str], tmp_path: Path, *args: str, env: dict[str, str] | None = None) -> str:
    assert CRSBOT, "the crsbot console script is not installed in this environment"
    result = subprocess.run(
        [CRSBOT, "console", "--data-dir", str(tmp_path), *args],
        input="\n".join(lines) + "\nquit\n", capture_output=True, text=True, timeout=120,
        env={**os.environ, "CRSBOT_LOG_LEVEL": "WARNING", **(env or {})},
    )
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    return result.stdout


@pytest.fixture(scope="module")
def session(tmp_path_factory: pytest.TempPathFactory) -> str:
    return run_console([
        "/crs oncall <@U0ONCALL99|dr.oncall> <@U0SECOND1|dr.second> secondary=5m channel=5m repeat=5m",
        "/crs temp=39 sbp=85 pressor=1 patient=bed7",
        "advance 60m",   # the grade-3 reminder: the primary
        "advance 5m",    # unanswered: the secondary
        "advance 5m",    # still unanswered: the channel
        "press i",       # "I'm on it" on the channel escalation
        "advance 5m",    # the repeat is cancelled
        "press snooze",
        "advance 16m",
        "press resolved",
        "/crs status",
        "/crs history patient=bed7",
    ], tmp_path_factory.mktemp("console"), env={"CRSBOT_TIMEZONE": "Europe/Berlin"})


def test_a_grade_is_posted_in_channel_with_numbered_buttons(session: str) -> None:
    assert "── crsbot (#oncall)" in session
    assert "bed7 · CRS at least grade 3. First: Hold LUNSUMIO until the CRS has resolved" in session
    assert "[1] Reassessed  [2] Details  [3] Resolved  [4] New assessment" in session  # no snooze on an assessment


def test_the_chain_goes_primary_then_secondary_then_channel_and_ack_stops_it(session: str) -> None:
    reminder = session.index(":alarm_clock: <@U0ONCALL99>: time to reassess patient *bed7*")
    secondary = session.index(":rotating_light: *ESCALATION* to the secondary <@U0SECOND1>")
    channel = session.index(":rotating_light: *ESCALATION* to the channel <!here>")
    ack = session.index("── message updated: :raising_hand: <@U0CLINIC01> is on it: escalation stopped")
    assert reminder < secondary < channel < ack
    assert re.search(r"\[\d+\] I'm on it  \[\d+\] Reassessed  \[\d+\] Snooze 15 min  \[\d+\] Resolved",
                     session[reminder:])
    after_ack = session[ack:session.index("> press snooze")]
    assert "ESCALATION" not in after_ack, after_ack


def test_snooze_defers_the_reminder_and_times_use_the_site_zone(session: str) -> None:
    snoozed = session.index(":zzz: <@U0CLINIC01> snoozed this reminder (until ", session.index("> press snooze"))
    assert session.index(":alarm_clock: <@U0ONCALL99>", snoozed) > snoozed
    assert "bot clock is now" in session and " CET" in session  # Europe/Berlin in winter
    assert "<!date^" not in session  # the console shows Slack's fallback text


def test_resolving_from_a_reminder_button_closes_the_episode(session: str) -> None:
    resolved = session.index("CRS episode for *bed7* resolved by <@U0CLINIC01>")
    status = session.index("> /crs status")
    assert resolved < status
    assert "No open CRS episodes in this channel." in session[status:]
    assert "On-call chain: <@U0ONCALL99>, then <@U0SECOND1> after 5 min" in session[status:]


def test_a_channel_without_a_chain_is_prompted_and_its_reminders_name_the_assessor(tmp_path: Path) -> None:
    out = run_console(["/crs temp=39 sbp=85 pressor=1 patient=bed3", "advance 60m"], tmp_path)
    assert ":warning: No on-call chain is set in this channel: reminders for this patient will mention " \
        "<@U0CLINIC01>" in out
    assert ":alarm_clock: <@U0CLINIC01>: time to reassess patient *bed3*" in out


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
