"""The `/crs` grammar shared by Slack, the CLI and the form: `key=value` pairs in any order.

Each command declares its keys as data (`KeySpec`); one tokenizer and one set of value readers
serve all of them, so every error names the key, the accepted form and an example.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

from grading.crs import celsius_text
from grading.errors import InputError
from grading.models import CrsInput, DelayInput, Device, IcansInput, PremedInput

TRUE = {"yes", "y", "true", "1", "on"}
FALSE = {"no", "n", "false", "0", "off"}
BOOL_FORM = "yes/no (also y/n, true/false, 1/0)"

Reader = Callable[[str, str], Any]


@dataclass(frozen=True)
class KeySpec:
    """One key of a command: its names, how to read its value, and how to show it to a person."""

    field: str
    names: tuple[str, ...]
    read: Reader
    accepted: str
    example: str


class Token(NamedTuple):  # a NamedTuple: built once per word typed, so cheap matters
    key: str
    value: str
    raw: str


_SPACED_SEPARATOR = re.compile(r"\s*([=:])\s*")
_HAS_SPACED_SEPARATOR = re.compile(r"\s[=:]|[=:]\s")
_PAIR = re.compile(r"^([^=:]+)[=:](.*)$")


def tokenize(text: str) -> list[Token]:
    """Split `a=1 b:2` into tokens; tolerate `a = 1` (phones insert spaces)."""
    # Smart quotes become spaces (not nothing), so every key read is a substring of what was typed.
    cleaned = text.replace("\u201c", " ").replace("\u201d", " ").strip()
    if _HAS_SPACED_SEPARATOR.search(cleaned):
        cleaned = _SPACED_SEPARATOR.sub(r"\1", cleaned)
    tokens: list[Token] = []
    for raw in cleaned.split():
        match = _PAIR.match(raw)
        if match is None:
            raise InputError(
                None,
                f"`{raw}` is not a `key=value` pair.",
                "space-separated key=value pairs (`:` also works)",
                "temp=39 sbp=85 pressor=1",
            )
        key, value = match.group(1).lower(), match.group(2).strip().lower()
        if not value:
            raise InputError(key, "has no value after `=`.", "key=value", f"{key}=...")
        tokens.append(Token(key, value, raw))
    return tokens


def parse_pairs(text: str, specs: list[KeySpec], example: str) -> tuple[dict[str, Any], dict[str, str]]:
    """Read every token with its spec; returns field values plus, per field, the key as typed
    (so later errors name the key the person actually wrote)."""
    by_name = _index(specs)
    values: dict[str, Any] = {}
    seen: dict[str, str] = {}
    for token in tokenize(text):
        spec = by_name.get(token.key)
        if spec is None:
            guess = difflib.get_close_matches(token.key, list(by_name), n=1, cutoff=0.6)
            hint = f" Did you mean `{guess[0]}`?" if guess else ""
            known = ", ".join(s.names[0] for s in specs)
            raise InputError(token.key, f"is not a key this command knows.{hint}", f"keys: {known}", example)
        value = spec.read(token.key, token.value)
        # Merged fields accept several different keys (masked=yes toci=yes), but not one key twice.
        slot = spec.names[0] if spec.field in _MERGED_FIELDS else spec.field
        if slot in seen:
            raise InputError(
                token.key,
                f"is given twice (also as `{seen[slot]}`).",
                spec.accepted,
                spec.example,
            )
        seen[slot] = token.key
        if spec.field in _MERGED_FIELDS:
            values.setdefault(spec.field, []).append((token.key, value))
        else:
            values[spec.field] = value
    return values, seen


# Fields several keys may feed (masked=yes toci=yes): their values are collected, not clashing.
_MERGED_FIELDS = {"masked"}

_INDEXES: dict[int, tuple[list[KeySpec], dict[str, KeySpec]]] = {}


def _index(specs: list[KeySpec]) -> dict[str, KeySpec]:
    """name -> spec, built once per command's key list (the lists are module constants)."""
    hit = _INDEXES.get(id(specs))
    if hit is not None and hit[0] is specs:
        return hit[1]
    index = {name: spec for spec in specs for name in spec.names}
    _INDEXES[id(specs)] = (specs, index)
    return index


