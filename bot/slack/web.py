"""The WSGI application: Slack's endpoint plus a health check for load balancers and Docker.

Requests to the events path pass the gate (bot.slack.gate) before Bolt sees a byte of them:
signature and timestamp checked on the headers, body read in bounded chunks, HMAC compared,
replays and Slack's retries acknowledged without work. Bolt then gets the verified bytes only.
"""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Callable, Iterable
from datetime import timedelta
from typing import Any

from slack_bolt import App
from slack_bolt.adapter.wsgi import SlackRequestHandler
from sqlalchemy import text
from sqlalchemy.engine import Engine

from bot.episodes.engine import ReminderEngine
from bot.outage import OutageLog
from bot.slack.gate import REPLAY_WINDOW_SECONDS, Verdict, verify_request
from bot.storage.seen import SeenRequests

EVENTS_PATH = "/slack/events"
HEALTH_PATH = "/healthz"

StartResponse = Callable[..., Any]
log = logging.getLogger("crsbot.web")

_REASONS = {200: "200 OK", 400: "400 Bad Request", 401: "401 Unauthorized", 404: "404 Not Found",
            405: "405 Method Not Allowed", 413: "413 Payload Too Large", 503: "503 Service Unavailable"}


class WebApp:
    def __init__(self, app: App, engine: Engine, signing_secret: str | None = None,
                 reminders: ReminderEngine | None = None) -> None:
        self.slack = SlackRequestHandler(app, path=EVENTS_PATH)
        self.engine = engine
        self.secret = signing_secret
        self.reminders = reminders
        self.seen = SeenRequests(engine, timedelta(seconds=REPLAY_WINDOW_SECONDS))
        self.db_outage = OutageLog(log, "database (replay check)")

    def health(self) -> tuple[str, dict[str, Any]]:
        """200 when everything works; otherwise 503 and `down` names what does not."""
        body: dict[str, Any] = {"ok": True, "database": "ok"}
        down = []
        try:
            with self.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
        except Exception:  # noqa: BLE001 - the health check reports, it does not raise
            body["database"] = "unreachable"
            down.append("database")
        if self.reminders is not None:
            if not self.reminders.running:
                body["reminders"] = "stopped"
                down.append("reminders")
            elif self.reminders.outage.down:
                body["reminders"] = f"failing since {self.reminders.outage.since:%Y-%m-%dT%H:%M:%SZ}"
                down.append("reminders")
            else:
                body["reminders"] = "running"
        if down:
            body.update(ok=False, down=down)
            return _REASONS[503], body
        return _REASONS[200], body

    def _first_time(self, signature: str) -> bool:
        try:
            first = self.seen.first_time(signature)
        except Exception as exc:  # noqa: BLE001 - reported once, and the request is refused (fail closed)
            self.db_outage.failed(exc)
            raise
        self.db_outage.succeeded()
        return first

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path, method = environ.get("PATH_INFO"), environ.get("REQUEST_METHOD")
        if path == HEALTH_PATH and method in ("GET", "HEAD"):
            status, body = self.health()
            return _reply(start_response, status, json.dumps(body).encode(), "application/json")
        if path != EVENTS_PATH:
            return _reply(start_response, _REASONS[404], b"Not Found")
        if method != "POST":
            return _reply(start_response, _REASONS[405], b"")
        if not self.secret:  # never run without a secret (start-up refuses that too)
            return _reply(start_response, _REASONS[401], b"")
        try:
            verdict = verify_request(environ, self.secret, self._first_time)
        except Exception:  # noqa: BLE001 - the database is down: already logged once
            return _reply(start_response, _REASONS[503], b"")
        if not verdict.passed:
            return self._refused(start_response, verdict)
        environ = {**environ, "wsgi.input": io.BytesIO(verdict.body), "CONTENT_LENGTH": str(len(verdict.body))}
        return self.slack(environ, start_response)

    @staticmethod
    def _refused(start_response: StartResponse, verdict: Verdict) -> Iterable[bytes]:
        # One line, no body contents: the reason is ours, never anything the sender wrote.
        log.log(logging.INFO if verdict.status == 200 else logging.WARNING, "request %s: %s",
                "acknowledged" if verdict.status == 200 else f"refused {verdict.status}", verdict.reason)
        return _reply(start_response, _REASONS[verdict.status], b"")


def _reply(start_response: StartResponse, status: str, data: bytes,
           content_type: str = "text/plain; charset=utf-8") -> Iterable[bytes]:
    start_response(status, [("Content-Type", content_type), ("Content-Length", str(len(data)))])
    return [data]
