"""Static checks of the Dockerfile (scripts/image-smoke builds and runs it where an engine exists).

A small parser reads instructions (joining ``\\`` continuations, skipping
comments) and splits them into stages; the tests then check the properties that
matter in production: multi-stage, non-root, health-checked, no baked-in secrets.
"""

from __future__ import annotations

import fnmatch
import json
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"


@dataclass(frozen=True)
class Instruction:
    keyword: str  # upper-cased, e.g. "COPY"
    args: str  # the rest of the logical line, continuations joined
    line: int  # 1-based line where the instruction starts


@dataclass
class Stage:
    index: int
    image: str
    name: str | None
    instructions: list[Instruction] = field(default_factory=list)

    def all(self, keyword: str) -> list[Instruction]:
        return [i for i in self.instructions if i.keyword == keyword]


def parse_instructions(text: str) -> list[Instruction]:
    """Logical instructions: comment lines dropped, trailing-backslash lines joined."""
    instructions: list[Instruction] = []
    pending: list[str] = []
    start = 0
    for number, raw in enumerate(text.splitlines(), start=1):
        stripped = raw.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if pending and stripped.startswith("#"):
            continue  # comments may sit inside a continued instruction
        if not pending:
            start = number
        if stripped.endswith("\\"):
            pending.append(stripped[:-1].strip())
            continue
        pending.append(stripped)
        logical = " ".join(part for part in pending if part)
        pending = []
        keyword, _, args = logical.partition(" ")
        instructions.append(Instruction(keyword.upper(), args.strip(), start))
    if pending:
        raise ValueError(f"Dockerfile ends inside a continued instruction started on line {start}")
    return instructions


def split_stages(instructions: list[Instruction]) -> list[Stage]:
    stages: list[Stage] = []
    for instruction in instructions:
        if instruction.keyword == "FROM":
            words = [w for w in instruction.args.split() if not w.startswith("--")]
            name = words[2] if len(words) >= 3 and words[1].lower() == "as" else None
            stages.append(Stage(len(stages), words[0], name))
        elif stages:
            stages[-1].instructions.append(instruction)
        elif instruction.keyword != "ARG":
            raise ValueError(f"line {instruction.line}: {instruction.keyword} before the first FROM")
    return stages


def exec_form(args: str) -> list[str]:
    """The argv of a JSON (exec-form) ENTRYPOINT/CMD; shell form is refused."""
    value = json.loads(args)
    assert isinstance(value, list) and all(isinstance(v, str) for v in value), args
    return value


def env_pairs(args: str) -> dict[str, str]:
    words = shlex.split(args)
    if words and "=" not in words[0]:  # legacy "ENV KEY value" form
        return {words[0]: " ".join(words[1:])}
    return dict(word.split("=", 1) for word in words)


def copy_from_problems(stages: list[Stage]) -> list[str]:
    """Every ``COPY --from`` must name a stage defined earlier (by name or index)."""
    problems = []
    for stage in stages:
        earlier_names = {s.name for s in stages[: stage.index] if s.name}
        earlier_indexes = {str(s.index) for s in stages[: stage.index]}
        for copy in stage.all("COPY"):
            for source in re.findall(r"--from=(\S+)", copy.args):
                if source not in earlier_names | earlier_indexes:
                    problems.append(f"line {copy.line}: COPY --from={source} is not an earlier stage")
    return problems


@pytest.fixture(scope="module")
def stages() -> list[Stage]:
    return split_stages(parse_instructions(DOCKERFILE.read_text(encoding="utf-8")))


@pytest.fixture(scope="module")
def final(stages: list[Stage]) -> Stage:
    return stages[-1]


# --------------------------------------------------------------------------- the parser itself