_DECIMAL = re.compile(r"(\d+(?:\.\d+)?)")
_DIGITS = re.compile(r"\d+")
_TEMP = re.compile(r"(\d+(?:\.\d+)?)\s*(?:°|deg)?\s*([cf]?)")
_BP = re.compile(r"(\d{1,3})(?:/(\d{1,3}))?")
_ONE_DIGIT = re.compile(r"\d")
_FLOW = re.compile(r"(\d+(?:\.\d+)?)\s*(?:l|lpm|l/min|lmin)?")
_WEIGHT = re.compile(r"(\d+(?:\.\d+)?)\s*(kg|lb|lbs)?")


def _number(key: str, raw: str, low: float, high: float, unit: str, example: str) -> float:
    match = _DECIMAL.fullmatch(raw)
    if match is None:
        raise InputError(key, f"`{raw}` is not a number.", f"a number of {unit} from {low:g} to {high:g}", example)
    value = float(match.group(1))
    if not low <= value <= high:
        raise InputError(
            key,
            f"{value:g} {unit} is not physiologically possible here; values are refused, not clamped.",
            f"{low:g} to {high:g} {unit}",
            example,
        )
    return value


def _whole(key: str, raw: str, low: int, high: int, unit: str, example: str) -> int:
    if not _DIGITS.fullmatch(raw):
        raise InputError(key, f"`{raw}` is not a whole number.", f"{low} to {high} {unit}", example)
    # Guard before int(): a very long digit string would raise ValueError (int max str digits).
    value = int(raw) if len(raw) <= 9 else None
    if value is None or not low <= value <= high:
        raise InputError(key, f"{raw[:10] + '...' if value is None else value} is outside {low} to {high}.",
                         f"{low} to {high} {unit}", example)
    return value


def read_bool(key: str, raw: str) -> bool:
    if raw in TRUE:
        return True
    if raw in FALSE:
        return False
    raise InputError(key, f"`{raw}` is not yes or no.", BOOL_FORM, f"{key}=yes")


def read_temp(key: str, raw: str) -> tuple[float, str | None]:
    """Return (Celsius, note). A bare number's unit is inferred from its range and said aloud."""
    example = f"{key}=39 (Celsius) or {key}=101.3f"
    accepted = "Celsius 30-45 or Fahrenheit 86-113; a unit suffix c or f is optional"
    match = _TEMP.fullmatch(raw)
    if match is None:
        raise InputError(key, f"`{raw}` is not a temperature.", accepted, example)
    value, unit = float(match.group(1)), match.group(2)
    if unit == "c" or (not unit and 30 <= value <= 45):
        if not 30 <= value <= 45:
            raise InputError(key, f"{value:g} C is not a possible body temperature.", accepted, example)
        note = None if unit else f"Temperature {value:g} read as Celsius (a bare number from 30 to 45)."
        return value, note  # as typed: rounding could lift 37.996 C to a 38.0 C fever
    if unit == "f" or (not unit and 86 <= value <= 113):
        if not 86 <= value <= 113:
            raise InputError(key, f"{value:g} F is not a possible body temperature.", accepted, example)
        celsius = round((value - 32) * 5 / 9, 6)  # 6 places only drops float noise; 2 lifted 100.399 F to fever
        # Shown with celsius_text, so the conversion never reads as a fever the verdict denies.
        note = None if unit else f"Temperature {value:g} read as Fahrenheit (= {celsius_text(celsius)})."
        if unit:
            note = f"Temperature {value:g} F = {celsius_text(celsius)}."
        return celsius, note
    raise InputError(key, f"{value:g} is neither a Celsius nor a Fahrenheit body temperature.", accepted, example)


def read_sbp(key: str, raw: str) -> tuple[int, int | None]:
    example = "sbp=85 or bp=85/50"
    match = _BP.fullmatch(raw)
    if match is None:
        raise InputError(key, f"`{raw}` is not a blood pressure.", "systolic mmHg, or systolic/diastolic", example)
    systolic = int(match.group(1))
    diastolic = int(match.group(2)) if match.group(2) else None
    if not 30 <= systolic <= 300:
        raise InputError(key, f"systolic {systolic} mmHg is not possible; values are refused, not clamped.",
                         "systolic 30-300 mmHg", example)
    if diastolic is not None and not 10 <= diastolic < systolic:
        raise InputError(key, f"diastolic {diastolic} must be from 10 up to below the systolic {systolic}.",
                         "systolic/diastolic mmHg", example)
    return systolic, diastolic


