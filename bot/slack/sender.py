"""Everything the bot sends to Slack goes through here, over ONE shared client that keeps its
connections alive.

slack_sdk's WebClient opens a new urllib connection (and TLS handshake) for every call; at a
catch-up of thousands of reminders that is most of the cost. `KeepAliveWebClient` keeps one
HTTP/1.1 connection per thread, all sharing one SSLContext, and is the client Bolt uses for
commands too. Commands retry on rate limits (honouring Retry-After) and connection errors;
reminder posts do not (`Sender.post_reminder`): the engine must never sleep on a Retry-After while
it holds a claim, and a post whose outcome is unknown is reconciled, not blindly repeated.
"""

from __future__ import annotations

import http.client
import io
import logging
import ssl
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any
from urllib.error import HTTPError
from urllib.parse import urlsplit
from urllib.request import Request

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import ConnectionErrorRetryHandler, RateLimitErrorRetryHandler
from slack_sdk.http_retry.handler import RetryHandler

from grading.errors import CrsbotError

log = logging.getLogger("crsbot.sender")

__all__ = ["DeliveryError", "KeepAliveWebClient", "PostOutcomeUnknown", "PostRateLimited", "PostRefused",
           "Sender", "make_client"]

# Errors on a reused connection that mean "the server closed it while idle": safe to resend once.
_STALE_CONNECTION = (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError)


class DeliveryError(CrsbotError):
    """Slack refused or could not take a message even after retries."""

    def __init__(self, method: str, reason: str) -> None:
        self.method = method
        self.reason = reason
        super().__init__(f"Slack did not accept the message ({method}: {reason}). Nothing stored was lost; "
                         "please try again, or check that crsbot is invited to this channel (`/invite @crsbot`).")


class PostRateLimited(Exception):
    """Slack answered 429: nothing was posted; try again after `retry_after` seconds."""

    def __init__(self, retry_after: float) -> None:
        super().__init__(f"rate limited, retry after {retry_after:g}s")
        self.retry_after = retry_after


class PostRefused(Exception):
    """Slack answered and did not post (ok: false): the outcome is known, nothing reached the channel."""


class PostOutcomeUnknown(Exception):
    """The request may or may not have reached Slack (timeout, connection lost, 5xx)."""


class _ConnectionPool(threading.local):
    connections: dict[tuple[str, str, int], http.client.HTTPConnection]

    def __init__(self) -> None:
        self.connections = {}