def test_parser_joins_continuations_and_skips_comments() -> None:
    text = "# top\nFROM python:3.11-slim AS a\nRUN one \\\n  # inside\n  && two\nCOPY --from=a /x /y\n"
    instructions = parse_instructions(text)
    assert [(i.keyword, i.args, i.line) for i in instructions] == [
        ("FROM", "python:3.11-slim AS a", 2),
        ("RUN", "one && two", 3),
        ("COPY", "--from=a /x /y", 6),
    ]


def test_copy_from_check_catches_unknown_and_later_stages() -> None:
    text = (
        "FROM python:3.11-slim AS first\nCOPY --from=second /a /a\n"
        "FROM python:3.11-slim AS second\nCOPY --from=nowhere /b /b\nCOPY --from=0 /c /c\n"
    )
    problems = copy_from_problems(split_stages(parse_instructions(text)))
    assert len(problems) == 2
    assert "--from=second" in problems[0] and "--from=nowhere" in problems[1]


# --------------------------------------------------------------------------- the Dockerfile


def test_is_multi_stage_on_slim_python(stages: list[Stage]) -> None:
    assert len(stages) >= 2
    assert all(stage.image == "python:3.11-slim" for stage in stages)
    assert stages[0].name == "builder"


def test_every_copy_from_names_an_earlier_stage(stages: list[Stage]) -> None:
    assert copy_from_problems(stages) == []
    assert any("--from=" in c.args for c in stages[-1].all("COPY"))


def test_runtime_stage_copies_only_from_the_builder(final: Stage) -> None:
    copies = final.all("COPY") + final.all("ADD")
    assert copies, "the runtime stage must bring in the venv"
    for copy in copies:
        assert copy.keyword == "COPY" and "--from=builder" in copy.args, copy


def test_runs_as_a_non_root_user(final: Stage) -> None:
    users = final.all("USER")
    assert users, "the final stage must set USER"
    user = users[-1].args.split(":")[0].strip()
    assert user not in {"root", "0", ""}
    entrypoint_line = final.all("ENTRYPOINT")[-1].line
    assert users[-1].line < entrypoint_line


def test_data_volume_is_owned_by_the_runtime_user(final: Stage) -> None:
    volumes = " ".join(v.args for v in final.all("VOLUME"))
    assert "/data" in volumes
    runs = " ".join(r.args for r in final.all("RUN"))
    assert "useradd" in runs and "--uid 10001" in runs
    assert re.search(r"chown\s+\S+\s+/data\b", runs)
    assert final.all("USER")[-1].args.split(":")[0] in {"10001", "crsbot"}


def test_environment_defaults(final: Stage) -> None:
    env: dict[str, str] = {}
    for instruction in final.all("ENV"):
        env.update(env_pairs(instruction.args))
    assert env["DATABASE_URL"] == "sqlite:////data/crsbot.sqlite3"
    assert env["PORT"] == "3000"
    assert env["PYTHONUNBUFFERED"] == "1"
    assert [e.args for e in final.all("EXPOSE")] == [env["PORT"]]


def test_no_secrets_are_baked_in(stages: list[Stage]) -> None:
    for stage in stages:
        for instruction in stage.all("ENV") + stage.all("ARG"):
            for key, value in env_pairs(instruction.args).items():
                assert not key.upper().startswith("SLACK_"), instruction
                assert not re.search(r"xox[abp]-|xapp-", value), instruction
                assert not re.search(r"SECRET|TOKEN|PASSWORD", key.upper()), instruction


def _duration_seconds(options: str, name: str) -> float:
    match = re.search(rf"--{name}=(\d+)(ms|s|m)\b", options)
    assert match, f"HEALTHCHECK must set --{name}"
    return int(match.group(1)) * {"ms": 0.001, "s": 1, "m": 60}[match.group(2)]


