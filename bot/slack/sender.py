"""Everything the bot sends to Slack goes through here: retries on rate limits (honouring
Retry-After) and connection errors, and one failure type the rest of the bot can report."""

from __future__ import annotations

import logging
import ssl
from collections.abc import Callable
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import ConnectionErrorRetryHandler, RateLimitErrorRetryHandler

from grading.errors import CrsbotError

log = logging.getLogger("crsbot.sender")


class DeliveryError(CrsbotError):
    """Slack refused or could not take a message even after retries."""

    def __init__(self, method: str, reason: str) -> None:
        self.method = method
        self.reason = reason
        super().__init__(f"Slack did not accept the message ({method}: {reason}). Nothing stored was lost; "
                         "please try again, or check that crsbot is invited to this channel (`/invite @crsbot`).")


def make_client(token: str | None, base_url: str, timeout: int = 10) -> WebClient:
    """One SSLContext for every call: without it, each HTTPS call builds a new context and loads the
    whole CA bundle again (about 20 ms of CPU)."""
    client = WebClient(token=token, base_url=base_url, timeout=timeout, ssl=ssl.create_default_context())
    client.retry_handlers.clear()
    client.retry_handlers.extend([RateLimitErrorRetryHandler(max_retry_count=3),
                                  ConnectionErrorRetryHandler(max_retry_count=2)])
    return client


class Sender:
    def __init__(self, client: WebClient, on_error: Callable[[str, str], None] | None = None) -> None:
        self.client = client
        self.on_error = on_error  # told (method, Slack error code) of every call that failed after retries

    def _call(self, method: str, *, read: bool = False, **kwargs: Any) -> dict[str, Any]:
        """`read=True` for read methods, which Slack takes as query parameters (not JSON)."""
        try:
            response = (self.client.api_call(method, http_verb="GET", params=kwargs) if read
                        else self.client.api_call(method, json=kwargs))
        except SlackApiError as exc:
            reason = str(exc.response.get("error") if exc.response is not None else exc)
            log.error("slack %s failed after retries: %s", method, reason)
            if self.on_error:
                self.on_error(method, reason)
            raise DeliveryError(method, reason) from None
        except OSError as exc:
            log.error("slack %s failed after retries: %s", method, exc)
            if self.on_error:
                self.on_error(method, "connection_failed")
            raise DeliveryError(method, "connection failed") from None
        return dict(response.data) if isinstance(response.data, dict) else {}

    def post(self, channel: str, payload: dict[str, Any], thread_ts: str | None = None) -> str:
        extra = {"thread_ts": thread_ts} if thread_ts else {}
        data = self._call("chat.postMessage", channel=channel, **payload, **extra)
        return str(data.get("ts", ""))

    def update(self, channel: str, ts: str, payload: dict[str, Any]) -> None:
        self._call("chat.update", channel=channel, ts=ts, **payload)

    def ephemeral(self, channel: str, user: str, payload: dict[str, Any]) -> None:
        self._call("chat.postEphemeral", channel=channel, user=user, **payload)

    def open_view(self, trigger_id: str, view: dict[str, Any]) -> None:
        self._call("views.open", trigger_id=trigger_id, view=view)

    def publish_home(self, user: str, view: dict[str, Any]) -> None:
        self._call("views.publish", user_id=user, view=view)

    def user_channels(self, user: str) -> list[str]:
        """The public and private channels `user` belongs to (private ones where the bot is too)."""
        found: list[str] = []
        cursor = ""
        while True:
            page = self._call("users.conversations", read=True, user=user, types="public_channel,private_channel",
                              limit=200, exclude_archived="true", **({"cursor": cursor} if cursor else {}))
            found += [str(c["id"]) for c in page.get("channels", [])]
            cursor = (page.get("response_metadata") or {}).get("next_cursor") or ""
            if not cursor:
                return found
