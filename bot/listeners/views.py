"""The `/crs form` submission: same grammar as the command, errors shown inline on the field."""

from __future__ import annotations

import json
from typing import Any

from slack_bolt import Ack, App

from bot.service import CrsService
from grading.errors import InputError, PatientLabelError
from grading.parse import parse_crs
from messages.form import patient_value, submission_text
from messages.ids import CallbackId, FormField

FIELD_KEYS = {f.value for f in FormField}


def field_for(error: InputError) -> str:
    """Which form block shows an error: the key it names, or the temperature field as a default."""
    key = (error.key or "").lower()
    return key if key in FIELD_KEYS else FormField.TEMP.value


def register(app: App, service: CrsService) -> None:
    @app.view(CallbackId.CRS_FORM.value)
    def on_submit(ack: Ack, body: dict[str, Any], view: dict[str, Any]) -> None:
        values = view["state"]["values"]
        try:
            # The label as typed (several words included) meets the guard before anything joins or parses it.
            label = service.settings.check_patient_label(patient_value(values))
            text = submission_text(values, patient=label)
            parse_crs(text)
        except InputError as exc:
            ack(response_action="errors", errors={field_for(exc): exc.user_message()[:300]})
            return
        except PatientLabelError as exc:
            ack(response_action="errors", errors={FormField.PATIENT.value: exc.user_message()[:300]})
            return
        ack()
        channel = json.loads(view.get("private_metadata") or "{}").get("channel", "")
        service.crs(channel, body["user"]["id"], text)
