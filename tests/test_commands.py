"""The command table (bot/commands.py) is the only list of sub-commands: `/crs help`, routing and the
CLI come from it. Dispatch runs against a real SQLite store and the Slack fake."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import event

from bot.cli import build_parser
from bot.commands import CLI, COMMANDS, DEFAULT, dispatch, route
from bot.handlers.deps import Call, Deps
from bot.rulebooks import load_rulebooks
from bot.seal import Sealer
from bot.settings import load_settings
from bot.slack.sender import Sender, make_client
from bot.storage.db import make_engine, upgrade
from bot.storage.store import Store
from bot.testing.slack_fake import FakeSlack
from messages.help import cli_line, help_text, slack_line
from messages.ids import Subcommand


def test_every_subcommand_has_exactly_one_entry() -> None:
    assert sorted(c.name for c in COMMANDS) == sorted(Subcommand)
    words = [w for c in COMMANDS for w in c.words]
    assert len(words) == len(set(words)), "a word routes to one command"


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: c.name.value)
def test_each_entry_routes_and_is_in_help(command: object) -> None:
    assert command is not None
    text = help_text((c.word, c.help) for c in COMMANDS)
    assert slack_line(command.word, command.help) in text  # type: ignore[attr-defined]
    for word in filter(None, command.words):  # type: ignore[attr-defined]
        assert route(f"{word.upper()} patient=bed1")[0] is command, word


def test_findings_route_to_grading_with_the_whole_text() -> None:
    assert route("  ")[0].name is Subcommand.HELP, "a bare /crs shows the guide"
    assert route("temp=39 sbp=85") == (DEFAULT, "temp=39 sbp=85")
    assert route("tmp=39") == (DEFAULT, "tmp=39"), "a mistyped key is graded, so the grammar can say 'did you mean'"
    assert route("icans ice=6") == (next(c for c in COMMANDS if c.name is Subcommand.ICANS), "ice=6")


def test_the_cli_offers_the_table_s_assessments_with_the_same_help() -> None:
    parser = build_parser()
    choices = parser._subparsers._group_actions[0].choices  # type: ignore[union-attr]
    assert set(CLI) <= set(choices)
    assert set(CLI) == {"grade", "icans", "delay", "premed"}
    for name, command in CLI.items():
        assert choices[name].description == cli_line(name, command.help)
        assert command.assess is not None


@pytest.fixture()
def deps(tmp_path: Path) -> Iterator[Deps]:
    fake = FakeSlack().start()
    engine = make_engine(f"sqlite:///{tmp_path / 'db.sqlite3'}")
    upgrade(engine)
    settings = load_settings()
    sender = Sender(make_client("xoxb-local", fake.api_url))
    yield Deps(settings, load_rulebooks(settings.rulebook), Store(engine), sender, Sealer("test-secret"))
    engine.dispose()
    fake.stop()


def test_dispatch_audits_exactly_the_entries_marked_audited(deps: Deps) -> None:
    assert dispatch(deps, Call("C0CMD1", "U1", "status")) is not None
    assert dispatch(deps, Call("C0CMD1", "U1", "temp=39 sbp=85 pressor=1")) is None
    actions = [(e.action, e.detail.get("command")) for e in deps.store.iter_audit()]
    assert actions == [("command", "status"), ("grade", None)]


def _statements(deps: Deps, text: str, channel: str) -> int:
    """SQL statements one dispatch of `text` in `channel` runs."""
    seen: list[str] = []

    def count(*args: object) -> None:
        seen.append(str(args[2]))

    event.listen(deps.store.engine, "before_cursor_execute", count)
    try:
        assert dispatch(deps, Call(channel, "U1", text)) is not None
    finally:
        event.remove(deps.store.engine, "before_cursor_execute", count)
    return len(seen)


def test_status_costs_the_same_queries_for_3_or_15_patients(deps: Deps) -> None:
    """`/crs status` once read every episode's reminders one query each (and, on SQLite, through the
    (status, due_at) index, i.e. every pending reminder of the whole site): 350 ms a call at 10,000
    pending reminders. Each patient's next reminder now comes from one grouped query."""
    for channel, patients in (("C0FEW", 3), ("C0MANY", 15)):
        for k in range(patients):
            episode = deps.store.record_assessment(channel, f"bed{k}", "iv", "crs", {}, {}, 2, "astct-2019", "1",
                                                   "U1").episode
            assert episode is not None
            deps.store.schedule_reminder(episode.id, "reassess", deps.store.clock.now() + timedelta(hours=k + 1))
    assert _statements(deps, "status", "C0FEW") == _statements(deps, "status", "C0MANY")
    due = deps.store.next_due([e.id for e in deps.store.open_episodes("C0MANY")])
    assert len(due) == 15 and min(due.values()) - deps.store.clock.now() <= timedelta(hours=1, seconds=1)