def read_pressors(key: str, raw: str) -> tuple[int, str | None]:
    if _ONE_DIGIT.fullmatch(raw) and int(raw) <= 6:
        return int(raw), None
    if raw in TRUE:
        return 1, "`pressor=yes` counted as one vasopressor; give the number if more than one."
    if raw in FALSE:
        return 0, None
    raise InputError(key, f"`{raw}` is not a number of vasopressors.",
                     "0-6, counting vasopressors other than vasopressin", "pressor=1 vasopressin=yes")


_DEVICE_NAMES: dict[str, Device] = {
    **{n: Device.ROOM_AIR for n in ("ra", "roomair", "room-air", "none", "off")},
    **{n: Device.NASAL_CANNULA for n in ("nc", "nasal", "cannula", "lfnc", "lowflow", "low-flow")},
    **{n: Device.BLOW_BY for n in ("blowby", "blow-by")},
    **{n: Device.HIGH_FLOW_NC for n in ("hfnc", "highflow", "high-flow", "optiflow", "hfo")},
    **{n: Device.FACEMASK for n in ("facemask", "mask", "fm", "simplemask")},
    **{n: Device.NON_REBREATHER for n in ("nrb", "nonrebreather", "non-rebreather", "nrm")},
    **{n: Device.VENTURI for n in ("venturi", "vm")},
    **{n: Device.CPAP for n in ("cpap",)},
    **{n: Device.BIPAP for n in ("bipap", "niv", "bpap")},
    **{n: Device.VENTILATOR for n in ("vent", "intubated", "ventilator", "mv", "ett", "mechanical")},
}
DEVICE_FORM = "ra, nc, blowby, hfnc, facemask (mask), nrb, venturi, cpap, bipap, vent (intubated)"


def read_device(key: str, raw: str) -> Device:
    if raw in _DEVICE_NAMES:
        return _DEVICE_NAMES[raw]
    guess = difflib.get_close_matches(raw, list(_DEVICE_NAMES), n=1, cutoff=0.6)
    hint = f" Did you mean `{guess[0]}`?" if guess else ""
    raise InputError(key, f"`{raw}` is not an oxygen device.{hint}", DEVICE_FORM, "o2=4 device=nc")


def read_o2(key: str, raw: str) -> tuple[float | None, Device | None]:
    """`o2=4`, `o2=4l`, `o2=4lpm` is a flow; `o2=nc` is a device."""
    match = _FLOW.fullmatch(raw)
    if match is None:
        return None, read_device(key, raw)
    flow = float(match.group(1))
    if flow > 80:
        raise InputError(key, f"{flow:g} L/min is beyond any oxygen device; values are refused, not clamped.",
                         "a flow of 0-80 L/min, or a device name", "o2=4 device=nc")
    return flow, None


def read_choice(choices: dict[str, str], example: str) -> Reader:
    def read(key: str, raw: str) -> str:
        if raw in choices:
            return choices[raw]
        accepted = ", ".join(sorted(set(choices.values())))
        raise InputError(key, f"`{raw}` is not one of the accepted values.", accepted, example)

    return read


PRODUCTS = {"iv": "iv", "intravenous": "iv", "lunsumio": "iv", "velo": "velo", "sc": "velo", "subq": "velo",
            "subcutaneous": "velo"}
read_product = read_choice(PRODUCTS, "product=iv")


PATIENT_KEYS = ("patient", "pt", "bed")


def read_patient(key: str, raw: str) -> str:
    if not re.fullmatch(r"[a-z0-9][a-z0-9_\-/.]{0,23}", raw):
        raise InputError(key, f"`{raw}` is not a bed or study label.",
                         "letters, digits and - _ / . (up to 24 characters)", "patient=bed12")
    return raw


