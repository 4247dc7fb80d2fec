"""`crsbot serve --socket-mode`: Slack over an outbound WebSocket, for sites that allow no inbound
connection. The HTTP port still answers /healthz (for Docker and load balancers) but has no
/slack/events: in Socket Mode requests are not signed, so that route must not exist.

Slack delivers an envelope again when its ack was lost (a dropped socket); envelope ids already
handled are acknowledged again without doing the work twice.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable
from typing import Any

from slack_bolt import App
from slack_bolt.adapter.socket_mode import SocketModeHandler
from slack_sdk.socket_mode.builtin import SocketModeClient
from slack_sdk.socket_mode.request import SocketModeRequest
from slack_sdk.socket_mode.response import SocketModeResponse

from bot.app import build_runtime
from bot.settings import Settings, require
from bot.slack.web import EVENTS_PATH

log = logging.getLogger("crsbot.socket_mode")
# Slack redelivers within minutes; remembering this many envelope ids covers far more than that.
REMEMBERED_ENVELOPES = 10_000


class RememberedEnvelopes:
    """A bounded, thread-safe set of envelope ids already taken on."""

    def __init__(self, limit: int = REMEMBERED_ENVELOPES) -> None:
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._limit = limit
        self._lock = threading.Lock()

    def first_time(self, envelope_id: str) -> bool:
        with self._lock:
            if envelope_id in self._seen:
                return False
            self._seen[envelope_id] = None
            if len(self._seen) > self._limit:
                self._seen.popitem(last=False)
            return True


class OnceSocketModeHandler(SocketModeHandler):
    """Bolt's Socket Mode handler, doing each envelope's work once however often it arrives."""

    def __init__(self, app: App, app_token: str, **kwargs: Any) -> None:
        super().__init__(app, app_token, **kwargs)
        self.envelopes = RememberedEnvelopes()

    def handle(self, client: SocketModeClient, req: SocketModeRequest) -> None:  # type: ignore[override]
        if not self.envelopes.first_time(req.envelope_id):
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
    handler = OnceSocketModeHandler(runtime.app, settings.slack_app_token.get_secret_value())  # type: ignore[union-attr]
    handler.connect()
    return run_until_stopped(runtime, server, host, " (health and metrics; Slack over Socket Mode)",
                             on_exit=handler.close)
