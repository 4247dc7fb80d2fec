"""Admin commands for the IT team: schema migrations and the audit export."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from bot.settings import load_settings
from bot.storage.audit_export import export_audit
from bot.storage.db import current_revision, make_engine, upgrade
from bot.storage.store import Store


def _db_upgrade(args: argparse.Namespace) -> int:
    settings = load_settings()
    if settings.database_url is None:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    engine = make_engine(settings.db_url)
    upgrade(engine)
    print(f"database schema at revision {current_revision(engine)}")
    engine.dispose()
    return 0


def _audit_export(args: argparse.Namespace) -> int:
    settings = load_settings()
    engine = make_engine(settings.db_url)
    upgrade(engine)
    store = Store(engine)
    if args.out:
        with Path(args.out).open("w", encoding="utf-8", newline="") as out:
            count = export_audit(store, args.format, out)
        print(f"wrote {count} audit entries to {args.out}", file=sys.stderr)
    else:
        export_audit(store, args.format, sys.stdout)
    engine.dispose()
    return 0


def register_cli(sub: Any) -> None:
    db = sub.add_parser("db", help="database administration").add_subparsers(dest="db_command", required=True)
    db.add_parser("upgrade", help="apply schema migrations (also done at start-up)").set_defaults(func=_db_upgrade)
    audit = sub.add_parser("audit", help="audit trail").add_subparsers(dest="audit_command", required=True)
    export = audit.add_parser("export", help="write the audit trail as CSV or JSON lines")
    export.add_argument("--format", choices=("csv", "jsonl"), default="csv")
    export.add_argument("--out", help="file to write (default: standard output)")
    export.set_defaults(func=_audit_export)
