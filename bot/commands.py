"""The command table: one entry per `/crs` sub-command, with its handler, its help line and whether
the dispatcher audits it. `/crs help`, routing and the CLI (`crsbot grade|icans|delay|premed`) all
come from this table, so a sub-command cannot exist in one and be missing from another.

Importing this module stays cheap (no Slack or database imports), so `crsbot grade` starts fast.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from bot.handlers import assess, episodes, handoff
from bot.handlers.deps import Call, Deps, Payload, with_history
from grading.pipeline import assess_crs, assess_delay, assess_icans, assess_premed
from messages.help import HELP, HelpLine, help_message
from messages.ids import Subcommand

Handler = Callable[[Deps, Call], Payload | None]


@dataclass(frozen=True)
class Command:
    name: Subcommand
    words: tuple[str, ...]  # what is typed first after /crs; () for the default (findings typed directly)
    handler: Handler
    audited: bool  # the dispatcher writes a "command" audit row (assessments are audited with their result)
    cli: str | None = None  # `crsbot <cli> ...` prints the same answer in a terminal
    assess: Callable[..., Any] | None = None  # the pure assessor the CLI runs

    @property
    def help(self) -> HelpLine:
        return HELP[self.name]

    @property
    def word(self) -> str:
        return self.words[0] if self.words else ""


def _help(deps: Deps, call: Call) -> Payload:
    return help_message((c.word, c.help) for c in COMMANDS)


COMMANDS: tuple[Command, ...] = (
    Command(Subcommand.GRADE, (), assess.crs, audited=False, cli="grade", assess=assess_crs),
    Command(Subcommand.FORM, ("form",), assess.form, audited=True),
    Command(Subcommand.ICANS, ("icans",), assess.icans, audited=False, cli="icans", assess=assess_icans),
    Command(Subcommand.DELAY, ("delay",), assess.delay, audited=True, cli="delay", assess=assess_delay),
    Command(Subcommand.PREMED, ("premed",), assess.premed, audited=True, cli="premed", assess=assess_premed),
    Command(Subcommand.STATUS, ("status",), episodes.status, audited=True),
    Command(Subcommand.HISTORY, ("history",), episodes.history, audited=True),
    Command(Subcommand.HANDOFF, ("handoff",), handoff.handoff, audited=True),
    Command(Subcommand.RESOLVE, ("resolve",), episodes.resolve, audited=True),
    Command(Subcommand.ONCALL, ("oncall",), episodes.oncall, audited=True),
    Command(Subcommand.HELP, ("help", "?", ""), _help, audited=True),
)

_BY_WORD = {w: c for c in COMMANDS for w in c.words}
# The bare words a command may contain: the audit keeps these and marks any other word as refused.
COMMAND_WORDS = frozenset(w for w in _BY_WORD if w)
DEFAULT = next(c for c in COMMANDS if not c.words)
CLI = {c.cli: c for c in COMMANDS if c.cli}


def route(text: str) -> tuple[Command, str]:
    """The command for `/crs TEXT` and the text its handler reads. Anything not starting with a
    command word is findings to grade (and the grammar names a mistyped key)."""
    word, _, rest = text.strip().partition(" ")
    command = _BY_WORD.get(word.lower())
    return (command, rest.strip()) if command is not None else (DEFAULT, text.strip())


def dispatch(deps: Deps, call: Call) -> Payload | None:
    """Run one authorized `/crs` command; returns an ephemeral reply for the caller, if any."""
    command, rest = route(call.text)
    if command.audited:
        deps.store.audit("command", call.channel, call.user, detail={
            "command": command.name.value, "text": deps.settings.redact(call.text, COMMAND_WORDS)[:500]})
    return command.handler(deps, replace(with_history(deps, call), text=rest))
