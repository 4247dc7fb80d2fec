"""What a reviewer needs to know about a rulebook, computed from the data (no I/O, no wording).

A rulebook is compared entry by entry: each clinical entry (CRS, ICANS, delay rows) by its id,
each table (next dose, delay notes, premedication, tocilizumab) and each source as one item.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from grading.rulebook import Rulebook, Sourced


class ChangeKind(StrEnum):
    ADDED = "added"
    REMOVED = "removed"
    CHANGED = "changed"


@dataclass(frozen=True)
class Item:
    """One reviewable item: its key (``crs/withhold-until-resolved``), status, source and text."""

    key: str
    status: str
    source: str
    text: str
    see: str | None
    fields: dict[str, Any]


@dataclass(frozen=True)
class Change:
    key: str
    kind: ChangeKind
    fields: tuple[str, ...]  # for CHANGED: which fields differ
    before: Item | None
    after: Item | None


def _text(item: Sourced, data: dict[str, Any]) -> str:
    for name in ("text", "then"):
        if isinstance(data.get(name), str):
            return data[name]
    notes = data.get("notes")
    if notes:
        return " ".join(notes)
    return ""


def items(book: Rulebook) -> dict[str, Item]:
    """Every item of the book, keyed section/id, in the book's order."""
    found: dict[str, Item] = {}

    def add(key: str, entry: Sourced, drop: tuple[str, ...] = ()) -> None:
        data = entry.model_dump(mode="json", exclude=set(drop))
        found[key] = Item(key=key, status=entry.status, source=entry.source, text=_text(entry, data),
                          see=entry.see, fields=data)

    for entry in book.crs:
        add(f"crs/{entry.id}", entry)
    for entry in book.icans:
        add(f"icans/{entry.id}", entry)
    add("next_dose", book.next_dose)
    add("delay", book.delay, drop=("rows",))
    for row in book.delay.rows:
        add(f"delay/{row.id}", row)
    add("premed", book.premed)
    if book.tocilizumab is not None:
        add("tocilizumab", book.tocilizumab)
    return found


def diff(default: Rulebook, site: Rulebook) -> list[Change]:
    """The items a site rulebook adds, removes or changes against the default for its product,
    plus changed citations (sources/KEY); unchanged items are not listed."""
    changes: list[Change] = []
    before, after = items(default), items(site)
    for key, old in before.items():
        new = after.get(key)
        if new is None:
            changes.append(Change(key, ChangeKind.REMOVED, (), old, None))
        elif new.fields != old.fields:
            fields = tuple(sorted(f for f in set(old.fields) | set(new.fields)
                                  if old.fields.get(f) != new.fields.get(f)))
            changes.append(Change(key, ChangeKind.CHANGED, fields, old, new))
    changes += [Change(key, ChangeKind.ADDED, (), None, new) for key, new in after.items() if key not in before]
    for name in sorted(set(default.sources) | set(site.sources)):
        old_source, new_source = default.sources.get(name), site.sources.get(name)
        if old_source != new_source:
            kind = (ChangeKind.ADDED if old_source is None else
                    ChangeKind.REMOVED if new_source is None else ChangeKind.CHANGED)
            changes.append(Change(f"sources/{name}", kind, ("citation",) if kind is ChangeKind.CHANGED else (),
                                  _source_item(name, old_source), _source_item(name, new_source)))
    return changes


def _source_item(name: str, citation: str | None) -> Item | None:
    if citation is None:
        return None
    return Item(key=f"sources/{name}", status="", source=name, text=citation, see=None, fields={"citation": citation})


def filled(default: Rulebook, site: Rulebook) -> list[tuple[Item, Item]]:
    """(default, site) pairs where the default says 'not available' and the site gives content."""
    before, after = items(default), items(site)
    return [(old, after[key]) for key, old in before.items()
            if old.status == "not_available" and key in after and after[key].status != "not_available"]


def still_missing(book: Rulebook) -> list[Item]:
    return [item for item in items(book).values() if item.status == "not_available"]
