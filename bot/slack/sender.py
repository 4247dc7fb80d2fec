"""Everything the bot sends to Slack goes through here: retries on rate limits (honouring
Retry-After) and connection errors, and one failure type the rest of the bot can report."""

from __future__ import annotations

import logging
import ssl
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
    def __init__(self, client: WebClient) -> None:
        self.client = client

    def _call(self, method: str, **kwargs: Any) -> dict[str, Any]:
        try:
            response = self.client.api_call(method, json=kwargs)
        except SlackApiError as exc:
            reason = str(exc.response.get("error") if exc.response is not None else exc)
            log.error("slack %s failed after retries: %s", method, reason)
            raise DeliveryError(method, reason) from None
        except OSError as exc:
            log.error("slack %s failed after retries: %s", method, exc)
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
