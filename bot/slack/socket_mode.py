"""`crsbot serve --socket-mode`: Slack over an outbound WebSocket, for sites that allow no inbound
connection. The HTTP port still answers /healthz (for Docker and load balancers) but has no
/slack/events: in Socket Mode requests are not signed, so that route must not exist.

Slack delivers an envelope again when its ack was lost (a dropped socket), possibly after a restart
or to another replica's connection. Envelope ids are recorded in the database table HTTP mode keeps
its replay memory in (bot/storage/seen.py), so an envelope already taken on by any process is
acknowledged again without doing the work twice.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Iterable
from datetime import timedelta
from typing import Any

from slack_bolt import App
from slack_bolt.adapter.socket_mode import SocketModeHandler
from slack_sdk.socket_mode.builtin import SocketModeClient
from slack_sdk.socket_mode.request import SocketModeRequest
from slack_sdk.socket_mode.response import SocketModeResponse

from bot.app import build_runtime
from bot.outage import OutageLog
from bot.settings import Settings, require
from bot.slack.web import EVENTS_PATH
from bot.storage.seen import SeenRequests
from bot.storage.tables import SeenRequestRow

log = logging.getLogger("crsbot.socket_mode")
# Slack redelivers an unacknowledged envelope within minutes (on reconnect, or on retry); ids are
# kept at least this long (pruned after twice this, or after HTTP mode's window if a replica in HTTP
# mode shares the database), longer than a restart takes.
ENVELOPE_WINDOW = timedelta(minutes=30)
# Keys in seen_requests: HTTP mode stores `v0=<hex>` signatures, so this prefix never collides.
ENVELOPE_PREFIX = "socket:"
_KEY_LENGTH = SeenRequestRow.__table__.c.signature.type.length


def envelope_key(envelope_id: str) -> str:
    """The seen_requests key of an envelope (an over-long id is hashed to fit the column)."""
    key = f"{ENVELOPE_PREFIX}{envelope_id}"
    if len(key) <= _KEY_LENGTH:
        return key
    return f"{ENVELOPE_PREFIX}sha256:{hashlib.sha256(envelope_id.encode()).hexdigest()}"


class OnceSocketModeHandler(SocketModeHandler):
    """Bolt's Socket Mode handler, doing each envelope's work once however often, and to whichever
    replica, it arrives.

    The id is recorded before the work, as HTTP mode records a signature: at most once. With the
    database unreachable the envelope is not acknowledged, so Slack delivers it again later (HTTP mode
    answers 503 for the same reason)."""

    def __init__(self, app: App, app_token: str, seen: SeenRequests, **kwargs: Any) -> None:
        super().__init__(app, app_token, **kwargs)
        self.seen = seen
        self.db_outage = OutageLog(log, "database (envelope check)")

    def handle(self, client: SocketModeClient, req: SocketModeRequest) -> None:  # type: ignore[override]
        try:
            first = self.seen.first_time(envelope_key(req.envelope_id))
        except Exception as exc:  # noqa: BLE001 - reported once; not acknowledged, so Slack sends it again
            self.db_outage.failed(exc)
            return
        self.db_outage.succeeded()
        if not first:
            log.info("envelope %s delivered again (retry %s): acknowledged, not repeated",
                     req.envelope_id, req.retry_attempt)
            client.send_socket_mode_response(SocketModeResponse(envelope_id=req.envelope_id))
            return
        super().handle(client, req)


class WithoutSlackEvents:
    """The WSGI app minus /slack/events (404): status endpoints only."""

    def __init__(self, wsgi: Callable[..., Iterable[bytes]]) -> None:
        self.wsgi = wsgi

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("PATH_INFO") == EVENTS_PATH:
            start_response("404 Not Found", [("Content-Type", "text/plain"), ("Content-Length", "9")])
            return [b"not found"]
        return self.wsgi(environ, start_response)


def run_socket_mode(settings: Settings, host: str, port: int) -> int:
    from bot.slack.serve import make_server, run_until_stopped

    require(settings, "slack_bot_token", "slack_app_token")
    runtime = build_runtime(settings, socket_mode=True)
    server = make_server(runtime, host, port, wrap=WithoutSlackEvents, threads=2)
    handler = OnceSocketModeHandler(runtime.app, settings.slack_app_token.get_secret_value(),  # type: ignore[union-attr]
                                    seen=SeenRequests(runtime.engine, ENVELOPE_WINDOW))
    handler.connect()
    return run_until_stopped(runtime, server, host, " (health and metrics; Slack over Socket Mode)",
                             on_exit=handler.close)
