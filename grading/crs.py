"""ASTCT 2019 CRS grading (reference.md section 2): the most severe finding wins, in a patient
with fever, or whose fever may be masked by premedication or treatment.

Pure: no I/O, no product rules. Every convention the grade depends on is returned with it.
"""

from __future__ import annotations

import math
from functools import lru_cache

from grading.models import Convention, CrsGrade, CrsInput, Device, Finding, SiteSettings

FEVER_C = 38.0

_DEVICE_LEVEL: dict[Device, tuple[int, str]] = {
    Device.ROOM_AIR: (0, "room air"),
    Device.BLOW_BY: (2, "blow-by oxygen (low-flow)"),
    Device.HIGH_FLOW_NC: (3, "high-flow nasal cannula"),
    Device.FACEMASK: (3, "facemask"),
    Device.NON_REBREATHER: (3, "non-rebreather mask"),
    Device.VENTURI: (3, "Venturi mask"),
    Device.CPAP: (4, "CPAP (positive pressure)"),
    Device.BIPAP: (4, "BiPAP (positive pressure)"),
    Device.VENTILATOR: (4, "intubation and mechanical ventilation"),
}

# Each product's own label carries the < 6 / >= 6 L/min footnote (reference.md sections 4 and 5):
# a VELO reply cites the VELO label, never the IV one.
LABEL_NAMES = {"iv": "LUNSUMIO", "velo": "LUNSUMIO VELO"}
LABEL_SOURCES = {"iv": "USPI-IV", "velo": "USPI-VELO"}
O2_CONVENTIONS = {
    "label": "Oxygen: {label} label convention, low-flow < 6 L/min, high-flow >= 6 L/min "
             "(ASTCT puts 6 L/min itself in low-flow).",
    "astct": "Oxygen: ASTCT convention, low-flow <= 6 L/min, high-flow > 6 L/min "
             "(the {label} label puts 6 L/min itself in high-flow).",
}
# Conventions are immutable and depend only on the rule in force and the product: build each once.
O2_CONVENTION = {
    (rule, product): Convention(key="o2rule", text=text.format(label=LABEL_NAMES[product]),
                                source=LABEL_SOURCES[product] if rule == "label" else "ASTCT")
    for rule, text in O2_CONVENTIONS.items() for product in LABEL_NAMES
}
VASOPRESSIN_CONVENTION = Convention(
    key="vasopressin",
    text="Vasopressin never counts toward 'multiple vasopressors': with it, one other vasopressor is "
         "grade 3 and only two or more others make grade 4.",
    source="ASTCT")


@lru_cache(maxsize=64)
def sbp_convention(threshold: int) -> Convention:
    return Convention(
        key="sbp_threshold",
        text=f"Hypotension: systolic < {threshold} mmHg (team setting). ASTCT itself grades "
             "hypotension by the treatment it needs, not by a number.",
        source="ASTCT")


@lru_cache(maxsize=64)
def masked_convention(masked_by: tuple[str, ...], product: str) -> Convention:
    return Convention(
        key="masked_fever",
        text="Fever may be masked (" + (", ".join(masked_by) or "stated") + "): fever is not required; "
             f"graded on hypotension and hypoxia. {LABEL_NAMES[product]} premedication can also hide fever.",
        source=f"ASTCT; {LABEL_SOURCES[product]}")


def _is_high_flow(flow: float, rule: str) -> bool:
    return flow >= 6 if rule == "label" else flow > 6


