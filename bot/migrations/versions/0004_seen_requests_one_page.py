"""The replay guard's marks: one B-tree, so a mark writes one page.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-07

Every Slack request writes a mark. With a rowid table, its primary-key index and an index on `seen_at`,
a mark changed three B-trees and committed three pages; the signature is the key, so on SQLite the
table is now WITHOUT ROWID (the rows live in the primary key's own B-tree) and neither database keeps
the `seen_at` index: the prune deletes old rows once a minute by scanning a table that holds only the
last few minutes of requests.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_COLUMNS = ("signature VARCHAR(100) NOT NULL, seen_at DATETIME NOT NULL, "
            "CONSTRAINT pk_seen_requests PRIMARY KEY (signature)")


def _rebuild_sqlite(options: str) -> None:
    """SQLite cannot change a table's rowid-ness in place: copy the marks into a new table."""
    op.execute(f"CREATE TABLE seen_requests_new ({_COLUMNS}){options}")
    op.execute("INSERT INTO seen_requests_new (signature, seen_at) SELECT signature, seen_at FROM seen_requests")
    op.execute("DROP TABLE seen_requests")
    op.execute("ALTER TABLE seen_requests_new RENAME TO seen_requests")


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        _rebuild_sqlite(" WITHOUT ROWID")
    else:
        op.drop_index("ix_seen_requests_seen_at", table_name="seen_requests")


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        _rebuild_sqlite("")
    op.create_index("ix_seen_requests_seen_at", "seen_requests", ["seen_at"])
