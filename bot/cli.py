"""`crsbot`: the same answers as Slack from a terminal, plus the service's admin commands.

Exit codes: 0 success, 2 bad input (message on stderr), 3 configuration error.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable, Sequence

from bot.commands import CLI
from grading.errors import CrsbotError, InputError, PatientLabelError
from messages.help import cli_line
from messages.layout import layout_for
from messages.text import render_text


def _assess(args: argparse.Namespace) -> int:
    from bot.rulebooks import load_rulebooks
    from bot.settings import load_settings

    settings = load_settings()
    rulebooks = load_rulebooks(settings.rulebook)
    text = " ".join(args.text)
    assess = CLI[args.command].assess
    assert assess is not None
    report = assess(text, settings.site, rulebooks)
    # The same label guard as Slack: an identifier is refused here too, even though nothing is stored.
    settings.check_patient_label(getattr(getattr(report, "input", None), "patient", None))
    if args.json:
        print(report.model_dump_json(indent=2))
    else:
        print(render_text(layout_for(report)))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="crsbot", description="CRS grading bot for LUNSUMIO teams.")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, command in CLI.items():  # the same sub-commands and help lines as `/crs help`
        text = cli_line(name, command.help)
        cmd = sub.add_parser(name, help=text, description=text)
        cmd.add_argument("text", nargs="*", help="what follows /crs in Slack (quoted or as separate words)")
        cmd.add_argument("--json", action="store_true", help="print the result model as JSON")
        cmd.set_defaults(func=_assess)
    serve = sub.add_parser("serve", help="run the Slack bot (HTTP on $PORT, default 3000, or --socket-mode)")
    serve.add_argument("--port", type=int, default=None, help="HTTP port (default: $PORT, else 3000)")
    serve.add_argument("--host", default="0.0.0.0", help="interface to bind (default 0.0.0.0)")
    serve.add_argument("--socket-mode", action="store_true", help="connect out to Slack with SLACK_APP_TOKEN")
    serve.set_defaults(func=_lazy("bot.slack.serve", "serve_command"))
    console = sub.add_parser("console", help="run the whole bot locally against a Slack stand-in (no Slack account)")
    console.add_argument("--demo", action="store_true", help="play a short scripted on-call scenario first")
    console.add_argument("--data-dir", help="keep the SQLite database here (default: a new temporary folder)")
    console.set_defaults(func=_lazy("bot.testing.console", "console_command"))
    picture = sub.add_parser("timeline", help="draw an episode's picture (PNG) from an audit export")
    picture.add_argument("--from-audit", required=True, help="audit trail written by `crsbot audit export "
                         "--format jsonl`")
    picture.add_argument("--patient", required=True, help="the patient's bed or study label")
    picture.add_argument("--episode", type=int, help="episode id (default: the patient's latest)")
    picture.add_argument("--out", required=True, help="PNG file to write")
    picture.set_defaults(func=_lazy("bot.admin", "timeline_command"))
    db = sub.add_parser("db", help="database administration").add_subparsers(dest="db_command", required=True)
    db.add_parser("upgrade", help="apply schema migrations (also done at start-up)").set_defaults(
        func=_lazy("bot.admin", "db_upgrade_command"))
    audit = sub.add_parser("audit", help="audit trail").add_subparsers(dest="audit_command", required=True)
    export = audit.add_parser("export", help="write the audit trail as CSV or JSON lines")
    export.add_argument("--format", choices=("csv", "jsonl"), default="csv")
    export.add_argument("--out", help="file to write (default: standard output)")
    export.set_defaults(func=_lazy("bot.admin", "audit_export_command"))
    from bot.rulebook_tools import add_parser as add_rulebook_parser

    add_rulebook_parser(sub)
    return parser


def _lazy(module: str, function: str) -> Callable[[argparse.Namespace], int]:
    """Service commands import the Slack app and the database only when they run, so
    `crsbot grade` starts quickly."""
    def run(args: argparse.Namespace) -> int:
        return int(getattr(importlib.import_module(module), function)(args) or 0)

    return run


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (InputError, PatientLabelError) as exc:
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