def read_weight(key: str, raw: str) -> tuple[float, str | None]:
    match = _WEIGHT.fullmatch(raw)
    if match is None:
        raise InputError(key, f"`{raw}` is not a weight.", "kilograms 2-350 (or pounds with lb)", "weight=72")
    value = float(match.group(1))
    note = None
    if match.group(2) in ("lb", "lbs"):
        value, note = round(value * 0.45359237, 1), f"Weight {match.group(1)} lb = {value * 0.45359237:.1f} kg."
    if not 2 <= value <= 350:
        raise InputError(key, f"{value:g} kg is not a possible weight.", "kilograms 2-350", "weight=72")
    return value, note


def read_spo2(key: str, raw: str) -> int:
    return int(_number(key, raw.rstrip("%"), 30, 100, "%", "spo2=91"))


CRS_EXAMPLE = "temp=39 sbp=85 pressor=1 o2=4 device=nc"
CRS_KEYS: list[KeySpec] = [
    KeySpec("temp", ("temp", "t", "temperature"), read_temp, "Celsius 30-45 or Fahrenheit 86-113", "temp=39"),
    KeySpec("sbp", ("sbp", "bp"), read_sbp, "systolic mmHg, or bp=systolic/diastolic", "sbp=85"),
    KeySpec("fluids", ("fluids", "fluid", "bolus"), read_bool, BOOL_FORM, "fluids=yes"),
    KeySpec("pressors", ("pressor", "pressors", "vasopressors", "vasopressor"), read_pressors,
            "0-6 vasopressors other than vasopressin", "pressor=1"),
    KeySpec("vasopressin", ("vasopressin", "vaso"), read_bool, BOOL_FORM, "vasopressin=yes"),
    KeySpec("o2", ("o2", "oxygen", "flow"), read_o2, "a flow in L/min or a device", "o2=4"),
    KeySpec("device", ("device", "dev"), read_device, DEVICE_FORM, "device=nc"),
    KeySpec("o2_comfort", ("o2comfort", "comfort"), read_bool, BOOL_FORM, "o2comfort=yes"),
    KeySpec("spo2", ("spo2", "sat", "sats"), read_spo2, "30-100 %", "spo2=91"),
    KeySpec("o2rule", ("o2rule", "o2convention"), read_choice({"label": "label", "astct": "astct"}, "o2rule=label"),
            "label or astct", "o2rule=astct"),
    KeySpec("masked", ("masked",), read_bool, BOOL_FORM, "masked=yes"),
    KeySpec("masked", ("toci", "tocilizumab"), read_bool, BOOL_FORM, "toci=yes"),
    KeySpec("masked", ("steroids", "steroid", "dex"), read_bool, BOOL_FORM, "steroids=yes"),
    KeySpec("masked", ("antipyretic", "antipyretics", "paracetamol", "acetaminophen", "premed", "premedicated"),
            read_bool, BOOL_FORM, "antipyretic=yes"),
    KeySpec("product", ("product",), read_product, "iv or velo", "product=iv"),
    KeySpec("patient", PATIENT_KEYS, read_patient, "a bed or study label", "patient=bed12"),
    KeySpec("weight", ("weight", "wt", "kg"), read_weight, "kilograms", "weight=72"),
    KeySpec("recurrent", ("recurrent", "recurrence"), read_bool, BOOL_FORM, "recurrent=yes"),
]

_MASK_REASON = {
    "masked": "stated as masked", "toci": "tocilizumab", "tocilizumab": "tocilizumab",
    "steroids": "corticosteroids", "steroid": "corticosteroids", "dex": "corticosteroids",
    **{k: "antipyretic or premedication"
       for k in ("antipyretic", "antipyretics", "paracetamol", "acetaminophen", "premed", "premedicated")},
}


