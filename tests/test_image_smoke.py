"""scripts/image-smoke says SKIPPED (exit 0) and why where no container engine works, so CI on a
machine without docker or podman passes; where one works, it runs the real checks, and the suite runs
it as it is on this machine (its PATH, its engine) and requires PASSED or SKIPPED."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "image-smoke"
# A full build and run with a working engine (the script's own limit for the build is 30 min).
FULL_SMOKE_TIMEOUT = 45 * 60


def run(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(SCRIPT)], env={"PATH": str(path)}, capture_output=True, text=True,
                          timeout=60)


def test_skips_clearly_without_any_engine(tmp_path: Path) -> None:
    done = run(tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == ("image-smoke: SKIPPED: no working container engine: docker: not installed; "
                                   "podman: not installed")


def test_a_docker_cli_without_a_daemon_does_not_count(tmp_path: Path) -> None:
    docker = tmp_path / "docker"
    docker.write_text("#!/bin/sh\necho 'Cannot connect to the Docker daemon at unix:///var/run/docker.sock.' >&2\n"
                      "exit 1\n")
    docker.chmod(0o755)
    done = run(tmp_path)
    assert done.returncode == 0
    assert "SKIPPED" in done.stdout and "docker: installed but not usable (Cannot connect to the Docker daemon" \
        in done.stdout


@pytest.mark.container
def test_the_real_script_passes_or_skips_here() -> None:
    """What CI gets: the script on this machine's real PATH, with any IMAGE_SMOKE_* settings. Seconds
    where no engine works or the base image cannot be pulled; a full image build and run where one does."""
    done = subprocess.run([sys.executable, str(SCRIPT)], env=dict(os.environ), cwd=ROOT, capture_output=True,
                          text=True, timeout=FULL_SMOKE_TIMEOUT)
    last = (done.stdout.strip().splitlines() or [""])[-1]
    assert done.returncode == 0 and re.fullmatch(r"image-smoke: (PASSED|SKIPPED: .+)", last), \
        f"exit {done.returncode}\n{done.stdout}\n{done.stderr}"
