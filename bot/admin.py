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


def db_upgrade_command(args: argparse.Namespace) -> int:
    settings = load_settings()
    engine = open_database(settings.database_url, settings.data_dir)
    print(f"database schema at revision {current_revision(engine)}")
    engine.dispose()
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