def parse_crs(text: str) -> CrsInput:
    """Parse the text after `/crs` into a `CrsInput`; raise `InputError` naming the key otherwise."""
    values, typed = parse_pairs(text, CRS_KEYS, CRS_EXAMPLE)
    if not values:
        raise InputError(None, "nothing to grade.", "key=value pairs for the findings you have", CRS_EXAMPLE)
    notes: list[str] = []
    fields: dict[str, Any] = {}
    if "temp" in values:
        fields["temp_c"], note = values["temp"]
        notes += [note] if note else []
    if "sbp" in values:
        fields["sbp"], fields["dbp"] = values["sbp"]
    if "pressors" in values:
        fields["pressors"], note = values["pressors"]
        notes += [note] if note else []
    if "weight" in values:
        fields["weight_kg"], note = values["weight"]
        notes += [note] if note else []
    flow, o2_device = values.get("o2", (None, None))
    device = values.get("device")
    if o2_device is not None and device is not None and o2_device != device:
        raise InputError(typed["device"], f"says `{device.value}` but `{typed['o2']}` says `{o2_device.value}`.",
                         "one device, with the flow in o2=", "o2=4 device=nc")
    device = device or o2_device
    if flow and device == Device.ROOM_AIR:
        raise InputError(typed["o2"], f"gives {flow:g} L/min but the device is room air.",
                         "a flow with a device, or device=ra alone", "o2=4 device=nc")
    if flow == 0 and device not in (None, Device.ROOM_AIR):
        raise InputError(typed["o2"], f"says no oxygen (0 L/min) but the device is `{device.value}`.",
                         "the flow given by the device, or o2=0 (or device=ra) when no oxygen is given",
                         f"o2=40 device={device.value}")
    comfort = values.get("o2_comfort")
    if comfort and (flow == 0 or device == Device.ROOM_AIR or (flow is None and device is None)):
        said = "no oxygen is given" if flow == 0 or device == Device.ROOM_AIR else "no oxygen is stated"
        raise InputError(typed["o2_comfort"], f"says oxygen is given for comfort only, but {said}.",
                         "o2comfort=yes with the oxygen it describes (o2= and device=)", "o2=2 device=nc o2comfort=yes")
    if "masked" in values:
        fields["masked"] = any(said for _, said in values["masked"])
        fields["masked_by"] = tuple(dict.fromkeys(_MASK_REASON[key] for key, said in values["masked"] if said))
    for name in ("fluids", "vasopressin", "o2_comfort", "spo2", "o2rule", "product", "patient", "recurrent"):
        if name in values:
            fields[name] = values[name]
    return CrsInput(o2_flow=flow, device=device, notes=tuple(notes), **fields)


ICANS_EXAMPLE = "icans ice=6 loc=voice"
ICANS_KEYS: list[KeySpec] = [
    KeySpec("ice", ("ice", "ice_score", "icescore"), lambda k, r: _whole(k, r, 0, 10, "points", "ice=7"),
            "a whole number 0-10", "ice=7"),
    KeySpec("loc", ("loc", "consciousness", "conscious"), read_choice(
        {"alert": "alert", "awake": "alert", "normal": "alert", "spontaneous": "spontaneous",
         "spontaneously": "spontaneous", "voice": "voice", "tactile": "tactile", "touch": "tactile",
         "unarousable": "unarousable", "coma": "unarousable", "stupor": "unarousable"}, "loc=voice"),
        "alert, spontaneous, voice, tactile, unarousable", "loc=voice"),
    KeySpec("seizure", ("seizure", "seizures", "sz"), read_choice(
        {"none": "none", "no": "none", "rapid": "rapid", "resolved": "rapid", "nonconvulsive": "rapid",
         "prolonged": "prolonged", "repetitive": "prolonged", "status": "prolonged"}, "seizure=rapid"),
        "none, rapid (resolves rapidly, or non-convulsive on EEG resolving with intervention), "
        "prolonged (> 5 min, or repetitive without return to baseline)", "seizure=rapid"),
    KeySpec("motor", ("motor", "weakness"), read_choice(
        {"none": "none", "no": "none", "weakness": "weakness", "yes": "weakness", "hemiparesis": "weakness",
         "paraparesis": "weakness"}, "motor=weakness"),
        "none, weakness (deep focal motor weakness)", "motor=weakness"),
    KeySpec("edema", ("edema", "oedema", "icp"), read_choice(
        {"none": "none", "no": "none", "focal": "focal", "local": "focal", "diffuse": "diffuse"}, "edema=focal"),
        "none, focal, diffuse", "edema=focal"),
    KeySpec("product", ("product",), read_product, "iv or velo", "product=iv"),
    KeySpec("patient", PATIENT_KEYS, read_patient, "a bed or study label", "patient=bed12"),
    KeySpec("recurrent", ("recurrent", "recurrence"), read_bool, BOOL_FORM, "recurrent=yes"),
]


