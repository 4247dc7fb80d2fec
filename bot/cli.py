"""`crsbot`: the same answers as Slack from a terminal, plus the service's admin commands.

Exit codes: 0 success, 2 bad input (message on stderr), 3 configuration error.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from typing import Any

from grading.errors import CrsbotError, InputError
from grading.pipeline import assess_crs, assess_delay, assess_icans, assess_premed
from messages.layout import layout_for
from messages.text import render_text

ASSESSORS: dict[str, Callable[..., Any]] = {
    "grade": assess_crs,
    "icans": assess_icans,
    "delay": assess_delay,
    "premed": assess_premed,
}


def _assess(args: argparse.Namespace) -> int:
    from bot.rulebooks import load_rulebooks
    from bot.settings import load_settings

    settings = load_settings()
    rulebooks = load_rulebooks(settings.rulebook)
    text = " ".join(args.text)
    report = ASSESSORS[args.command](text, settings.site, rulebooks)
    if args.json:
        print(report.model_dump_json(indent=2))
    else:
        print(render_text(layout_for(report)))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="crsbot", description="CRS grading bot for LUNSUMIO teams.")
    sub = parser.add_subparsers(dest="command", required=True)
    helps = {
        "grade": "grade CRS: crsbot grade temp=39 sbp=85 pressor=1",
        "icans": "grade ICANS: crsbot icans ice=6 loc=voice",
        "delay": "restart after a dose delay: crsbot delay last=c1d8 since=3w",
        "premed": "premedication: crsbot premed cycle=3 priorcrs=yes",
    }
    for name, text in helps.items():
        cmd = sub.add_parser(name, help=text, description=text)
        cmd.add_argument("text", nargs="*", help="what follows /crs in Slack (quoted or as separate words)")
        cmd.add_argument("--json", action="store_true", help="print the result model as JSON")
        cmd.set_defaults(func=_assess)
    for register in _extra_commands():
        register(sub)
    return parser


def _extra_commands() -> list[Callable[[Any], None]]:
    """Service commands live beside what they run; each adds its own sub-parser."""
    registrars: list[Callable[[Any], None]] = []
    for module_name in ("bot.serve", "bot.console", "bot.admin"):
        try:
            module = __import__(module_name, fromlist=["register_cli"])
        except ModuleNotFoundError as exc:
            if exc.name != module_name:
                raise
            continue
        registrars.append(module.register_cli)
    return registrars


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except InputError as exc:
        print(f"crsbot: {exc.user_message()}", file=sys.stderr)
        return 2
    except CrsbotError as exc:
        print(f"crsbot: {exc.user_message()}", file=sys.stderr)
        return 3
    except BrokenPipeError:
        # `crsbot audit export | head`: the reader left; that is not an error.
        sys.stderr.close()
        return 0


if __name__ == "__main__":
    sys.exit(main())
