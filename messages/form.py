"""The `/crs form` modal, both ways: build it (optionally prefilled from earlier `/crs` text) and
turn a submission back into `/crs` text, so the form and the command share one grammar."""

from __future__ import annotations

import json
from typing import Any

from grading.errors import InputError
from grading.parse import CRS_KEYS, tokenize
from messages.ids import CallbackId, FormField

Block = dict[str, Any]

DEVICES = [("ra", "Room air"), ("nc", "Nasal cannula (low/high by flow)"), ("blowby", "Blow-by"),
           ("hfnc", "High-flow nasal cannula"), ("facemask", "Facemask"), ("nrb", "Non-rebreather"),
           ("venturi", "Venturi mask"), ("cpap", "CPAP"), ("bipap", "BiPAP"), ("vent", "Intubated / ventilated")]
PRODUCTS = [("iv", "LUNSUMIO (IV)"), ("velo", "LUNSUMIO VELO (SC)")]
YES_NO = [("yes", "Yes"), ("no", "No")]


def _option(value: str, label: str) -> Block:
    return {"text": {"type": "plain_text", "text": label}, "value": value}


def _text_input(field: FormField, label: str, hint: str, placeholder: str, initial: str | None) -> Block:
    element: Block = {"type": "plain_text_input", "action_id": "value",
                      "placeholder": {"type": "plain_text", "text": placeholder}}
    if initial:
        element["initial_value"] = initial
    return {"type": "input", "block_id": field.value, "optional": True,
            "label": {"type": "plain_text", "text": label}, "hint": {"type": "plain_text", "text": hint},
            "element": element}


def _select(field: FormField, label: str, options: list[tuple[str, str]], hint: str, initial: str | None) -> Block:
    element: Block = {"type": "static_select", "action_id": "value",
                      "options": [_option(v, t) for v, t in options]}
    chosen = next((o for o in options if o[0] == initial), None)
    if chosen:
        element["initial_option"] = _option(*chosen)
    return {"type": "input", "block_id": field.value, "optional": True,
            "label": {"type": "plain_text", "text": label}, "hint": {"type": "plain_text", "text": hint},
            "element": element}


def _header(text: str) -> Block:
    return {"type": "header", "text": {"type": "plain_text", "text": text}}


# Every way the grammar spells a key, mapped to the form field that holds it (masked=, toci=,
# steroids= ... all fill the one "fever may be masked" field).
_FIELD_FOR_KEY = {name: ("masked" if spec.field == "masked" else spec.names[0])
                  for spec in CRS_KEYS for name in spec.names}


def prefill_values(text: str | None) -> dict[str, str]:
    """Earlier `/crs` text as form values; anything unreadable is simply not prefilled."""
    if not text:
        return {}
    try:
        tokens = tokenize(text)
    except InputError:
        return {}
    return {_FIELD_FOR_KEY.get(t.key, t.key): t.value for t in tokens}


def initial_values(view: dict[str, Any]) -> dict[str, str]:
    """What an opened form shows in each field before anyone types."""
    shown = {}
    for block in view.get("blocks", []):
        if block.get("type") == "input":
            element = block["element"]
            value = element.get("initial_value") or (element.get("initial_option") or {}).get("value")
            if value:
                shown[block["block_id"]] = value
    return shown


def build_form(channel_id: str, prefill: str | None = None, title: str = "CRS assessment") -> Block:
    v = prefill_values(prefill)
    blocks = [
        _header("Patient"),
        _text_input(FormField.PATIENT, "Bed or study label", "Never a name or record number.", "bed12",
                    v.get("patient")),
        _select(FormField.PRODUCT, "Product", PRODUCTS, "Site default if left empty.", v.get("product")),
        _header("Fever"),
        _text_input(FormField.TEMP, "Temperature", "Celsius (39) or Fahrenheit (102.2f). Fever is >= 38.0 C.",
                    "39", v.get("temp")),
        _select(FormField.MASKED, "Fever may be masked?", YES_NO,
                "Premedication, antipyretics, tocilizumab or steroids given.", v.get("masked")),
        _header("Hypotension"),
        _text_input(FormField.SBP, "Systolic BP (mmHg)", "Or systolic/diastolic, e.g. 85/50.", "85", v.get("sbp")),
        _select(FormField.FLUIDS, "Needing fluid boluses?", YES_NO, "Hypotension without a vasopressor.",
                v.get("fluids")),
        _text_input(FormField.PRESSOR, "Vasopressors (not counting vasopressin)", "Number, 0-6.", "0",
                    v.get("pressor")),
        _select(FormField.VASOPRESSIN, "Vasopressin?", YES_NO, "Never counts toward 'multiple'.",
                v.get("vasopressin")),
        _header("Hypoxia"),
        _text_input(FormField.O2, "Oxygen flow (L/min)", "With nasal cannula or no device, 6 L/min is the boundary.",
                    "4", v.get("o2")),
        _select(FormField.DEVICE, "Device", DEVICES, "HFNC, masks: grade 3; CPAP/BiPAP/ventilation: grade 4.",
                v.get("device")),
        _header("Other"),
        _text_input(FormField.WEIGHT, "Weight (kg)", "For the tocilizumab dose.", "72", v.get("weight")),
        _select(FormField.RECURRENT, "Previous CRS episode of the same grade?", YES_NO,
                "Known episodes are found automatically.", v.get("recurrent")),
    ]
    return {
        "type": "modal",
        "callback_id": CallbackId.CRS_FORM.value,
        "private_metadata": json.dumps({"channel": channel_id}),
        "title": {"type": "plain_text", "text": title[:24]},
        "submit": {"type": "plain_text", "text": "Grade"},
        "close": {"type": "plain_text", "text": "Cancel"},
        "blocks": blocks,
    }


StateValues = dict[str, dict[str, dict[str, Any]]]


def _field_value(state_values: StateValues, field: FormField) -> str | None:
    element = state_values.get(field.value, {}).get("value", {})
    value = element.get("value")
    if value is None and element.get("selected_option"):
        value = element["selected_option"]["value"]
    return None if value is None or not str(value).strip() else str(value)


def patient_value(state_values: StateValues) -> str | None:
    """The patient field exactly as typed: its words are never joined (a name would become a label)."""
    return _field_value(state_values, FormField.PATIENT)


def submission_text(state_values: StateValues, patient: str | None = None) -> str:
    """`view.state.values` -> `/crs` text. Free text is kept whole, so the parser reports bad values
    against the field's own key and the modal can show the error inline. Pass `patient` as returned by
    the label guard; the raw patient field is copied word for word, never joined."""
    pairs: list[str] = []
    for field in FormField:
        if field is FormField.PATIENT:
            value = patient or patient_value(state_values)
            if value:
                pairs.append(f"{field.value}={value.strip()}")
            continue
        value = _field_value(state_values, field)
        if value is not None:
            pairs.append(f"{field.value}={''.join(value.split())}")
    return " ".join(pairs)
