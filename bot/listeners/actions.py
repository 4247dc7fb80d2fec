"""Buttons on assessments and reminders. Each click is recorded on the message itself, so the
whole team sees who answered; Details opens the full reply in a modal."""

from __future__ import annotations

import json
import re
from typing import Any

from pydantic import ValidationError
from slack_bolt import Ack, App

from bot.slack.sender import DeliveryError
from bot.service import CrsService
from grading.errors import CrsbotError
from grading.models import stored_report
from messages.blocks import details_view
from messages.ids import ActionId
from messages.layout import layout_for

# Buttons answered by the service (everything but Details, which only reads).
_SERVICE_ACTIONS = [a.value for a in ActionId if a != ActionId.DETAILS]


class DetailsUnavailableError(CrsbotError):
    def __init__(self) -> None:
        super().__init__("The details of this assessment are not available here (it was not recorded in this "
                         "channel, or was recorded by an older version). Run the `/crs` command again to see them.")


def _with_note(message: dict[str, Any], note: str, drop_buttons: bool) -> dict[str, Any]:
    """The original message with a context line added above its footer (the last context block). Once
    resolved, the buttons that act on the episode go; Details stays, so the reply can still be read in full."""
    kept: list[dict[str, Any]] = []
    for block in message.get("blocks") or []:
        if drop_buttons and block.get("type") == "actions":
            elements = [e for e in block.get("elements", []) if e.get("action_id") == ActionId.DETAILS]
            if not elements:
                continue
            block = {**block, "elements": elements}
        kept.append(block)
    contexts = [i for i, b in enumerate(kept) if b.get("type") == "context"]
    at = contexts[-1] if contexts else len(kept)
    note_block = {"type": "context", "elements": [{"type": "mrkdwn", "text": note}]}
    return {"text": message.get("text", ""), "blocks": kept[:at] + [note_block] + kept[at:]}


def details_for(service: CrsService, value: str, channel: str) -> dict[str, Any]:
    """The Details modal of the assessment a button belongs to, as it was decided when posted."""
    try:
        assessment_id = int(json.loads(value or "{}").get("a"))
    except (TypeError, ValueError, AttributeError):
        raise DetailsUnavailableError() from None
    stored = service.store.assessment_result(assessment_id, channel)
    if stored is None:
        raise DetailsUnavailableError()
    try:
        report = stored_report(stored)
    except ValidationError:
        raise DetailsUnavailableError() from None
    return details_view(layout_for(report))


def register(app: App, service: CrsService) -> None:
    @app.action(ActionId.DETAILS.value)
    def on_details(ack: Ack, body: dict[str, Any], action: dict[str, Any]) -> None:
        ack()
        channel = body.get("channel", {}).get("id") or body.get("container", {}).get("channel_id", "")
        service.sender.open_view(body["trigger_id"], details_for(service, action.get("value", ""), channel))

    @app.action(re.compile("^(" + "|".join(_SERVICE_ACTIONS) + ")$"))
    def on_button(ack: Ack, body: dict[str, Any], action: dict[str, Any]) -> None:
        ack()
        channel = body.get("channel", {}).get("id") or body.get("container", {}).get("channel_id", "")
        user = body["user"]["id"]
        message = body.get("message") or {}
        note = service.button(action["action_id"], action.get("value", ""), channel, user,
                              body.get("trigger_id"), message.get("ts"))
        if message.get("ts"):
            try:
                service.sender.update(channel, message["ts"], _with_note(
                    message, note, drop_buttons=action["action_id"] == ActionId.RESOLVED))
            except DeliveryError:
                service.sender.post(channel, {"text": note}, thread_ts=message.get("thread_ts") or message["ts"])
