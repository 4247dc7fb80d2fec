"""The `/crs form` modal, both ways: build it (optionally prefilled from earlier `/crs` text) and
turn a submission back into `/crs` text, so the form and the command share one grammar."""

from __future__ import annotations

import json
from typing import Any

from grading.crs import FEVER_C
from grading.errors import InputError
from grading.parse import CRS_KEYS, tokenize
from messages.ids import CallbackId, FormField
from messages.layout import MASKERS

Block = dict[str, Any]

DEVICES = [("ra", "Room air"), ("nc", "Nasal cannula (low/high by flow)"), ("blowby", "Blow-by"),
           ("hfnc", "High-flow nasal cannula"), ("facemask", "Facemask"), ("nrb", "Non-rebreather"),
           ("venturi", "Venturi mask"), ("cpap", "CPAP"), ("bipap", "BiPAP"), ("vent", "Intubated / ventilated")]
PRODUCTS = [("iv", "LUNSUMIO (IV)"), ("velo", "LUNSUMIO VELO (SC)")]
YES_NO = [("yes", "Yes"), ("no", "No")]


def _option(value: str, label: str) -> Block:
    return {"text": {"type": "plain_text", "text": label}, "value": value}


def _input(field: FormField, label: str, hint: str | None, element: Block) -> Block:
    block: Block = {"type": "input", "block_id": field.value, "optional": True,
                    "label": {"type": "plain_text", "text": label}, "element": element}
    if hint:
        block["hint"] = {"type": "plain_text", "text": hint}
    return block


def _text_input(field: FormField, label: str, hint: str | None, placeholder: str, initial: str | None) -> Block:
    element: Block = {"type": "plain_text_input", "action_id": "value",
                      "placeholder": {"type": "plain_text", "text": placeholder}}
    if initial:
        element["initial_value"] = initial
    return _input(field, label, hint, element)


def _select(field: FormField, label: str, options: list[tuple[str, str]], hint: str | None,
            initial: str | None) -> Block:
    element: Block = {"type": "static_select", "action_id": "value",
                      "options": [_option(v, t) for v, t in options]}
    chosen = next((o for o in options if o[0] == initial), None)
    if chosen:
        element["initial_option"] = _option(*chosen)
    return _input(field, label, hint, element)


# Every way the grammar spells a key, mapped to the form field that holds it (masked=, toci=,
# steroids= ... all fill the one "fever may be masked" field); keys without a field of their own go to
# "Other findings" under their first name.
_FIELD_FOR_KEY = {name: ("masked" if spec.field == "masked" else spec.names[0])
                  for spec in CRS_KEYS for name in spec.names}
_FIELDS = {f.value for f in FormField}
OTHER_EXAMPLE = "fluids=yes vasopressin=yes weight=72 o2comfort=yes recurrent=yes"


def prefill_values(text: str | None) -> dict[str, str]:
    """Earlier `/crs` text as form values; anything unreadable is simply not prefilled."""
    if not text:
        return {}
    try:
        tokens = tokenize(text)
    except InputError:
        return {}
    values: dict[str, str] = {}
    other: list[str] = []
    for token in tokens:
        field = _FIELD_FOR_KEY.get(token.key, token.key)
        if field in _FIELDS and field != FormField.OTHER:
            values[field] = token.value
        else:
            other.append(f"{field}={token.value}")
    if other:
        values[FormField.OTHER.value] = " ".join(other)
    return values


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
    """The common findings first, one field each; everything else in one free-text field the grammar reads
    (Slack modals cannot fold a section, so fewer fields is what makes the form short on a phone)."""
    v = prefill_values(prefill)
    blocks = [
        _text_input(FormField.PATIENT, "Patient: bed or study label", "Never a name or record number.", "bed12",
                    v.get("patient")),
        # Product stays a field of its own: the two products have different rulebooks and are never swapped.
        _select(FormField.PRODUCT, "Product (site default if empty)", PRODUCTS, None, v.get("product")),
        _text_input(FormField.TEMP, "Temperature", f"39 (C) or 102.2f. Fever is >= {FEVER_C:.1f} C.", "39",
                    v.get("temp")),
        _select(FormField.MASKED, "Fever may be masked?", YES_NO, f"{MASKERS[0].upper()}{MASKERS[1:]} given.",
                v.get("masked")),
        _text_input(FormField.SBP, "Systolic BP (mmHg)", None, "85 or 85/50", v.get("sbp")),
        _text_input(FormField.PRESSOR, "Vasopressors, not counting vasopressin", None, "0", v.get("pressor")),
        _text_input(FormField.O2, "Oxygen flow (L/min)", None, "4", v.get("o2")),
        _select(FormField.DEVICE, "Oxygen device", DEVICES, None, v.get("device")),
        _text_input(FormField.OTHER, "Other findings (optional)", f"As in /crs, e.g. {OTHER_EXAMPLE}",
                    "fluids=yes weight=72", v.get("other")),
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
    """`view.state.values` -> `/crs` text. A field's free text is kept whole (spaces squeezed out), so the
    parser reports bad values against the field's own key and the modal can show the error inline; "Other
    findings" is already `/crs` text and goes in as typed. Pass `patient` as returned by the label guard;
    the raw patient field is copied word for word, never joined."""
    pairs: list[str] = []
    for field in FormField:
        if field is FormField.PATIENT:
            value = patient or patient_value(state_values)
            if value:
                pairs.append(f"{field.value}={value.strip()}")
            continue
        value = _field_value(state_values, field)
        if value is None:
            continue
        if field == FormField.OTHER:
            pairs.append(" ".join(value.split()))
        else:
            pairs.append(f"{field.value}={''.join(value.split())}")
    return " ".join(pairs)