def parse_icans(text: str) -> IcansInput:
    values, _ = parse_pairs(text, ICANS_KEYS, ICANS_EXAMPLE)
    if not set(values) & {"ice", "loc", "seizure", "motor", "edema"}:
        raise InputError(None, "nothing to grade for ICANS.", "ice, loc, seizure, motor, edema", ICANS_EXAMPLE)
    return IcansInput(**values)


DELAY_EXAMPLE = "delay last=c1d8 since=10d"


def read_dose_label(key: str, raw: str) -> str:
    """Normalise a dose position; every cycle from 3 on shares one row (the 30 mg doses)."""
    match = re.fullmatch(r"c(\d{1,2})d(\d{1,2})", raw)
    accepted = "c1d1, c1d8, c1d15, c2d1, or cNd1 for cycle 3 onward"
    if match is None:
        raise InputError(key, f"`{raw}` is not a dose position.", accepted, DELAY_EXAMPLE)
    cycle, day = int(match.group(1)), int(match.group(2))
    if (cycle, day) in ((1, 1), (1, 8), (1, 15), (2, 1)):
        return f"C{cycle}D{day}"
    if 3 <= cycle <= 17 and day == 1:
        return "C3+D1"
    raise InputError(key, f"`{raw}` is not a dose in the LUNSUMIO schedule.", accepted, DELAY_EXAMPLE)


def read_since(key: str, raw: str) -> float:
    match = re.fullmatch(r"(?:(\d+(?:\.\d+)?)w)?(?:(\d+(?:\.\d+)?)d)?", raw)
    if match is None or not any(match.groups()):
        raise InputError(key, f"`{raw}` is not a time since the last dose (a unit is required).",
                         "days or weeks: 10d, 3w, 2w3d", DELAY_EXAMPLE)
    days = float(match.group(1) or 0) * 7 + float(match.group(2) or 0)
    if days > 3650:
        raise InputError(key, f"{days:g} days is more than ten years.", "days or weeks: 10d, 3w", DELAY_EXAMPLE)
    return days


DELAY_KEYS: list[KeySpec] = [
    KeySpec("last", ("last", "lastdose"), read_dose_label, "c1d1, c1d8, c1d15, c2d1, cNd1", "last=c1d8"),
    KeySpec("since_days", ("since", "ago", "delay"), read_since, "days or weeks: 10d, 3w", "since=10d"),
    KeySpec("product", ("product",), read_product, "iv or velo", "product=iv"),
]


def parse_delay(text: str) -> DelayInput:
    values, _ = parse_pairs(text, DELAY_KEYS, DELAY_EXAMPLE)
    for needed in ("last", "since_days"):
        if needed not in values:
            spec = next(s for s in DELAY_KEYS if s.field == needed)
            # key=None: `InputError.key` is a key that was typed; a missing one is named in the text.
            raise InputError(None, f"`{spec.names[0]}` is required.", spec.accepted, DELAY_EXAMPLE)
    return DelayInput(**values)


PREMED_EXAMPLE = "premed cycle=3 priorcrs=yes"
PREMED_KEYS: list[KeySpec] = [
    KeySpec("cycle", ("cycle", "c"), lambda k, r: _whole(k, r, 1, 17, "(cycle number)", "cycle=3"),
            "a cycle number 1-17", "cycle=3"),
    KeySpec("priorcrs", ("priorcrs", "prior_crs", "crs"), read_bool, BOOL_FORM, "priorcrs=yes"),
    KeySpec("product", ("product",), read_product, "iv or velo", "product=iv"),
]


def parse_premed(text: str) -> PremedInput:
    values, _ = parse_pairs(text, PREMED_KEYS, PREMED_EXAMPLE)
    if "cycle" not in values:
        raise InputError(None, "`cycle` is required.", "a cycle number 1-17", PREMED_EXAMPLE)
    return PremedInput(**values)