class KeepAliveWebClient(WebClient):
    """A WebClient whose requests reuse one kept-alive connection per thread and one SSLContext.

    `without_retries()` turns the retry handlers off for calls made inside it on this thread
    (the handlers list is otherwise shared by every thread using the client).
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._pool = _ConnectionPool()
        self._no_retry = threading.local()
        self._handlers: list[RetryHandler] = []
        super().__init__(*args, **kwargs)
        self._ssl_context = self.ssl or ssl.create_default_context()

    @property  # type: ignore[override]
    def retry_handlers(self) -> list[RetryHandler]:
        return [] if getattr(self._no_retry, "on", False) else self._handlers

    @retry_handlers.setter
    def retry_handlers(self, handlers: list[RetryHandler]) -> None:
        self._handlers = handlers

    @contextmanager
    def without_retries(self) -> Iterator[None]:
        self._no_retry.on = True
        try:
            yield
        finally:
            self._no_retry.on = False

    def _connection(self, scheme: str, host: str, port: int) -> tuple[http.client.HTTPConnection, bool]:
        key = (scheme, host, port)
        conn = self._pool.connections.get(key)
        if conn is not None:
            return conn, True
        if scheme == "https":
            conn = http.client.HTTPSConnection(host, port, timeout=self.timeout, context=self._ssl_context)
        else:
            conn = http.client.HTTPConnection(host, port, timeout=self.timeout)
        self._pool.connections[key] = conn
        return conn, False

    def _drop(self, scheme: str, host: str, port: int) -> None:
        conn = self._pool.connections.pop((scheme, host, port), None)
        if conn is not None:
            conn.close()

    def _perform_urllib_http_request_internal(self, url: str, req: Request) -> dict[str, Any]:
        if self.proxy:
            return super()._perform_urllib_http_request_internal(url, req)
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        if scheme not in ("http", "https"):
            return super()._perform_urllib_http_request_internal(url, req)
        port = parts.port or (443 if scheme == "https" else 80)
        host = parts.hostname or ""
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        headers = {k: str(v) for k, v in req.header_items()}
        body = req.data if isinstance(req.data, bytes) else None
        for attempt in (1, 2):
            conn, reused = self._connection(scheme, host, port)
            try:
                conn.request("POST", path, body=body, headers=headers)
                resp = conn.getresponse()
                raw = resp.read()
            except _STALE_CONNECTION:
                self._drop(scheme, host, port)
                if reused and attempt == 1:
                    continue  # the server closed an idle connection; open a fresh one
                raise
            except BaseException:
                self._drop(scheme, host, port)
                raise
            if resp.will_close:
                self._drop(scheme, host, port)
            if resp.status >= 400:
                raise HTTPError(url, resp.status, resp.reason, resp.headers, io.BytesIO(raw))
            charset = resp.headers.get_content_charset() or "utf-8"
            return {"status": resp.status, "headers": resp.headers, "body": raw.decode(charset)}
        raise AssertionError("unreachable")


def make_client(token: str | None, base_url: str, timeout: float = 10) -> KeepAliveWebClient:
    """The bot's one Slack client (Bolt, commands and reminders share it), with one SSLContext for
    every call: without it, each HTTPS call builds a new context and loads the whole CA bundle again
    (about 20 ms of CPU)."""
    client = KeepAliveWebClient(token=token, base_url=base_url, timeout=timeout,  # type: ignore[arg-type]
                                ssl=ssl.create_default_context())
    client.retry_handlers = [RateLimitErrorRetryHandler(max_retry_count=3),
                             ConnectionErrorRetryHandler(max_retry_count=2)]
    return client


def _retry_after(headers: Any) -> float:
    for name in ("Retry-After", "retry-after"):
        value = headers.get(name) if headers else None
        if isinstance(value, list):
            value = value[0] if value else None
        if value is not None:
            try:
                return max(float(value), 0.0)
            except ValueError:
                break
    return 1.0


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

    def post_once(self, channel: str, payload: dict[str, Any], *, thread_ts: str | None = None,
                  metadata: dict[str, Any] | None = None) -> str:
        """One attempt, no retries, with the outcome classified for exactly-once delivery.

        Raises PostRateLimited (429), PostRefused (Slack answered ok: false) or
        PostOutcomeUnknown (timeout, connection lost, 5xx: the message may have been posted).
        """
        body = {"channel": channel, **payload}
        if thread_ts:
            body["thread_ts"] = thread_ts
        if metadata:
            body["metadata"] = metadata
        client = self.client
        guard = client.without_retries() if isinstance(client, KeepAliveWebClient) else _nothing()
        try:
            with guard:
                response = client.api_call("chat.postMessage", json=body)
        except SlackApiError as exc:
            status = exc.response.status_code if exc.response is not None else 0
            if status == 429:
                raise PostRateLimited(_retry_after(exc.response.headers)) from None
            error = str(exc.response.get("error") if exc.response is not None else exc)
            if status >= 500:
                raise PostOutcomeUnknown(f"HTTP {status}: {error}") from None
            raise PostRefused(error) from None
        except (OSError, http.client.HTTPException) as exc:  # timeouts are OSErrors too
            raise PostOutcomeUnknown(f"{type(exc).__name__}: {exc}") from None
        data = response.data if isinstance(response.data, dict) else {}
        return str(data.get("ts", ""))

    def thread_metadata(self, channel: str, thread_ts: str | None, oldest: str | None = None,
                        limit: int = 200) -> list[tuple[str, dict[str, Any]]]:
        """(ts, metadata) of the bot's messages in a thread (or the channel, without a thread), newest
        Slack knows of; used to find out whether a reminder was already posted."""
        args: dict[str, Any] = {"channel": channel, "include_all_metadata": True, "limit": limit}
        if oldest:
            args["oldest"] = oldest
        method = "conversations.replies" if thread_ts else "conversations.history"
        if thread_ts:
            args["ts"] = thread_ts
        found: list[tuple[str, dict[str, Any]]] = []
        cursor: str | None = None
        for _page in range(20):
            data = self._call(method, read=True, **args, **({"cursor": cursor} if cursor else {}))
            for message in data.get("messages") or []:
                if isinstance(message.get("metadata"), dict):
                    found.append((str(message.get("ts", "")), message["metadata"]))
            cursor = (data.get("response_metadata") or {}).get("next_cursor") or None
            if not data.get("has_more") or not cursor:
                break
        return found

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


@contextmanager
def _nothing() -> Iterator[None]:
    yield
