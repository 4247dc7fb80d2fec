"""Authorization in one place: one Bolt middleware in front of every listener (slash command, button,
form submission, shortcut, event), run after Bolt has verified Slack's signature.

It decides, before any handler runs:
- the channel acted in is allowed (CRSBOT_ALLOWED_CHANNELS);
- a button value or form metadata is one the bot sealed for this channel (bot/seal.py): Slack
  returns them verbatim, so they are never trusted on their own;
- an episode a button names exists and belongs to the channel clicked in (checked in the database);
- the patient label named passes the label guard (grading/privacy.py), once, here.
The result is a `Call` in the Bolt context under `CALL`; a refusal is raised as a `Refusal` (or the
guard's error) and answered by bot/listeners/errors.py. Requests that act in no channel (App Home,
a DM) skip the channel check; a button there must still carry a sealed value.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from slack_bolt import App, BoltRequest, BoltResponse
from slack_bolt.middleware import Middleware

from bot.commands import route
from bot.errors import ChannelNotAllowedError, ForeignEpisodeError, UnsealedError
from bot.handlers.deps import Call, Deps, with_history
from bot.listeners.errors import VERIFIED
from bot.seal import button_scope, form_scope
from grading.pipeline import patient_named
from messages.form import patient_value, submission_text

CALL = "crs_call"
# Channels (public, private, group) where patients' episodes live; D... (DMs, App Home) are personal.
_CHANNEL_PREFIXES = ("C", "G")


class Authorize(Middleware):
    """The first middleware after Bolt's own checks. A `Middleware` subclass rather than a decorated function:
    Bolt builds every injectable argument (about thirty) for each call of a function middleware, and this
    runs on every request."""

    def __init__(self, deps: Deps) -> None:
        self.deps = deps

    def process(self, *, req: BoltRequest, resp: BoltResponse,
                next: Callable[[], BoltResponse]) -> BoltResponse | None:  # noqa: A002 - Bolt's name
        # Bolt runs this only after its signature check passed (HTTP) or for a Socket Mode envelope
        # (authenticated by the app token): the error handler answers only requests carrying this mark.
        req.context[VERIFIED] = True
        call = authorized_call(self.deps, req.body)
        if call is not None:
            req.context[CALL] = call
        return next()


def register(app: App, deps: Deps) -> None:
    app.middleware(Authorize(deps))


def authorized_call(deps: Deps, body: dict[str, Any]) -> Call | None:
    """The checked request, or None for requests that act on nothing (e.g. a closed form)."""
    if "command" in body:
        call = _command(body)
    elif body.get("type") == "block_actions":
        call = _click(deps, body)
    elif body.get("type") == "view_submission":
        call = _submission(deps, body)
    else:
        channel = _channel_named(body)
        if channel:
            _check_channel(deps, channel)
        return None
    _check_channel(deps, call.channel)
    deps.settings.check_patient_label(call.patient)
    # Buttons and forms act at once; a slash command reads the history after its ack (bot/commands.py).
    return call if "command" in body else with_history(deps, call)


def _check_channel(deps: Deps, channel: str) -> None:
    allowed = deps.settings.allowed_channels
    if allowed and channel.startswith(_CHANNEL_PREFIXES) and channel not in allowed:
        raise ChannelNotAllowedError(channel)


def _command(body: dict[str, Any]) -> Call:
    text = str(body.get("text") or "")
    return Call(channel=str(body.get("channel_id") or ""), user=str(body.get("user_id") or ""), text=text,
                trigger_id=body.get("trigger_id"), patient=patient_named(route(text)[1]))


def _click(deps: Deps, body: dict[str, Any]) -> Call:
    channel = str((body.get("channel") or {}).get("id") or (body.get("container") or {}).get("channel_id") or "")
    actions = body.get("actions") or [{}]
    fields = deps.sealer.open(button_scope(channel), actions[0].get("value"))
    if fields is None:
        _check_channel(deps, channel)  # a refused channel says so, before saying the value is not ours
        raise UnsealedError("button")
    episode = None
    if fields.get("e") is not None:
        episode = deps.store.get_episode(int(fields["e"]))
        if episode is None or episode.channel_id != channel:
            raise ForeignEpisodeError()
    patient = episode.patient_label if episode else patient_named(str(fields.get("t") or ""))
    return Call(channel=channel, user=str((body.get("user") or {}).get("id") or ""),
                trigger_id=body.get("trigger_id"), patient=patient, fields=fields, episode=episode)


def _submission(deps: Deps, body: dict[str, Any]) -> Call:
    view = body.get("view") or {}
    user = str((body.get("user") or {}).get("id") or "")
    try:
        claimed = json.loads(view.get("private_metadata") or "{}").get("channel")
    except (ValueError, AttributeError):
        claimed = None
    fields = deps.sealer.open(form_scope(str(claimed)), view.get("private_metadata")) if claimed else None
    if fields is None or fields.get("channel") != claimed:
        raise UnsealedError("form")
    values = (view.get("state") or {}).get("values") or {}
    # The label as typed (several words included) meets the guard before anything joins or parses it.
    label = deps.settings.check_patient_label(patient_value(values))
    text = submission_text(values, patient=label)
    # "Other findings" is free /crs text and may name the patient too: the guard sees that as well.
    return Call(channel=str(claimed), user=user, text=text, trigger_id=body.get("trigger_id"),
                patient=label or patient_named(text))


def _channel_named(body: dict[str, Any]) -> str:
    """Shortcuts and events name their channel in different places."""
    event = body.get("event") or {}
    return str((body.get("channel") or {}).get("id") or event.get("channel") or body.get("channel_id") or "")
