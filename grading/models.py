"""Pydantic models that flow through parse -> grade -> decide.

Inputs keep `None` for "not stated" everywhere: the grader must be able to tell an absent
finding from an unmentioned one, because treating silence as "absent" under-grades.
"""

from __future__ import annotations

from datetime import date
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Product = Literal["iv", "velo"]
O2Rule = Literal["label", "astct"]
Status = Literal["label", "consensus", "site", "not_available"]


class Device(StrEnum):
    """Oxygen delivery devices named in ASTCT 2019 and the LUNSUMIO CRS table."""

    ROOM_AIR = "ra"
    NASAL_CANNULA = "nc"
    BLOW_BY = "blowby"
    HIGH_FLOW_NC = "hfnc"
    FACEMASK = "facemask"
    NON_REBREATHER = "nrb"
    VENTURI = "venturi"
    CPAP = "cpap"
    BIPAP = "bipap"
    VENTILATOR = "vent"


class Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class SiteSettings(Frozen):
    """Site choices that change how input is read; shown in every reply that used them."""

    sbp_threshold: int = Field(90, ge=60, le=120)
    o2rule: O2Rule = "label"
    product: Product = "iv"


class CrsInput(Frozen):
    """What the clinician stated. `None` means not stated."""

    temp_c: float | None = None
    sbp: int | None = None
    dbp: int | None = None
    fluids: bool | None = None
    pressors: int | None = None
    vasopressin: bool | None = None
    o2_flow: float | None = None
    device: Device | None = None
    o2_comfort: bool | None = None
    spo2: int | None = None
    o2rule: O2Rule | None = None
    masked: bool | None = None
    masked_by: tuple[str, ...] = ()
    product: Product | None = None
    patient: str | None = None
    weight_kg: float | None = None
    recurrent: bool | None = None
    notes: tuple[str, ...] = ()


class Convention(Frozen):
    key: str
    text: str
    source: str


class Finding(Frozen):
    domain: Literal["fever", "hypotension", "hypoxia"]
    level: int
    text: str


class CrsGrade(Frozen):
    """Pure ASTCT result, before any product rulebook is consulted."""

    grade: int | None
    grade_if_fever_masked: int | None
    fever: bool | None
    fever_masked: bool
    at_least: bool
    findings: tuple[Finding, ...]
    driver: str
    unstated: tuple[str, ...]
    conventions: tuple[Convention, ...]
    notes: tuple[str, ...]


class IcansInput(Frozen):
    ice: int | None = None
    loc: Literal["alert", "spontaneous", "voice", "tactile", "unarousable"] | None = None
    seizure: Literal["none", "rapid", "prolonged"] | None = None
    motor: Literal["none", "weakness"] | None = None
    edema: Literal["none", "focal", "diffuse"] | None = None
    product: Product | None = None
    patient: str | None = None
    recurrent: bool | None = None


class IcansFinding(Frozen):
    domain: Literal["ice", "consciousness", "seizure", "motor", "edema"]
    level: int
    text: str


class Action(Frozen):
    """One thing the rulebook says, or says it does not know. Always carries its source."""

    id: str
    text: str
    source: str
    status: Status
    phase: str
    rank: int | None = None  # first-screen order from the rulebook; None: shown under Details only


class RulebookRef(Frozen):
    id: str
    version: str
    product: Product
    title: str
    reviewed_by: str | None = None
    reviewed_on: date | None = None


class TocilizumabDose(Frozen):
    weight_kg: float
    mg: float
    capped: bool
    text: str
    source: str


class CrsReport(Frozen):
    """Everything one `/crs` reply says; the JSON contract of `crsbot grade --json`."""

    kind: Literal["crs"] = "crs"
    input: CrsInput
    product: Product
    grade: int | None
    grade_if_fever_masked: int | None
    at_least: bool
    fever_masked: bool
    driver: str
    findings: tuple[Finding, ...]
    unstated: tuple[str, ...]
    conventions: tuple[Convention, ...]
    notes: tuple[str, ...]
    recurrent: bool
    # What the reply's first screen shows: the top "now" actions, then the next dose. Empty in reports
    # stored before it existed.
    first: tuple[Action, ...] = ()
    management: tuple[Action, ...]
    next_dose: tuple[Action, ...]
    supportive: tuple[Action, ...]
    tocilizumab: TocilizumabDose | None
    rulebook: RulebookRef


class IcansReport(Frozen):
    kind: Literal["icans"] = "icans"
    input: IcansInput
    product: Product
    grade: int | None
    at_least: bool
    findings: tuple[IcansFinding, ...]
    unstated: tuple[str, ...]
    notes: tuple[str, ...]
    recurrent: bool
    management: tuple[Action, ...]
    rulebook: RulebookRef


class Dose(Frozen):
    mg: float
    label: str


class DelayInput(Frozen):
    last: str
    since_days: float
    product: Product | None = None


class DelayReport(Frozen):
    kind: Literal["delay"] = "delay"
    input: DelayInput
    product: Product
    available: bool
    reason: str | None
    next_doses: tuple[Dose, ...]
    then: str | None
    notes: tuple[str, ...]
    source: str
    status: Status
    rulebook: RulebookRef


class PremedInput(Frozen):
    cycle: int
    priorcrs: bool | None = None
    product: Product | None = None


class PremedItem(Frozen):
    name: str
    dose: str
    timing: str


class PremedReport(Frozen):
    kind: Literal["premed"] = "premed"
    input: PremedInput
    product: Product
    available: bool
    required: bool | None
    reason: str
    items: tuple[PremedItem, ...]
    notes: tuple[str, ...]
    source: str
    status: Status
    rulebook: RulebookRef


def stored_report(data: dict[str, object]) -> CrsReport | IcansReport:
    """A graded report read back from the store (written with `model_dump(mode="json")`)."""
    return IcansReport.model_validate(data) if data.get("kind") == "icans" else CrsReport.model_validate(data)
