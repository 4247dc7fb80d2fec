"""The `/crs form` submission: same grammar as the command, errors shown inline on the field."""

from __future__ import annotations

import json
from typing import Any

from slack_bolt import Ack, App

from bot.service import CrsService
from grading.errors import InputError, PatientLabelError
from grading.parse import parse_crs
from grading.privacy import check_patient_label
from messages.form import submission_text
from messages.ids import CallbackId, FormField

FIELD_KEYS = {f.value for f in FormField}


def field_for(error: InputError) -> str:
    """Which form block shows an error: the key it names; a key without a field of its own was typed in
    "Other findings"; an error about no key at all shows on the temperature field."""
    key = (error.key or "").lower()
    if key in FIELD_KEYS:
        return key
    return FormField.OTHER.value if key else FormField.TEMP.value


def register(app: App, service: CrsService) -> None:
    @app.view(CallbackId.CRS_FORM.value)
    def on_submit(ack: Ack, body: dict[str, Any], view: dict[str, Any]) -> None:
        text = submission_text(view["state"]["values"])
        try:
            inp = parse_crs(text)
            check_patient_label(inp.patient, service.settings.patient_deny_pattern)
        except InputError as exc:
            ack(response_action="errors", errors={field_for(exc): exc.user_message()[:300]})
            return
        except PatientLabelError as exc:
            ack(response_action="errors", errors={FormField.PATIENT.value: exc.user_message()[:300]})
            return
        ack()
        channel = json.loads(view.get("private_metadata") or "{}").get("channel", "")
        service.crs(channel, body["user"]["id"], text)
