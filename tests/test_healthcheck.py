"""The container health probe follows the port `crsbot serve` actually bound, and start-up says in
one line when the SQLite folder cannot be written."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from bot.slack.healthcheck import probe_port
from tests.slack_support import Served, clean_env, run_crsbot


def test_probe_port_prefers_the_port_file(tmp_path: Path) -> None:
    port_file = tmp_path / "port"
    assert probe_port({"PORT": "4000"}) == 4000
    assert probe_port({}) == 3000
    assert probe_port({"PORT": "4000", "CRSBOT_PORT_FILE": str(port_file)}) == 4000  # not written yet
    port_file.write_text("5123\n")
    assert probe_port({"PORT": "4000", "CRSBOT_PORT_FILE": str(port_file)}) == 5123


def probe(env: dict[str, str]) -> int:
    return subprocess.run([sys.executable, "-m", "bot.slack.healthcheck"], env=env, capture_output=True,
                          timeout=30).returncode


def test_probe_follows_serve_port_not_PORT(tmp_path: Path) -> None:
    port_file = tmp_path / "crsbot.port"
    # serve binds --port 0 (a free port); PORT names a port nobody listens on.
    with Served.running(tmp_path, env={"CRSBOT_PORT_FILE": str(port_file), "PORT": "1"}) as served:
        assert int(port_file.read_text()) == served.process.port
        env = {**os.environ, "CRSBOT_PORT_FILE": str(port_file), "PORT": "1"}
        assert probe(env) == 0
        assert probe({**env, "CRSBOT_PORT_FILE": str(tmp_path / "missing")}) == 1  # falls back to PORT=1
    assert probe(env) == 1  # stopped: unhealthy


def test_unwritable_sqlite_folder_stops_start_up_with_one_line(tmp_path: Path) -> None:
    not_a_folder = tmp_path / "file"
    not_a_folder.write_text("")
    env = clean_env({"SLACK_BOT_TOKEN": "xoxb-x", "SLACK_SIGNING_SECRET": "s",
                     "DATABASE_URL": f"sqlite:///{not_a_folder}/data/crsbot.sqlite3"})
    result = run_crsbot(env, "--port", "0")
    lines = result.stdout.strip().splitlines()
    assert result.returncode == 3, result.stdout
    assert len(lines) == 1 and "DATABASE_URL" in lines[0] and "not writable" in lines[0], result.stdout
