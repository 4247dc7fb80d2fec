"""`crsbot rulebook check | diff | sheet FILE`: the review workflow for a site's rulebook.

A draft with an error stops here, naming the entry, before it ever reaches `crsbot serve`.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from pathlib import Path

from bot.rulebooks import default_rulebooks, load_rulebook_file
from grading.errors import RulebookError
from grading.rulebook import Rulebook
from messages.rulebook_review import check_report, diff_report, sheet, to_html, to_markdown


def _load(path: str) -> tuple[Rulebook, Rulebook]:
    """The file's rulebook and the shipped default for the same product."""
    book = load_rulebook_file(Path(path))
    return book, default_rulebooks()[book.rulebook.product]


def check_command(args: argparse.Namespace) -> int:
    book, default = _load(args.file)
    print(check_report(book, default, args.file))
    return 0


def diff_command(args: argparse.Namespace) -> int:
    book, default = _load(args.file)
    print(diff_report(book, default, args.file))
    return 0


def sheet_command(args: argparse.Namespace) -> int:
    book, default = _load(args.file)
    fingerprint = hashlib.sha256(Path(args.file).read_bytes()).hexdigest()
    blocks = sheet(book, default, args.file, fingerprint)
    document = to_html(blocks) if args.format == "html" else to_markdown(blocks)
    if args.out:
        try:
            Path(args.out).write_text(document, encoding="utf-8")
        except OSError as exc:
            raise RulebookError(args.file, None, f"the sheet cannot be written to {args.out} ({exc.strerror})") from None
    else:
        sys.stdout.write(document)
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """`crsbot rulebook ...` subcommands (called from bot.cli)."""
    from bot.cli import _lazy

    rulebook = sub.add_parser("rulebook", help="review a site rulebook: check, diff, sheet").add_subparsers(
        dest="rulebook_command", required=True)
    check = rulebook.add_parser("check", help="validate FILE; list every entry's source and what it fills")
    check.set_defaults(func=_lazy("bot.rulebook_tools", "check_command"))
    diff = rulebook.add_parser("diff", help="FILE against the shipped default for its product, entry by entry")
    diff.set_defaults(func=_lazy("bot.rulebook_tools", "diff_command"))
    sheet_ = rulebook.add_parser("sheet", help="print a review sheet for P&T sign-off (Markdown or HTML)")
    sheet_.add_argument("--format", choices=("md", "html"), default="md")
    sheet_.add_argument("--out", help="file to write (default: standard output)")
    sheet_.set_defaults(func=_lazy("bot.rulebook_tools", "sheet_command"))
    for command in (check, diff, sheet_):
        command.add_argument("file", help="the rulebook TOML file")
