"""Admin commands for the IT team: schema migrations and the audit export."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from bot.settings import load_settings
from bot.storage.audit_export import export_audit
from bot.storage.connect import open_database
from bot.storage.db import current_revision
from bot.storage.store import Store
from grading.errors import InputError


def db_upgrade_command(args: argparse.Namespace) -> int:
    settings = load_settings()
    engine = open_database(settings.database_url, settings.data_dir)
    print(f"database schema at revision {current_revision(engine)}")
    engine.dispose()
    return 0


def timeline_command(args: argparse.Namespace) -> int:
    """Draw an episode's picture from an audit export (JSON lines), e.g. for a governance review."""
    from bot.episodes.timeline_data import timeline_from_audit
    from messages.timeline import render_picture

    try:
        with Path(args.from_audit).open(encoding="utf-8") as lines:
            timeline = timeline_from_audit(lines, args.patient, args.episode,
                                           sbp_threshold=load_settings().sbp_threshold)
    except OSError as exc:
        raise InputError("--from-audit", f"cannot read {args.from_audit} ({exc.strerror}).",
                         "a file written by `crsbot audit export --format jsonl`") from None
    except ValueError:
        raise InputError("--from-audit", f"{args.from_audit} is not a JSON-lines audit export.",
                         "a file written by `crsbot audit export --format jsonl`") from None
    picture = render_picture(timeline)
    Path(args.out).write_bytes(picture.png)
    print(f"wrote {args.out}: {picture.alt_text}")
    return 0


def audit_export_command(args: argparse.Namespace) -> int:
    settings = load_settings()
    engine = open_database(settings.database_url, settings.data_dir)
    store = Store(engine)
    if args.out:
        with Path(args.out).open("w", encoding="utf-8", newline="") as out:
            count = export_audit(store, args.format, out)
        print(f"wrote {count} audit entries to {args.out}", file=sys.stderr)
    else:
        export_audit(store, args.format, sys.stdout)
    engine.dispose()
    return 0