def hypotension(inp: CrsInput, settings: SiteSettings) -> tuple[Finding | None, list[str], list[Convention]]:
    """Hypotension is graded by the intervention it needs; SBP only says it is present."""
    unstated: list[str] = []
    conventions: list[Convention] = []
    pressors = inp.pressors or 0
    if inp.vasopressin:
        conventions.append(VASOPRESSIN_CONVENTION)
    bp_stated = inp.sbp is not None or inp.fluids is not None
    # `vasopressin=no` says nothing about the other vasopressors, and `pressor=0` says nothing about
    # hypotension managed with fluids: either left unsaid could raise the grade, so list it.
    on_vasopressor = pressors >= 1 or bool(inp.vasopressin)
    if inp.pressors is None:
        unstated.append("vasopressors")
    if not bp_stated and not on_vasopressor:
        unstated.insert(0, "blood pressure")
    if inp.sbp is not None:
        conventions.append(sbp_convention(settings.sbp_threshold))
    if pressors >= 2:
        return Finding(domain="hypotension", level=4,
                       text=f"{pressors} vasopressors (vasopressin not counted)"), unstated, conventions
    if pressors == 1 or inp.vasopressin:
        what = "1 vasopressor" + (" plus vasopressin" if pressors == 1 and inp.vasopressin else "")
        if pressors == 0:
            what = "vasopressin as the only vasopressor"
        return Finding(domain="hypotension", level=3, text=what), unstated, conventions
    low_sbp = inp.sbp is not None and inp.sbp < settings.sbp_threshold
    if inp.fluids or low_sbp:
        why = []
        if low_sbp:
            why.append(f"SBP {inp.sbp} mmHg")
        if inp.fluids:
            why.append("needing fluids")
        return Finding(domain="hypotension", level=2,
                       text="hypotension not needing a vasopressor (" + ", ".join(why) + ")"), unstated, conventions
    return None, unstated, conventions


def celsius_text(temp_c: float) -> str:
    """A temperature as shown beside the fever verdict: one decimal, unless rounding would carry it across
    the threshold (100.39 F is 37.994 C: shown "37.99 C", never "38.0 C" beside "no fever")."""
    shown = f"{temp_c:.1f}"
    if temp_c < FEVER_C <= float(shown):
        return f"{math.floor(temp_c * 100) / 100:.2f} C"
    return f"{shown} C"


def litres(flow: float) -> str:
    """A flow as typed, never rounded: `:g` would show 5.9999999 L/min (low-flow) as "6" (high-flow)."""
    text = repr(float(flow))
    return text[:-2] if text.endswith(".0") else text


def _device_level(device: Device, flow: float | None, rule: str) -> tuple[int, str]:
    """The grade a device gives and its name as shown; a nasal cannula is low- or high-flow by its flow."""
    if device in _DEVICE_LEVEL:
        level, name = _DEVICE_LEVEL[device]
        if flow is not None and device != Device.BLOW_BY:
            name += f" at {litres(flow)} L/min"
        return level, name
    high = flow is not None and _is_high_flow(flow, rule)
    return (3 if high else 2), f"{'high' if high else 'low'}-flow oxygen {litres(flow)} L/min by nasal cannula" \
        if flow is not None else "nasal cannula, flow not stated (low-flow)"


def hypoxia(inp: CrsInput, settings: SiteSettings) -> tuple[Finding | None, list[str], list[Convention], list[str]]:
    """Hypoxia is graded by the oxygen support given (the intervention, not a number); the 6 L/min boundary
    follows the active rule. Oxygen given only for comfort does not count (reference.md section 2)."""
    rule = inp.o2rule or settings.o2rule
    conventions = [O2_CONVENTION[rule, inp.product or settings.product]]
    notes: list[str] = []
    if inp.spo2 is not None:
        notes.append(f"SpO2 {inp.spo2}% was noted but does not grade hypoxia: ASTCT grades the oxygen support "
                     "given (state it with o2= and device=).")
    if inp.o2_comfort:
        given = inp.device is not None or inp.o2_flow is not None
        what = _device_level(inp.device, inp.o2_flow, rule)[1] if inp.device else (
            f"{litres(inp.o2_flow)} L/min" if inp.o2_flow is not None else "oxygen")
        notes.append(f"{what[0].upper()}{what[1:]} given for comfort only: does not count toward the CRS grade "
                     "(ASTCT). If it treats low oxygen, leave out o2comfort=yes.")
        if given and inp.device is not None and _device_level(inp.device, inp.o2_flow, rule)[0] >= 3:
            level = _device_level(inp.device, inp.o2_flow, rule)[0]
            notes.append(f"Counted as treatment for low oxygen, {what} would be grade {level}.")
        return None, [], conventions, notes
    if inp.device is None and inp.o2_flow is None:
        return None, ["oxygen"], conventions, notes
    if inp.o2_flow == 6 and inp.device in (None, Device.NASAL_CANNULA):
        high = _is_high_flow(6, rule)
        other = "astct" if rule == "label" else "label"
        notes.append(f"6 L/min is exactly on the boundary: grade {3 if high else 2} under the {rule} convention, "
                     f"grade {2 if high else 3} under the {other} convention.")
    if inp.device is not None:
        level, name = _device_level(inp.device, inp.o2_flow, rule)
        if inp.device == Device.NASAL_CANNULA and inp.o2_flow is None:
            notes.append("Nasal cannula flow not stated: counted as low-flow (grade 2). At "
                         + ("6 L/min or more" if rule == "label" else "more than 6 L/min")
                         + " it would be high-flow (grade 3).")
            return Finding(domain="hypoxia", level=2, text=name), ["oxygen flow"], conventions, notes
        return (Finding(domain="hypoxia", level=level, text=name) if level else None), [], conventions, notes
    # A flow with no device: the device decides the grade (by Venturi or facemask any flow is grade 3), so the
    # flow alone grades as a nasal cannula would, "at least", and says the device was not stated.
    flow = inp.o2_flow
    assert flow is not None
    if flow == 0:
        return None, [], conventions, notes
    high = _is_high_flow(flow, rule)
    if not high:
        notes.append(f"Oxygen {litres(flow)} L/min with no device stated: graded as low-flow nasal cannula (grade 2); "
                     "by facemask, Venturi or non-rebreather mask it is grade 3, by CPAP/BiPAP grade 4. "
                     "Add device=.")
    name = f"{'high' if high else 'low'}-flow oxygen {litres(flow)} L/min (device not stated)"
    return Finding(domain="hypoxia", level=3 if high else 2, text=name), ["oxygen device"], conventions, notes


