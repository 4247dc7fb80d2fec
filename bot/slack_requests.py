"""Signed requests shaped exactly as Slack sends them (slash commands, button clicks, modal
submissions). The console drives the real HTTP endpoint with these; so do the tests."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Any

from slack_sdk.signature import SignatureVerifier


@dataclass(frozen=True)
class HttpReply:
    status: int
    body: str
    seconds: float


class SlackRequester:
    def __init__(self, endpoint: str, signing_secret: str, team_id: str = "T0CRSBOT01") -> None:
        self.endpoint = endpoint
        self.verifier = SignatureVerifier(signing_secret)
        self.team_id = team_id

    def sign(self, body: str, timestamp: int | None = None) -> dict[str, str]:
        ts = str(int(time.time()) if timestamp is None else timestamp)
        return {"X-Slack-Request-Timestamp": ts,
                "X-Slack-Signature": self.verifier.generate_signature(timestamp=ts, body=body),
                "Content-Type": "application/x-www-form-urlencoded"}

    def post(self, body: str, headers: dict[str, str] | None = None, timeout: float = 10) -> HttpReply:
        request = urllib.request.Request(self.endpoint, data=body.encode(), method="POST",
                                         headers=headers if headers is not None else self.sign(body))
        started = time.perf_counter()
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                return HttpReply(response.status, response.read().decode(), time.perf_counter() - started)
        except urllib.error.HTTPError as exc:
            return HttpReply(exc.code, exc.read().decode(errors="replace"), time.perf_counter() - started)

    def command_body(self, text: str, channel: str, user: str, response_url: str, trigger_id: str,
                     command: str = "/crs") -> str:
        return urllib.parse.urlencode({
            "token": "unused", "team_id": self.team_id, "channel_id": channel, "channel_name": channel.lower(),
            "user_id": user, "user_name": user.lower(), "command": command, "text": text,
            "response_url": response_url, "trigger_id": trigger_id, "api_app_id": "A0CRSBOT01"})

    def payload_body(self, payload: dict[str, Any]) -> str:
        return urllib.parse.urlencode({"payload": json.dumps(payload)})

    def block_action(self, action_id: str, value: str, channel: str, user: str, message: dict[str, Any],
                     response_url: str, trigger_id: str) -> dict[str, Any]:
        return {
            "type": "block_actions", "team": {"id": self.team_id}, "user": {"id": user, "name": user.lower()},
            "api_app_id": "A0CRSBOT01", "trigger_id": trigger_id, "response_url": response_url,
            "container": {"type": "message", "message_ts": message.get("ts"), "channel_id": channel},
            "channel": {"id": channel}, "message": message,
            "actions": [{"type": "button", "action_id": action_id, "block_id": "crs_actions", "value": value,
                         "action_ts": str(time.time())}],
        }

    def view_submission(self, view: dict[str, Any], values: dict[str, str], user: str) -> dict[str, Any]:
        """`values` by block id; select blocks get `selected_option`, text blocks `value`."""
        state: dict[str, Any] = {}
        for block in view.get("blocks", []):
            block_id = block.get("block_id")
            if block.get("type") != "input" or block_id not in values:
                continue
            if block["element"]["type"] == "static_select":
                state[block_id] = {"value": {"type": "static_select",
                                             "selected_option": {"value": values[block_id]}}}
            else:
                state[block_id] = {"value": {"type": "plain_text_input", "value": values[block_id]}}
        return {
            "type": "view_submission", "team": {"id": self.team_id}, "user": {"id": user, "name": user.lower()},
            "api_app_id": "A0CRSBOT01", "trigger_id": "",
            "view": {**view, "id": view.get("id", "V0"), "state": {"values": state}},
        }
