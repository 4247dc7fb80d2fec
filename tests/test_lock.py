"""The lock files are the only source of installed versions: `make` (and so CI) and the Dockerfile
install from them with hashes, and this venv matches them exactly."""

from __future__ import annotations

import re
import shutil
import subprocess
import tomllib
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
PIN = re.compile(r"^([A-Za-z0-9._-]+)==(\S+) \\$", re.M)


def pins(name: str) -> dict[str, str]:
    text = (ROOT / name).read_text(encoding="utf-8")
    found = {canonicalize_name(n): v for n, v in PIN.findall(text)}
    assert found, f"{name} pins nothing"
    return found


def blocks(name: str) -> list[str]:
    """One requirement (its pin and hash lines) per entry."""
    text = (ROOT / name).read_text(encoding="utf-8")
    return [b for b in re.split(r"\n(?=[A-Za-z0-9])", text) if re.match(r"[A-Za-z0-9._-]+==", b)]


def project() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]


def test_every_entry_is_pinned_with_a_hash() -> None:
    for name in ("requirements.lock", "requirements-build.lock", "requirements-dev.lock"):
        for block in blocks(name):
            assert "--hash=sha256:" in block, f"{name}: {block.splitlines()[0]} has no hash"


def test_lock_covers_pyproject_and_satisfies_its_ranges() -> None:
    runtime = pins("requirements.lock")
    for line in project()["dependencies"]:
        requirement = Requirement(line)
        name = canonicalize_name(requirement.name)
        assert name in runtime, f"{name} is in pyproject.toml but not in requirements.lock (run make lock)"
        assert requirement.specifier.contains(runtime[name]), f"{name}=={runtime[name]} vs {requirement}"
    dev = pins("requirements-dev.lock")
    for line in project()["optional-dependencies"]["test"]:
        assert canonicalize_name(Requirement(line).name) in dev


def test_dev_lock_agrees_with_the_runtime_and_build_locks() -> None:
    dev = pins("requirements-dev.lock")
    for name in ("requirements.lock", "requirements-build.lock"):
        for package, version in pins(name).items():
            assert dev.get(package) == version, f"{package}: {name} has {version}, dev lock {dev.get(package)}"


def test_this_environment_is_the_dev_lock() -> None:
    """`make install` (what CI runs) installed exactly the locked versions."""
    for package, version in pins("requirements-dev.lock").items():
        assert metadata.version(package) == version, package


def test_makefile_installs_from_the_lock_and_documents_refresh() -> None:
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    assert re.search(r"pip install .*--require-hashes --no-deps -r requirements-dev\.lock", makefile)
    assert "--no-build-isolation -e ." in makefile
    assert re.search(r"^lock:", makefile, re.M) and "--generate-hashes" in makefile
    assert "make lock" in (ROOT / "README.md").read_text(encoding="utf-8")
    assert "make test" in (ROOT / ".ci" / "run").read_text(encoding="utf-8")


def make(directory: Path, *args: str) -> str:
    return subprocess.run(["make", "--no-print-directory", *args], cwd=directory, capture_output=True, text=True,
                          check=True, timeout=60).stdout


def test_lock_keeps_the_pins_unless_asked_to_upgrade() -> None:
    """pip-compile keeps the pins it finds in its output file: `make lock` must not empty the lock files
    first; `make lock-upgrade` (or UPGRADE=1) does."""
    emptied = re.compile(r"^rm -f requirements.lock requirements-build.lock requirements-dev.lock$", re.M)
    assert not emptied.search(make(ROOT, "-n", "lock"))
    assert emptied.search(make(ROOT, "-n", "lock-upgrade")) and emptied.search(make(ROOT, "-n", "lock", "UPGRADE=1"))
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "make lock-upgrade" in readme


def test_the_dev_lock_seed_takes_the_runtime_pins_and_keeps_its_own(tmp_path: Path) -> None:
    """What `make lock` hands pip-compile for the dev lock: the runtime and build pins just written (here the
    runtime lock moved alembic), then the dev lock's own pins (the test tools) for every other package."""
    for name in ("Makefile", "requirements.lock", "requirements-build.lock", "requirements-dev.lock"):
        shutil.copy(ROOT / name, tmp_path / name)
    old = pins("requirements.lock")["alembic"]
    runtime = tmp_path / "requirements.lock"
    runtime.write_text(runtime.read_text(encoding="utf-8").replace(f"alembic=={old} ", "alembic==99.0 "),
                       encoding="utf-8")
    dev_only = set(pins("requirements-dev.lock")) - set(pins("requirements.lock")) - set(pins("requirements-build.lock"))
    assert "pytest" in dev_only

    make(tmp_path, "dev-lock-seed")
    seed = (tmp_path / "requirements-dev.lock").read_text(encoding="utf-8")
    seeded = PIN.findall(seed)
    assert len(seeded) == len({canonicalize_name(n) for n, _ in seeded}), "a package seeded twice"
    assert dict(seeded)["alembic"] == "99.0"
    assert {canonicalize_name(n): v for n, v in seeded} == {**pins("requirements-dev.lock"), "alembic": "99.0"}

    shutil.copy(ROOT / "requirements-dev.lock", tmp_path / "requirements-dev.lock")
    make(tmp_path, "dev-lock-seed", "UPGRADE=1")
    upgraded = {canonicalize_name(n) for n, _ in PIN.findall((tmp_path / "requirements-dev.lock").read_text())}
    assert not upgraded & dev_only  # an upgrade resolves the test tools afresh
