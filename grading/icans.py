"""ASTCT 2019 ICANS grading for adults (reference.md section 3): the most severe domain wins."""

from __future__ import annotations

from grading.models import IcansFinding, IcansInput

_LOC = {
    "alert": (0, "alert"),
    "spontaneous": (1, "depressed consciousness, awakens spontaneously"),
    "voice": (2, "depressed consciousness, awakens to voice"),
    "tactile": (3, "depressed consciousness, awakens only to touch"),
    "unarousable": (4, "unarousable, or needs vigorous or repeated stimuli (stupor or coma)"),
}
_SEIZURE = {
    "none": (0, "no seizure"),
    "rapid": (3, "seizure that resolved rapidly, or non-convulsive seizure on EEG resolving with intervention"),
    "prolonged": (4, "prolonged (> 5 min) or repetitive seizures without return to baseline"),
}
_MOTOR = {"none": (0, "no motor weakness"), "weakness": (4, "deep focal motor weakness")}
_EDEMA = {
    "none": (0, "no cerebral edema"),
    "focal": (3, "focal or local edema on imaging"),
    "diffuse": (4, "diffuse cerebral edema, or posturing, CN VI palsy, papilledema, Cushing's triad"),
}

NOTES = (
    "Depressed consciousness counts only if nothing else (such as sedation) explains it.",
    "Tremor and myoclonus do not count toward ICANS; intracranial hemorrhage is not ICANS.",
    "The ICE score is for patients aged 12 or more with adequate baseline cognition.",
)


def _ice_level(ice: int, loc: str | None) -> tuple[int, str]:
    if ice == 10:
        return 0, "ICE 10/10"
    if ice >= 7:
        return 1, f"ICE {ice}/10"
    if ice >= 3:
        return 2, f"ICE {ice}/10"
    if ice == 0 and loc == "unarousable":
        return 4, "ICE 0 because unarousable"
    return 3, f"ICE {ice}/10" + (" (awake: e.g. global aphasia)" if ice == 0 else "")


def grade_icans(inp: IcansInput) -> tuple[int | None, bool, tuple[IcansFinding, ...], tuple[str, ...], tuple[str, ...]]:
    """Return (grade, at_least, findings, unstated, notes)."""
    findings: list[IcansFinding] = []
    unstated: list[str] = []
    if inp.ice is not None:
        level, text = _ice_level(inp.ice, inp.loc)
        findings.append(IcansFinding(domain="ice", level=level, text=text))
    else:
        unstated.append("ICE score")
    for domain, value, table, label in (
        ("consciousness", inp.loc, _LOC, "level of consciousness"),
        ("seizure", inp.seizure, _SEIZURE, "seizure"),
        ("motor", inp.motor, _MOTOR, "motor findings"),
        ("edema", inp.edema, _EDEMA, "cerebral edema / raised ICP"),
    ):
        if value is None:
            unstated.append(label)
            continue
        level, text = table[value]
        findings.append(IcansFinding(domain=domain, level=level, text=text))  # type: ignore[arg-type]
    grade = max((f.level for f in findings), default=0)
    notes = list(NOTES)
    if inp.ice == 0 and inp.loc is None:
        notes.insert(0, "ICE 0 graded 3 (awake patient unable to perform ICE). If the patient is unarousable, "
                        "add loc=unarousable: that is grade 4.")
    return grade, bool(unstated), tuple(f for f in findings if f.level), tuple(unstated), tuple(notes)