def grade_crs(inp: CrsInput, settings: SiteSettings) -> CrsGrade:
    """Grade = most severe of hypotension and hypoxia, in a febrile (or fever-masked) patient."""
    hypo_bp, unstated_bp, conv_bp = hypotension(inp, settings)
    hypo_o2, unstated_o2, conv_o2, notes = hypoxia(inp, settings)
    notes = list(inp.notes) + notes
    conventions = conv_o2 + conv_bp
    organ = [f for f in (hypo_bp, hypo_o2) if f is not None]
    level = max((f.level for f in organ), default=0)
    unstated = list(unstated_bp) + list(unstated_o2)
    fever = None if inp.temp_c is None else inp.temp_c >= FEVER_C
    masked = bool(inp.masked)
    findings: list[Finding] = []
    if fever:
        findings.append(Finding(domain="fever", level=1, text=f"fever {celsius_text(inp.temp_c)}"))
    findings += organ
    at_least = any(u in unstated for u in ("blood pressure", "vasopressors", "oxygen", "oxygen flow", "oxygen device"))

    if masked:
        conventions.insert(0, masked_convention(inp.masked_by, inp.product or settings.product))
        grade: int | None = max(level, 1 if fever else 0)
        if grade == 0:
            notes.append("Fever may be masked and no hypotension or hypoxia was stated: CRS is not excluded.")
        grade_if_masked = None
    elif fever is None:
        unstated.insert(0, "temperature")
        grade = None
        grade_if_masked = level or None
    elif fever:
        grade = max(level, 1)
        grade_if_masked = None
    else:
        grade = 0
        grade_if_masked = level or None

    if grade_if_masked:
        lead = f"No fever recorded ({celsius_text(inp.temp_c)})" if inp.temp_c is not None else "Temperature not stated"
        notes.insert(0, f"{lead}, but {' and '.join(f.text for f in organ)}: if fever was masked by premedication, "
                        f"antipyretics, tocilizumab or steroids, this is grade {grade_if_masked}. "
                        "Add masked=yes if so.")
    shown = grade or grade_if_masked  # the grade the reply leads with
    if organ and level == shown:
        driver = " and ".join(f.text for f in organ if f.level == level)
    elif grade is None:
        driver = "temperature not stated"
    elif fever:
        driver = findings[0].text
    else:
        driver = f"no fever ({celsius_text(inp.temp_c)})" if inp.temp_c is not None else "no qualifying finding"
    return CrsGrade(
        grade=grade,
        grade_if_fever_masked=grade_if_masked,
        fever=fever,
        fever_masked=masked,
        # An unmasked afebrile grade 0 is exact by ASTCT; the grade if fever is masked is what may be higher.
        at_least=at_least and (bool(grade) or (grade == 0 and masked) or grade_if_masked is not None),
        findings=tuple(findings),
        driver=driver,
        unstated=tuple(unstated),
        conventions=tuple(conventions),
        notes=tuple(notes),
    )
