"""INSERTs every command runs, compiled once for the engine's dialect and run on the driver's cursor.

SQLAlchemy's Connection and execution layers cost more CPU than a short INSERT itself (about 100 us a
statement here, against 25-35 us for the driver): the replay guard's mark and an assessment's two rows
are run this way. Values still go through each column type's own bind processing (aware UTC
timestamps, JSON), so what is stored is exactly what SQLAlchemy would store."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from sqlalchemy import Engine, Insert


class CompiledInsert:
    """`statement` (an INSERT, with or without RETURNING) for the columns named, ready for a DBAPI cursor."""

    def __init__(self, statement: Insert, engine: Engine, columns: Sequence[str]) -> None:
        dialect = engine.dialect
        compiled = statement.compile(dialect=dialect, column_keys=list(columns))
        self.sql = str(compiled)
        self.positional = compiled.positional
        self.names: tuple[str, ...] = tuple(compiled.positiontup or ()) if compiled.positional else tuple(columns)
        table = statement.table
        identity: Callable[[Any], Any] = lambda value: value  # noqa: E731
        self.processors: dict[str, Callable[[Any], Any]] = {
            name: table.c[name].type.dialect_impl(dialect).bind_processor(dialect) or identity  # type: ignore[union-attr]
            for name in columns}
        self.duplicate: type[Exception] = dialect.loaded_dbapi.IntegrityError

    def run(self, cursor: Any, values: Mapping[str, Any]) -> Any:
        """Execute on a DBAPI `cursor` (in whatever transaction it is in); the RETURNING value, if any."""
        processed = {name: self.processors[name](values[name]) for name in self.processors}
        cursor.execute(self.sql, tuple(processed[name] for name in self.names) if self.positional else processed)
        row = cursor.fetchone() if cursor.description else None
        return row[0] if row else None