def test_healthcheck_probes_the_port_serve_bound_promptly(final: Stage) -> None:
    [healthcheck] = final.all("HEALTHCHECK")
    options, _, command = healthcheck.args.partition(" CMD ")
    assert command, "HEALTHCHECK must have a CMD (not NONE)"
    # bot.slack.healthcheck reads CRSBOT_PORT_FILE (written by serve), so `serve --port` is followed.
    assert exec_form(command) == ["python", "-m", "bot.slack.healthcheck"]
    env: dict[str, str] = {}
    for instruction in final.all("ENV"):
        env.update(env_pairs(instruction.args))
    assert env["CRSBOT_PORT_FILE"].startswith("/data/")
    # The first probe runs one interval after start: a 30 s interval left a ready bot "starting".
    assert _duration_seconds(options, "interval") <= 10
    assert _duration_seconds(options, "start-period") <= 15
    assert _duration_seconds(options, "timeout") <= _duration_seconds(options, "interval")


def test_no_syntax_directive_that_pulls_an_extra_image() -> None:
    first_lines = DOCKERFILE.read_text(encoding="utf-8").splitlines()[:5]
    assert not any(re.match(r"#\s*syntax\s*=", line, re.I) for line in first_lines)


def test_dependencies_come_from_the_lock_before_the_code(stages: list[Stage]) -> None:
    builder = stages[0]
    runs = builder.all("RUN")
    lock_install = next(r for r in runs if "-r requirements.lock" in r.args)
    assert "--require-hashes" in lock_install.args and "--no-deps" in lock_install.args
    lock_copy = next(c for c in builder.all("COPY") if "requirements.lock" in c.args)
    code_copies = [c for c in builder.all("COPY") if re.search(r"\b(bot|grading|messages)\b", c.args)]
    assert code_copies and lock_copy.line < lock_install.line < min(c.line for c in code_copies)
    for run in runs:  # nothing installed unpinned: every pip install is hashed or a wheel built here
        for part in re.split(r"&&", run.args):
            if re.search(r"\bpip\b.*\binstall\b", part):
                assert "--require-hashes" in part or "/wheels/" in part, part


def test_runtime_image_has_no_pip_or_build_tools(stages: list[Stage], final: Stage) -> None:
    runs = " ".join(r.args for r in final.all("RUN"))
    assert re.search(r"pip uninstall (--\S+ )*pip setuptools", runs)
    assert "ensurepip" in runs
    assert "venv --without-pip" in " ".join(r.args for r in stages[0].all("RUN"))
    assert not re.search(r"\b(apt-get|gcc|build-essential)\b", runs)


def test_entrypoint_runs_crsbot_serve(final: Stage) -> None:
    entrypoint = exec_form(final.all("ENTRYPOINT")[-1].args)
    cmd = exec_form(final.all("CMD")[-1].args)
    assert entrypoint + cmd == ["crsbot", "serve"]


# --------------------------------------------------------------------------- .dockerignore


def dockerignored(path: str, patterns: list[str]) -> bool:
    """Approximate Docker's matching: a pattern excludes a path or anything under it."""
    excluded = False
    for pattern in patterns:
        negate = pattern.startswith("!")
        pattern = pattern.lstrip("!").strip("/")
        for candidate in (pattern, pattern.removeprefix("**/")):
            parts = path.split("/")
            prefixes = ["/".join(parts[: n + 1]) for n in range(len(parts))]
            if any(fnmatch.fnmatch(p, candidate) for p in prefixes):
                excluded = not negate
    return excluded


def test_dockerignore_keeps_build_inputs_and_drops_secrets_and_state() -> None:
    patterns = [
        line.strip()
        for line in DOCKERIGNORE.read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.strip().startswith("#")
    ]
    for needed in ("pyproject.toml", "README.md", "requirements.lock", "requirements-build.lock", "grading/crs.py", "messages/__init__.py", "bot/__init__.py"):
        assert not dockerignored(needed, patterns), needed
    for unwanted in (".git/HEAD", ".venv/bin/python", ".env", ".env.production", "bot/__pycache__/x.pyc", "crsbot.sqlite3"):
        assert dockerignored(unwanted, patterns), unwanted
