"""The one place where failures become replies: a user-caused error gets its specific message,
anything else a short apology with a reference, and never a stack trace."""

from __future__ import annotations

import json
import logging
import secrets
from typing import Any

from slack_bolt import App, BoltContext, BoltResponse

from bot.commands import COMMAND_WORDS
from bot.errors import Refusal
from bot.handlers.deps import Deps
from grading.errors import CrsbotError, InputError, PatientLabelError
from grading.privacy import REFUSED_MARKER
from messages.blocks import render_ephemeral
from messages.ids import FormField

log = logging.getLogger("crsbot.errors")


def reply_for(error: Exception) -> dict[str, Any]:
    if isinstance(error, InputError):
        return render_ephemeral("crsbot could not read that", error.user_message() +
                                "\n`/crs help` shows every key. Nothing already stored was changed.")
    if isinstance(error, CrsbotError):
        return render_ephemeral("crsbot", error.user_message())
    ref = secrets.token_hex(4)
    log.error("unexpected error ref=%s", ref, exc_info=error)
    return render_ephemeral("crsbot hit an internal problem",
                            f"Nothing already stored was lost. Please try again; if it persists, give your Slack "
                            f"admin this reference: `{ref}`.")


FIELD_KEYS = {f.value for f in FormField}


def field_for(error: CrsbotError) -> str:
    """Which form block shows an error: the key it names, the patient field for a label or a refusal; a key
    without a field of its own was typed in "Other findings"; anything else shows on the temperature field."""
    if isinstance(error, (PatientLabelError, Refusal)):
        return FormField.PATIENT.value
    key = (error.key or "").lower() if isinstance(error, InputError) else ""
    if key in FIELD_KEYS:
        return key
    return FormField.OTHER.value if key else FormField.TEMP.value


def form_errors(error: CrsbotError) -> dict[str, Any]:
    """A form submission's answer that keeps the form open with the message on the field."""
    return {"response_action": "errors", "errors": {field_for(error): error.user_message()[:300]}}


# Set by the first custom middleware (bot/listeners/authorize.py), which Bolt runs only after its own
# signature check passed (HTTP) or for a Socket Mode envelope (authenticated by the app token). No mark, no reply.
VERIFIED = "crsbot_verified"


def register(app: App, deps: Deps) -> None:
    @app.error
    def on_error(error: Exception, body: dict[str, Any], respond: Any, context: BoltContext,
                 logger: logging.Logger) -> BoltResponse:
        if not (context or {}).get(VERIFIED):
            # Never answer, post for, or audit a request nobody has verified: its response_url,
            # channel and text are the sender's choice. One line, no traceback, no contents.
            log.warning("refused a request that failed before verification (%s)", type(error).__name__)
            return BoltResponse(status=401, body="")
        reply = reply_for(error)
        if isinstance(error, Refusal):
            # Refusals are audited by kind only: what was typed or clicked may name a patient.
            logger.info("refused: %s", error.reason)
            deps.store.audit("refused", _channel(body) if not _is_form(body) else None, _user(body),
                             detail={"reason": error.reason, "entry": _entry(body)})
        elif isinstance(error, CrsbotError):
            logger.info("user error: %s", type(error).__name__)
            deps.store.audit("failure", _channel(body), _user(body), detail=failure_detail(error, body, deps))
        if _is_form(body) and isinstance(error, (Refusal, PatientLabelError)):
            # Raised by the middleware, before the ack: the form stays open and says why.
            return BoltResponse(status=200, body=json.dumps(form_errors(error)),
                                headers={"Content-Type": "application/json; charset=utf-8"})
        try:
            if respond is not None and getattr(respond, "response_url", None):
                respond(response_type="ephemeral", replace_original=False, **reply)
            elif _channel(body) and _user(body):
                deps.sender.ephemeral(_channel(body), _user(body), reply)
        except Exception:  # noqa: BLE001 - reporting must never raise into Bolt
            log.exception("could not tell the user about an error")
        return BoltResponse(status=200, body="")


def failure_detail(error: CrsbotError, body: dict[str, Any], deps: Deps) -> dict[str, Any]:
    """What the audit keeps of a failure: the kind of error and the command with every value that
    fails the label guard replaced by a marker. A refused label itself is never kept, only why."""
    detail: dict[str, Any] = {"error": type(error).__name__}
    if isinstance(error, PatientLabelError):
        detail.update(patient=REFUSED_MARKER, reason=error.reason)
    elif isinstance(error, InputError) and error.key:
        detail["key"] = error.key
    if body.get("text"):
        detail["text"] = deps.settings.redact(str(body["text"]), COMMAND_WORDS)[:500]
    return detail


def _is_form(body: dict[str, Any]) -> bool:
    return body.get("type") == "view_submission"


def _entry(body: dict[str, Any]) -> str:
    return "command" if "command" in body else str(body.get("type") or "other")


def _channel(body: dict[str, Any]) -> str:
    """Commands and buttons name the channel; a form carries it in its private metadata."""
    found = body.get("channel_id") or (body.get("channel") or {}).get("id")
    if found:
        return str(found)
    try:
        metadata = json.loads((body.get("view") or {}).get("private_metadata") or "{}")
    except ValueError:
        return ""
    return str(metadata.get("channel", "")) if isinstance(metadata, dict) else ""


def _user(body: dict[str, Any]) -> str:
    return body.get("user_id") or (body.get("user") or {}).get("id") or ""
