"""The versioned rulebook: product rules as reviewed data, validated before the bot will use it.

A pharmacist replaces the file, not the code. Validation names the file and the entry, so a
typo in a site's rulebook stops the bot at start-up with a message that says where to look.
"""

from __future__ import annotations

from datetime import date
from functools import cached_property
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from grading.errors import RulebookError
from grading.models import Dose, PremedItem, Product, RulebookRef, Status

Phase = Literal["general", "current_dose", "next_dose", "supportive"]


class Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Sourced(Strict):
    """Anything the bot may say: where it comes from, and whether we actually have its text."""

    status: Status
    source: str
    see: str | None = None

    @model_validator(mode="after")
    def _see_when_missing(self) -> "Sourced":
        if self.status == "not_available" and not self.see:
            raise ValueError("status 'not_available' needs `see` (the label section to consult)")
        return self


class Entry(Sourced):
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9\-]*$")
    phase: Phase
    grades: tuple[int, ...] = ()
    recurrent: bool | None = None
    rank: int | None = Field(None, ge=1, le=9)  # place on the reply's first screen; None: under Details only
    text: str = Field(min_length=3)

    @model_validator(mode="after")
    def _grades_in_range(self) -> "Entry":
        if any(g not in (1, 2, 3, 4) for g in self.grades):
            raise ValueError("grades must be 1-4")
        return self

    def applies(self, grade: int, recurrent: bool) -> bool:
        return (not self.grades or grade in self.grades) and self.recurrent in (None, recurrent)


def recurrent_grades(entries: tuple[Entry, ...]) -> frozenset[int]:
    """The grades for which the rulebook has a recurrent row. Only there does a recurrence change what is
    shown (a recurrent grade 1 or 4 is answered like any other)."""
    return frozenset(g for e in entries if e.recurrent is True for g in e.grades)


class NextDoseRules(Sourced):
    """How long CRS must have been resolved before the next dose, and for which worst grades."""

    symptom_free_hours: float | None = None
    grades: tuple[int, ...] = ()

    def hours_for(self, worst_grade: int | None) -> float | None:
        """The interval for an episode of this worst grade, or None when the rulebook gives none."""
        if self.status == "not_available" or self.symptom_free_hours is None:
            return None
        if self.grades and worst_grade not in self.grades:
            return None
        return self.symptom_free_hours


class DelayRow(Sourced):
    id: str
    last: Literal["C1D1", "C1D8", "C1D15", "C2D1", "C3+D1"]
    min_days: float = 0
    min_inclusive: bool = True
    max_days: float | None = None
    max_inclusive: bool = False
    next: tuple[Dose, ...] = ()
    then: str | None = None

    def covers(self, days: float) -> bool:
        above = days >= self.min_days if self.min_inclusive else days > self.min_days
        below = self.max_days is None or (days <= self.max_days if self.max_inclusive else days < self.max_days)
        return above and below

    @model_validator(mode="after")
    def _doses_when_available(self) -> "DelayRow":
        if self.status != "not_available" and not self.next:
            raise ValueError("a row with text must list its `next` doses")
        return self


class DelayTable(Sourced):
    notes: tuple[str, ...] = ()
    rows: tuple[DelayRow, ...] = ()


class PremedTable(Sourced):
    all_patients_cycles: tuple[int, ...] = ()
    after_crs_from_cycle: int | None = None
    items: tuple[PremedItem, ...] = ()
    notes: tuple[str, ...] = ()


class TocilizumabRule(Sourced):
    mg_per_kg: float = Field(gt=0, le=20)
    max_mg: float = Field(gt=0, le=2000)
    text: str


class Meta(Strict):
    id: str
    version: str
    product: Product
    title: str
    reviewed: str
    # Who signed the rulebook off, and when: required of a site's rulebook (see bot.rulebooks).
    reviewed_by: str | None = Field(None, min_length=3)
    reviewed_on: date | None = None


class Rulebook(Strict):
    rulebook: Meta
    sources: dict[str, str]
    crs: tuple[Entry, ...]
    icans: tuple[Entry, ...]
    next_dose: NextDoseRules
    delay: DelayTable
    premed: PremedTable
    tocilizumab: TocilizumabRule | None = None

    @cached_property
    def ref(self) -> RulebookRef:  # built once: the rulebook is frozen
        m = self.rulebook
        return RulebookRef(id=m.id, version=m.version, product=m.product, title=m.title,
                           reviewed_by=m.reviewed_by, reviewed_on=m.reviewed_on)

    @model_validator(mode="after")
    def _sources_and_ids(self) -> "Rulebook":
        ids: set[str] = set()
        sourced: list[tuple[str, Sourced]] = [(e.id, e) for e in (*self.crs, *self.icans)]
        sourced += [(r.id, r) for r in self.delay.rows]
        sourced += [("next_dose", self.next_dose), ("delay", self.delay), ("premed", self.premed)]
        if self.tocilizumab:
            sourced.append(("tocilizumab", self.tocilizumab))
        for entry_id, item in sourced:
            for key in (k.strip() for k in item.source.split(";")):
                if key not in self.sources:
                    raise ValueError(f"entry '{entry_id}': source '{key}' is not listed in [sources]")
            if entry_id in ids and entry_id not in ("next_dose", "delay", "premed", "tocilizumab"):
                raise ValueError(f"entry '{entry_id}': id used twice")
            ids.add(entry_id)
        return self


def _entry_id(data: dict[str, Any], loc: tuple[int | str, ...]) -> str | None:
    """Walk the raw data along a pydantic error location to find the entry's id (or its section)."""
    node: Any = data
    found: str | None = str(loc[0]) if loc else None
    for part in loc:
        try:
            node = node[part]
        except (KeyError, IndexError, TypeError):
            break
        if isinstance(node, dict) and isinstance(node.get("id"), str):
            found = node["id"]
    return found


def parse_rulebook(data: dict[str, Any], origin: str) -> Rulebook:
    """Validate raw rulebook data; `origin` (usually the file path) is named in every error."""
    try:
        return Rulebook.model_validate(data)
    except ValidationError as exc:
        errors = exc.errors()
        entry = _entry_id(data, tuple(errors[0]["loc"]))
        problems: list[str] = []
        # Every problem of the first faulty entry: a misspelt `txt` shows as "text: Field required"
        # *and* "txt: Extra inputs are not permitted", which together say what to fix.
        for err in errors:
            loc = tuple(err["loc"])
            if _entry_id(data, loc) != entry or len(problems) == 5:
                continue
            message = err["msg"].removeprefix("Value error, ")
            field = ".".join(str(p) for p in loc)
            problems.append(f"{field + ': ' if field else ''}{message}")
        if problems[0].startswith("entry '"):
            entry = None
        raise RulebookError(origin, entry, "; ".join(problems)) from None
