"""From a grade to what the rulebook says to do: the only place product rules are consulted."""

from __future__ import annotations

from grading.models import (
    Action,
    CrsGrade,
    CrsInput,
    CrsReport,
    DelayInput,
    DelayReport,
    IcansInput,
    IcansReport,
    PremedInput,
    PremedReport,
    TocilizumabDose,
)
from grading.icans import grade_icans
from grading.rulebook import Entry, Rulebook, recurrent_grades

NOT_IN_RULEBOOK = "Not in this rulebook"


def as_action(entry: Entry) -> Action:
    if entry.status == "not_available":
        text = f"{NOT_IN_RULEBOOK}: {entry.text[0].lower()}{entry.text[1:]}. See {entry.see}."
    else:
        text = entry.text
    return Action(id=entry.id, text=text, source=entry.source, status=entry.status, phase=entry.phase,
                  rank=entry.rank)


# Rulebooks are immutable once validated, so the actions for (entries, grade, recurrent, phases) are
# built once. The cache keeps a reference to `entries`, so an id() is never reused while cached.
_SELECTED: dict[tuple[int, int, bool, tuple[str, ...]], tuple[tuple[Entry, ...], tuple[Action, ...]]] = {}


def select(entries: tuple[Entry, ...], grade: int, recurrent: bool, phases: tuple[str, ...]) -> tuple[Action, ...]:
    if grade < 1:
        return ()
    key = (id(entries), grade, recurrent, phases)
    hit = _SELECTED.get(key)
    if hit is not None and hit[0] is entries:
        return hit[1]
    # A recurrence matters only for grades with a recurrent row; elsewhere steps marked recurrent=false stay.
    recurrent = recurrent and grade in recurrent_grades(entries)
    actions = tuple(as_action(e) for e in entries if e.phase in phases and e.applies(grade, recurrent))
    if len(_SELECTED) > 4096:  # rulebooks reloaded many times: start over rather than grow
        _SELECTED.clear()
    _SELECTED[key] = (entries, actions)
    return actions


FIRST_NOW = 2  # "now" actions on the first screen, before the one next-dose action


def first_screen(management: tuple[Action, ...], next_dose: tuple[Action, ...]) -> tuple[Action, ...]:
    """The actions that matter most now, ranked by the rulebook: the best two for now, then the next dose."""
    def ranked(actions: tuple[Action, ...]) -> list[Action]:
        return sorted((a for a in actions if a.rank is not None), key=lambda a: a.rank or 0)
    return (*ranked(management)[:FIRST_NOW], *ranked(next_dose)[:1])


def tocilizumab_dose(rulebook: Rulebook, weight_kg: float | None) -> TocilizumabDose | None:
    rule = rulebook.tocilizumab
    if rule is None or weight_kg is None:
        return None
    raw = weight_kg * rule.mg_per_kg
    mg = min(raw, rule.max_mg)
    capped = raw > rule.max_mg
    text = (f"Tocilizumab for {weight_kg:g} kg: {mg:g} mg"
            + (f" (capped at the {rule.max_mg:g} mg maximum)" if capped else f" ({rule.mg_per_kg:g} mg/kg)")
            + f". {rule.text}")
    return TocilizumabDose(weight_kg=weight_kg, mg=round(mg, 1), capped=capped, text=text, source=rule.source)


def basis_grade(graded: CrsGrade) -> int:
    """The grade actions (and reminders, and recurrence) follow: the masked grade when there is no fever,
    because the label says to manage a CRS-like picture as CRS even without fever."""
    return graded.grade or graded.grade_if_fever_masked or 0


def decide_crs(inp: CrsInput, graded: CrsGrade, rulebook: Rulebook, recurrent: bool) -> CrsReport:
    """Actions follow `basis_grade`."""
    basis = basis_grade(graded)
    notes = list(graded.notes)
    if not graded.grade and graded.grade_if_fever_masked:
        notes.append(f"The actions below are those for grade {basis}, in case fever was masked.")
    if recurrent and basis in recurrent_grades(rulebook.crs):
        notes.append(f"Recurrent grade {basis}: a previous CRS episode with this product reached the same grade, "
                     "so the rulebook's recurrent rows apply; steps that presume another dose are not shown.")
    management = select(rulebook.crs, basis, recurrent, ("general", "current_dose"))
    next_dose = select(rulebook.crs, basis, recurrent, ("next_dose",))
    return CrsReport(
        input=inp,
        product=rulebook.rulebook.product,
        grade=graded.grade,
        grade_if_fever_masked=graded.grade_if_fever_masked,
        at_least=graded.at_least,
        fever_masked=graded.fever_masked,
        driver=graded.driver,
        findings=graded.findings,
        unstated=graded.unstated,
        conventions=graded.conventions,
        notes=tuple(notes),
        recurrent=recurrent,
        first=first_screen(management, next_dose),
        management=management,
        next_dose=next_dose,
        supportive=select(rulebook.crs, basis, recurrent, ("supportive",)),
        tocilizumab=tocilizumab_dose(rulebook, inp.weight_kg) if basis >= 1 else None,
        rulebook=rulebook.ref,
    )


