"""Buttons on assessments and reminders. Each click is recorded on the message itself, so the
whole team sees who answered; Details opens the full reply in a modal and changes nothing."""

from __future__ import annotations

import re
from typing import Any

from pydantic import ValidationError
from slack_bolt import Ack, App, BoltContext

from bot.errors import DetailsUnavailableError
from bot.handlers import buttons
from bot.handlers.deps import Call, Deps
from bot.listeners.authorize import CALL
from bot.slack.sender import DeliveryError
from grading.models import stored_report
from messages.blocks import details_view
from messages.ids import ActionId
from messages.layout import layout_for

# Buttons answered by bot/handlers/buttons.py (everything but Details, which only reads).
_ANSWERED = [a.value for a in ActionId if a != ActionId.DETAILS]


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


def details_for(deps: Deps, call: Call) -> dict[str, Any]:
    """The Details modal of the assessment the (sealed) button names, as it was decided when posted."""
    try:
        assessment_id = int(call.fields.get("a"))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise DetailsUnavailableError() from None
    stored = deps.store.assessment_result(assessment_id, call.channel)
    if stored is None:
        raise DetailsUnavailableError()
    try:
        report = stored_report(stored)
    except ValidationError:
        raise DetailsUnavailableError() from None
    return details_view(layout_for(report))


def register(app: App, deps: Deps) -> None:
    @app.action(ActionId.DETAILS.value)
    def on_details(ack: Ack, context: BoltContext) -> None:
        ack()
        call = context[CALL]
        if not call.trigger_id:
            raise DetailsUnavailableError()
        deps.sender.open_view(call.trigger_id, details_for(deps, call))

    @app.action(re.compile("^(" + "|".join(_ANSWERED) + ")$"))
    def on_button(ack: Ack, body: dict[str, Any], action: dict[str, Any], context: BoltContext) -> None:
        ack()
        call = context[CALL]
        channel = call.channel
        message = body.get("message") or {}
        note = buttons.click(deps, call, action["action_id"])
        if message.get("ts"):
            try:
                deps.sender.update(channel, message["ts"], _with_note(
                    message, note, drop_buttons=action["action_id"] == ActionId.RESOLVED))
            except DeliveryError:
                deps.sender.post(channel, {"text": note}, thread_ts=message.get("thread_ts") or message["ts"])
