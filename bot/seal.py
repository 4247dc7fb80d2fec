"""Sealed button values and form metadata.

Slack hands button values and a modal's `private_metadata` back to us verbatim, but a workspace
member with the signing secret's help (or a bug) could send any JSON there. So what the bot puts in
them is sealed: an HMAC bound to the channel it was issued for, keyed by a key derived from the Slack signing secret. A value copied into another
channel, or edited, no longer verifies.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

from messages.blocks import button_value

SEAL_FIELD = "s"
_SEAL_CHARS = 32  # 128 bits of HMAC-SHA256, hex
_CONTEXT = b"crsbot seal v1"


class Sealer:
    """Seals and opens the JSON the bot asks Slack to carry for it."""

    def __init__(self, secret: str) -> None:
        # A derived key: the signing secret itself is never used for anything but Slack's signature.
        self._key = hmac.new(secret.encode("utf-8"), _CONTEXT, hashlib.sha256).digest()

    def _mac(self, scope: str, fields: dict[str, Any]) -> str:
        message = json.dumps([scope, fields], sort_keys=True, separators=(",", ":")).encode("utf-8")
        return hmac.new(self._key, message, hashlib.sha256).hexdigest()[:_SEAL_CHARS]

    def seal(self, scope: str, **fields: Any) -> str:
        """Compact JSON of `fields` plus a seal for `scope`, within Slack's button value size."""
        fitted = json.loads(button_value(**fields, **{SEAL_FIELD: "0" * _SEAL_CHARS}))
        fitted.pop(SEAL_FIELD)
        return json.dumps({**fitted, SEAL_FIELD: self._mac(scope, fitted)}, separators=(",", ":"))

    def open(self, scope: str, sealed: str | None) -> dict[str, Any] | None:
        """The fields, if `sealed` was issued by this bot for `scope`; None otherwise."""
        try:
            data = json.loads(sealed or "")
        except ValueError:
            return None
        if not isinstance(data, dict) or not isinstance(data.get(SEAL_FIELD), str):
            return None
        given = data.pop(SEAL_FIELD)
        return data if hmac.compare_digest(given, self._mac(scope, data)) else None


def form_scope(channel: str) -> str:
    """A form is opened from one channel (Slack itself only lets the person it was opened for submit it)."""
    return f"form:{channel}"


def button_scope(channel: str) -> str:
    """A button may be clicked by anyone in the channel it was posted in."""
    return f"button:{channel}"
