"""Requests shaped exactly as Slack sends them (slash commands, button clicks, modal
submissions), signed with the app's secret. The console drives the real HTTP endpoint with these,
and so do the end-to-end tests and the benchmarks: one description of Slack's wire format.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from slack_sdk.signature import SignatureVerifier

TEAM_ID = "T0CRSBOT01"
APP_ID = "A0CRSBOT01"


@dataclass(frozen=True)
class HttpReply:
    status: int
    body: str


def post_signed(endpoint: str, body: str, secret: str, timeout: float = 10) -> HttpReply:
    """POST a form-encoded body to the bot, signed as Slack would sign it."""
    headers = {"Content-Type": "application/x-www-form-urlencoded", **sign(body, secret)}
    request = urllib.request.Request(endpoint, data=body.encode(), method="POST", headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return HttpReply(response.status, response.read().decode())
    except urllib.error.HTTPError as exc:
        return HttpReply(exc.code, exc.read().decode(errors="replace"))


def sign(body: str, secret: str, timestamp: int | None = None) -> dict[str, str]:
    """Slack's request-signing headers for `body` (v0 HMAC-SHA256 over `v0:<ts>:<body>`)."""
    ts = str(int(time.time()) if timestamp is None else timestamp)
    signature = SignatureVerifier(secret).generate_signature(timestamp=ts, body=body)
    return {"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": signature}


# --------------------------------------------------------------------------- Slack payloads


def slash_body(text: str, *, channel: str, user: str, response_url: str, trigger_id: str,
               command: str = "/crs", team: str = TEAM_ID) -> str:
    """A slash-command request body exactly as Slack form-encodes it."""
    return urllib.parse.urlencode({
        "token": "legacy-verification-token-unused",
        "team_id": team,
        "team_domain": "crsbot-e2e",
        "channel_id": channel,
        "channel_name": f"ward-{channel.lower()}",
        "user_id": user,
        "user_name": f"clinician.{user.lower()}",
        "command": command,
        "text": text,
        "api_app_id": APP_ID,
        "is_enterprise_install": "false",
        "response_url": response_url,
        "trigger_id": trigger_id,
    })


def interactive_body(payload: Mapping[str, Any]) -> str:
    """Interactivity requests (buttons, modal submissions) arrive form-encoded as `payload=<json>`."""
    return urllib.parse.urlencode({"payload": json.dumps(payload, separators=(",", ":"))})


def _user(user: str, team: str = TEAM_ID) -> dict[str, Any]:
    name = f"clinician.{user.lower()}"
    return {"id": user, "username": name, "name": name, "team_id": team}


def _find_action(blocks: list[dict[str, Any]], action_id: str) -> tuple[dict[str, Any], dict[str, Any]] | None:
    for block in blocks:
        for element in block.get("elements", []) if block.get("type") == "actions" else []:
            if element.get("action_id") == action_id:
                return block, element
    return None


def message_as_slack_sends_it(stored: Mapping[str, Any]) -> dict[str, Any]:
    """A message from `FakeSlack.messages()` shaped as `body.message` in a block_actions payload:
    no `channel` key, and attachments numbered from 1 like Slack numbers them."""
    message = {k: v for k, v in stored.items() if k != "channel"}
    if message.get("attachments"):
        message["attachments"] = [{"id": i, **a} for i, a in enumerate(message["attachments"], 1)]
    return message


def block_actions_payload(message: Mapping[str, Any], action_id: str, *, channel: str, user: str,
                          response_url: str, trigger_id: str, team: str = TEAM_ID) -> dict[str, Any]:
    """The `block_actions` payload Slack sends when `user` clicks button `action_id` on `message`
    (a message as returned by `FakeSlack.messages()`); the button may sit in the message's blocks
    or in an attachment's blocks."""
    shown = message_as_slack_sends_it(message)
    found = _find_action(shown.get("blocks") or [], action_id)
    container: dict[str, Any] = {"type": "message", "message_ts": shown["ts"], "channel_id": channel,
                                 "is_ephemeral": False}
    if found is None:
        for attachment in shown.get("attachments") or []:
            found = _find_action(attachment.get("blocks") or [], action_id)
            if found is not None:
                container = {"type": "message_attachment", "message_ts": shown["ts"],
                             "attachment_id": attachment["id"], "channel_id": channel, "is_ephemeral": False,
                             "is_app_unfurl": False}
                break
    if found is None:
        raise ValueError(f"message {shown.get('ts')} has no button with action_id {action_id!r}")
    block, element = found
    action = {"action_id": action_id, "block_id": block.get("block_id", ""), "text": element.get("text"),
              "value": element.get("value", ""), "type": element.get("type", "button"),
              "action_ts": f"{time.time():.6f}"}
    if element.get("style"):
        action["style"] = element["style"]
    return {
        "type": "block_actions",
        "user": _user(user, team),
        "api_app_id": APP_ID,
        "token": "legacy-verification-token-unused",
        "container": container,
        "trigger_id": trigger_id,
        "team": {"id": team, "domain": "crsbot-e2e"},
        "enterprise": None,
        "is_enterprise_install": False,
        "channel": {"id": channel, "name": f"ward-{channel.lower()}"},
        "message": shown,
        "state": {"values": {}},
        "response_url": response_url,
        "actions": [action],
    }


def form_state(view: Mapping[str, Any], values: Mapping[str, str | None]) -> dict[str, Any]:
    """`view.state.values` for a modal as Slack reports it on submission: every input block, with
    `values[block_id]` typed into a text input or chosen in a select (by option value)."""
    state: dict[str, Any] = {}
    unknown = set(values) - {b.get("block_id") for b in view.get("blocks", []) if b.get("type") == "input"}
    if unknown:
        raise ValueError(f"the form has no input block(s) {sorted(unknown)}")
    for block in view.get("blocks", []):
        if block.get("type") != "input":
            continue
        element = block["element"]
        action_id = element.get("action_id", "value")
        chosen = values.get(block["block_id"])
        if element["type"] == "static_select":
            option = next((o for o in element.get("options", []) if o["value"] == chosen), None)
            if chosen is not None and option is None:
                raise ValueError(f"{block['block_id']}: no option {chosen!r}")
            if option is None:
                option = element.get("initial_option")
            state[block["block_id"]] = {action_id: {"type": "static_select", "selected_option": option}}
        else:
            if chosen is None:
                chosen = element.get("initial_value")
            state[block["block_id"]] = {action_id: {"type": element["type"], "value": chosen}}
    return {"values": state}


def view_submission_payload(view: Mapping[str, Any], values: Mapping[str, str | None], *, user: str,
                            trigger_id: str, team: str = TEAM_ID) -> dict[str, Any]:
    """The `view_submission` payload Slack sends when `user` submits the opened `view`
    (as returned by `FakeSlack.views()`) with `values` filled in."""
    submitted = {**view, "state": form_state(view, values), "app_installed_team_id": team}
    return {
        "type": "view_submission",
        "team": {"id": team, "domain": "crsbot-e2e"},
        "user": _user(user, team),
        "api_app_id": APP_ID,
        "token": "legacy-verification-token-unused",
        "trigger_id": trigger_id,
        "view": submitted,
        "response_urls": [],
        "is_enterprise_install": False,
        "enterprise": None,
    }
