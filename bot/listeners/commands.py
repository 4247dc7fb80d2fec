"""`/crs`: acknowledge at once (Slack allows 3 s), then do the work after the ack."""

from __future__ import annotations

from typing import Any

from slack_bolt import Ack, App, Respond

from bot.service import CrsService, Invocation

COMMAND = "/crs"


def register(app: App, service: CrsService) -> None:
    @app.command(COMMAND)
    def crs_command(ack: Ack, command: dict[str, Any], respond: Respond) -> None:
        ack()
        inv = Invocation(channel_id=command["channel_id"], user_id=command["user_id"],
                         text=command.get("text", ""), trigger_id=command.get("trigger_id"))
        reply = service.handle(inv)
        if reply is not None:
            respond(response_type="ephemeral", **reply)
