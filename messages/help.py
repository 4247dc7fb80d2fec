"""The `/crs help` guide, generated from the command table (bot/commands.py): short enough to read on
a phone, with examples to copy. The CLI's help comes from the same lines."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from messages.blocks import render_ephemeral
from messages.ids import Subcommand
from messages.layout import JUDGMENT


@dataclass(frozen=True)
class HelpLine:
    args: str  # example arguments, as typed after the command word
    what: str


HELP: dict[Subcommand, HelpLine] = {
    Subcommand.GRADE: HelpLine("temp=39 sbp=85 pressor=1 patient=bed12", "grade CRS: fever + one vasopressor"),
    Subcommand.FORM: HelpLine("", "the same as a form"),
    Subcommand.ICANS: HelpLine("ice=6 loc=voice", "ICANS grade"),
    Subcommand.DELAY: HelpLine("last=c1d8 since=3w", "restarting after a dose delay"),
    Subcommand.PREMED: HelpLine("cycle=3 priorcrs=yes", "premedication"),
    Subcommand.STATUS: HelpLine("", "open episodes in this channel"),
    Subcommand.HISTORY: HelpLine("patient=bed12", "one patient's episodes, and their timeline picture"),
    Subcommand.HANDOFF: HelpLine("", "post the shift handoff of this channel's episodes"),
    Subcommand.RESOLVE: HelpLine("patient=bed12", "resolve the patient's open episode"),
    Subcommand.ONCALL: HelpLine("@user", "who reminders and escalations mention"),
    Subcommand.HELP: HelpLine("", "this guide"),
}

INTRO = "Grade CRS (ASTCT 2019) and see what the LUNSUMIO rulebook says. Type findings as key=value:"
MORE_EXAMPLES = """• `/crs temp=38.4 o2=4 device=nc` — nasal cannula 4 L/min
• `/crs temp=37.2 masked=yes pressor=1` — fever masked by premedication/tocilizumab/steroids
• keys: temp, sbp (or bp=85/50), fluids, pressor (count, not vasopressin), vasopressin, o2 (L/min or device), device (ra nc blowby hfnc facemask nrb venturi cpap bipap vent), o2comfort=yes (oxygen for comfort only: not counted), masked, product (iv/velo), patient (bed or study label only), weight (kg), o2rule (label/astct), recurrent"""
OUTRO = f"Findings you leave out are never assumed present; the reply lists them. {JUDGMENT}"


def slack_line(word: str, line: HelpLine) -> str:
    typed = " ".join(p for p in (word, line.args) if p)
    return f"• `/crs {typed}` — {line.what}"


def cli_line(word: str, line: HelpLine) -> str:
    return f"{line.what} — crsbot {word} {line.args}".rstrip()


def help_text(commands: Iterable[tuple[str, HelpLine]]) -> str:
    """`commands`: (word typed after /crs, help line) in table order; the default command's word is ''."""
    listed = list(commands)
    first = [slack_line(w, h) for w, h in listed if not w]
    others = [slack_line(w, h) for w, h in listed if w]
    return "\n".join([INTRO, *first, MORE_EXAMPLES, "Other commands:", *others, OUTRO])


def help_message(commands: Iterable[tuple[str, HelpLine]]) -> dict[str, Any]:
    return render_ephemeral("crsbot: how to use /crs", help_text(commands))