def decide_icans(inp: IcansInput, rulebook: Rulebook) -> IcansReport:
    grade, at_least, findings, unstated, notes = grade_icans(inp)
    recurrent = bool(inp.recurrent)
    return IcansReport(
        input=inp,
        product=rulebook.rulebook.product,
        grade=grade,
        at_least=at_least,
        findings=findings,
        unstated=unstated,
        notes=notes,
        recurrent=recurrent,
        management=select(rulebook.icans, grade or 0, recurrent, ("general", "current_dose", "next_dose")),
        rulebook=rulebook.ref,
    )


def decide_delay(inp: DelayInput, rulebook: Rulebook) -> DelayReport:
    table = rulebook.delay
    common = dict(input=inp, product=rulebook.rulebook.product, rulebook=rulebook.ref, notes=table.notes)
    if table.status == "not_available":
        return DelayReport(**common, available=False, reason=f"{NOT_IN_RULEBOOK}: restarting after a dose delay. "
                           f"See {table.see}.", next_doses=(), then=None, source=table.source,
                           status=table.status)
    row = next((r for r in table.rows if r.last == inp.last and r.covers(inp.since_days)), None)
    if row is None:
        covered = [r for r in table.rows if r.last == inp.last]
        shortest = min((r.min_days for r in covered), default=None)
        why = (f"{inp.since_days:g} days since {inp.last} is shorter than the table's first row "
               f"({shortest:g} days): this is not a dose delay in the table's sense."
               if shortest is not None and inp.since_days < shortest
               else f"the dose-delay table has no row for {inp.last} after {inp.since_days:g} days.")
        return DelayReport(**common, available=False, reason=f"{NOT_IN_RULEBOOK}: {why}", next_doses=(),
                           then=None, source=table.source, status=table.status)
    if row.status == "not_available":
        return DelayReport(**common, available=False, reason=f"{NOT_IN_RULEBOOK}: restarting after a delay from "
                           f"{inp.last}. See {row.see}.", next_doses=(), then=None, source=row.source,
                           status=row.status)
    return DelayReport(**common, available=True, reason=None, next_doses=row.next, then=row.then,
                       source=row.source, status=row.status)


def decide_premed(inp: PremedInput, rulebook: Rulebook) -> PremedReport:
    table = rulebook.premed
    common = dict(input=inp, product=rulebook.rulebook.product, rulebook=rulebook.ref, notes=table.notes,
                  source=table.source, status=table.status)
    if table.status == "not_available":
        return PremedReport(**common, available=False, required=None, items=(),
                            reason=f"{NOT_IN_RULEBOOK}: premedication. See {table.see}.")
    if inp.cycle in table.all_patients_cycles:
        return PremedReport(**common, available=True, required=True, items=table.items,
                            reason=f"Cycle {inp.cycle}: every patient is premedicated.")
    if table.after_crs_from_cycle is not None and inp.cycle >= table.after_crs_from_cycle:
        if inp.priorcrs is None:
            return PremedReport(**common, available=True, required=None, items=table.items,
                                reason=f"Cycle {inp.cycle}: premedicate only if CRS of any grade followed the "
                                       "previous dose. Add priorcrs=yes or priorcrs=no.")
        if inp.priorcrs:
            return PremedReport(**common, available=True, required=True, items=table.items,
                                reason=f"Cycle {inp.cycle}: CRS followed the previous dose, so premedicate.")
        return PremedReport(**common, available=True, required=False, items=(),
                            reason=f"Cycle {inp.cycle}: no CRS with the previous dose, so premedication is not "
                                   "required by the label.")
    return PremedReport(**common, available=False, required=None, items=(),
                        reason=f"{NOT_IN_RULEBOOK}: premedication for cycle {inp.cycle}.")
