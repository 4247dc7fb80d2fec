"""Buttons on assessments and reminders. Each click is recorded on the message itself, so the
whole team sees who answered."""

from __future__ import annotations

import re
from typing import Any

from slack_bolt import Ack, App, BoltContext

from bot.handlers import buttons
from bot.handlers.deps import Deps
from bot.listeners.authorize import CALL
from bot.slack.sender import DeliveryError
from messages.ids import ActionId


def _with_note(message: dict[str, Any], note: str, drop_buttons: bool) -> dict[str, Any]:
    """The original message with a context line added (and the buttons removed once resolved)."""
    def edit(blocks: list[dict[str, Any]]) -> list[dict[str, Any]]:
        kept = [b for b in blocks if not (drop_buttons and b.get("type") == "actions")]
        at = next((i for i, b in enumerate(kept) if b.get("type") == "context"), len(kept))
        return kept[:at] + [{"type": "context", "elements": [{"type": "mrkdwn", "text": note}]}] + kept[at:]

    attachments = message.get("attachments") or []
    if attachments and attachments[0].get("blocks"):
        first = {k: v for k, v in attachments[0].items() if k in ("color", "fallback")}
        first["blocks"] = edit(attachments[0]["blocks"])
        return {"text": message.get("text", ""), "blocks": message.get("blocks", []),
                "attachments": [first, *attachments[1:]]}
    return {"text": message.get("text", ""), "blocks": edit(message.get("blocks", []))}


def register(app: App, deps: Deps) -> None:
    @app.action(re.compile("^(" + "|".join(a.value for a in ActionId) + ")$"))
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
