"""scripts/image-smoke says SKIPPED (exit 0) and why where no container engine works, so CI on a
machine without docker or podman passes; where one works, `make image-smoke` runs the real checks."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "image-smoke"


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
