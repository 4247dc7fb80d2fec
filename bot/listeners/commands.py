"""`/crs`: acknowledge at once (Slack allows 3 s), then run the command table's handler after the ack."""

from __future__ import annotations

from slack_bolt import Ack, App, BoltContext, Respond

from bot.commands import dispatch
from bot.handlers.deps import Deps
from bot.listeners.authorize import CALL

COMMAND = "/crs"


def register(app: App, deps: Deps) -> None:
    @app.command(COMMAND)
    def crs_command(ack: Ack, respond: Respond, context: BoltContext) -> None:
        ack()
        reply = dispatch(deps, context[CALL])
        if reply is not None:
            respond(response_type="ephemeral", **reply)
