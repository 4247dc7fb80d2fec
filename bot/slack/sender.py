"""Everything the bot sends to Slack goes through here: retries on rate limits (honouring
Retry-After) and connection errors, and one failure type the rest of the bot can report."""

from __future__ import annotations

import http.client
import io
import json
import logging
import ssl
import threading
from collections.abc import Callable
from typing import Any
from urllib.error import HTTPError
from urllib.parse import urlsplit
from urllib.request import Request

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackRequestError
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


# A reused connection the server closed while idle fails like this before anything was read: resend once.
_STALE = (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError)


class PostRateLimited(Exception):
    """Slack answered 429: nothing was posted; try again after `retry_after` seconds."""

    def __init__(self, retry_after: float) -> None:
        super().__init__(f"rate limited, retry after {retry_after:g}s")
        self.retry_after = retry_after


class PostRefused(Exception):
    """Slack answered and did not post (ok: false): the outcome is known, nothing reached the channel."""


class PostOutcomeUnknown(Exception):
    """The request may or may not have reached Slack (timeout, connection lost, 5xx)."""


class KeptAliveClient(WebClient):
    """slack_sdk's WebClient opens a new connection (and a TLS handshake) for every call. This one keeps
    one HTTP/1.1 connection per thread to the API host, all sharing one SSLContext; slack_sdk's retry
    handlers (rate limits, connection errors) work as before, since failures look as urllib's do."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._local = threading.local()
        self._json_headers_cache: dict[str, str] | None = None

    def _connection(self, scheme: str, netloc: str, fresh: bool = False) -> http.client.HTTPConnection:
        pool: dict[tuple[str, str], http.client.HTTPConnection] = self._local.__dict__.setdefault("pool", {})
        connection = pool.get((scheme, netloc))
        if connection is None or fresh:
            if connection is not None:
                connection.close()
            connection = (http.client.HTTPSConnection(netloc, timeout=self.timeout, context=self.ssl)
                          if scheme == "https" else http.client.HTTPConnection(netloc, timeout=self.timeout))
            pool[(scheme, netloc)] = connection
        return connection

    def post_json_once(self, method: str, body: dict[str, Any]) -> dict[str, Any]:
        """One JSON POST on this thread's kept-alive connection: no retries, no SlackResponse.

        The reminder engine's path (a catch-up after a restart posts thousands: slack_sdk's per-call
        machinery was a sixth of the CPU per post, and building a urllib Request, splitting the URL and
        reading the charset a tenth of what was left). Raises HTTPError for HTTP >= 400, OSError or
        HTTPException when the outcome is unknown; returns Slack's JSON answer (ok or not)."""
        parts = urlsplit(self.base_url)
        if parts.scheme not in ("http", "https"):
            headers = self._json_headers()
            req = Request(f"{self.base_url}{method}", data=json.dumps(body).encode("utf-8"), headers=headers,
                          method="POST")
            answer = json.loads(self._perform_urllib_http_request_internal(req.full_url, req)["body"])
        else:
            status, reason, headers, data = self._exchange(parts.scheme, parts.netloc, "POST", parts.path + method,
                                                            json.dumps(body).encode("utf-8"), self._json_headers())
            if status >= 400:
                raise HTTPError(f"{self.base_url}{method}", status, reason, headers, io.BytesIO(data))
            answer = json.loads(data)  # JSON is UTF-8 (RFC 8259); json.loads reads the bytes as they are
        return answer if isinstance(answer, dict) else {}

    def _json_headers(self) -> dict[str, str]:
        headers = self._json_headers_cache
        if headers is None:
            headers = self._build_urllib_request_headers(token=self.token or "", has_json=True, has_files=False,
                                                         additional_headers={})
            self._json_headers_cache = headers
        return headers

    def _exchange(self, scheme: str, netloc: str, method: str, target: str, data: bytes | None,
                  headers: dict[str, str]) -> tuple[int, str, Any, bytes]:
        """One request and its whole answer (status, reason, headers, body) on this thread's connection;
        a kept-alive connection the server had closed is replaced and the request sent once more."""
        connection = self._connection(scheme, netloc)
        reused = connection.sock is not None
        try:
            connection.request(method, target, body=data, headers=headers)
            response = connection.getresponse()
        except _STALE:
            if not reused:
                raise
            connection = self._connection(scheme, netloc, fresh=True)
            connection.request(method, target, body=data, headers=headers)
            response = connection.getresponse()
        except OSError:
            connection.close()
            raise
        body = response.read()
        if response.will_close:
            connection.close()
        return response.status, response.reason, response.headers, body

    def _perform_urllib_http_request_internal(self, url: str, req: Request) -> dict[str, Any]:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https"):
            return super()._perform_urllib_http_request_internal(url, req)
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        status, reason, headers, body = self._exchange(parts.scheme, parts.netloc, req.get_method(), target,
                                                       req.data, dict(req.header_items()))  # type: ignore[arg-type]
        if status >= 400:
            raise HTTPError(url, status, reason, headers, io.BytesIO(body))
        charset = headers.get_content_charset() or "utf-8"
        return {"status": status, "headers": headers, "body": body.decode(charset)}


def client_logger() -> logging.Logger:
    """slack_sdk's logger, never below INFO. Its DEBUG lines hold whole request bodies (message text, patient
    labels), and slack_sdk formats one for every call whenever the logger's own level is unset (it tests
    `level <= DEBUG`, and unset is 0), then drops it: for a grade reply that repr was 8% of a command's
    instructions."""
    logger = logging.getLogger("slack_sdk.web.base_client")
    if logger.level == logging.NOTSET:  # an explicit level, never below INFO, never below what was configured
        logger.setLevel(max(logging.INFO, logger.getEffectiveLevel()))
    return logger


def make_client(token: str | None, base_url: str, timeout: float = 10) -> KeptAliveClient:
    """The one client for every Web API call (commands, buttons, reminders): kept-alive connections
    and one SSLContext (without it each HTTPS call builds a context and reloads the CA bundle, ~20 ms CPU)."""
    client = KeptAliveClient(token=token, base_url=base_url, timeout=timeout, ssl=ssl.create_default_context(),
                             logger=client_logger())
    client.retry_handlers.clear()
    client.retry_handlers.extend([RateLimitErrorRetryHandler(max_retry_count=3),
                                  ConnectionErrorRetryHandler(max_retry_count=2)])
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
    def __init__(self, client: KeptAliveClient, on_error: Callable[[str, str], None] | None = None) -> None:
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
        try:
            data = self.client.post_json_once("chat.postMessage", body)
        except HTTPError as exc:
            if exc.code == 429:
                raise PostRateLimited(_retry_after(exc.headers)) from None
            if exc.code >= 500:
                raise PostOutcomeUnknown(f"HTTP {exc.code}: {exc.reason}") from None
            raise PostRefused(f"HTTP {exc.code}: {exc.reason}") from None
        except (OSError, http.client.HTTPException, ValueError) as exc:  # timeouts are OSErrors; ValueError: not JSON
            raise PostOutcomeUnknown(f"{type(exc).__name__}: {exc}") from None
        if not data.get("ok"):
            raise PostRefused(str(data.get("error") or "ok: false"))
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
            try:
                data = self._call(method, read=True, **args, **({"cursor": cursor} if cursor else {}))
            except DeliveryError as exc:
                if exc.reason == "thread_not_found":  # no thread (its parent was deleted): nothing of ours in it
                    return found
                raise
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

    def upload(self, channel: str, thread_ts: str | None, filename: str, content: bytes, *, title: str,
               alt_txt: str, initial_comment: str | None = None) -> str:
        """Share a file in a channel or thread with Slack's external-upload flow (files.getUploadURLExternal,
        POST the bytes, files.completeUploadExternal), done by slack_sdk's files_upload_v2; returns the file id."""
        try:
            response = self.client.files_upload_v2(
                filename=filename, content=content, title=title, alt_txt=alt_txt, channel=channel,
                thread_ts=thread_ts, initial_comment=initial_comment)
        except SlackApiError as exc:
            reason = str(exc.response.get("error") if exc.response is not None else exc)
            log.error("slack file upload failed: %s", reason)
            raise DeliveryError("files.completeUploadExternal", reason) from None
        except (OSError, SlackRequestError) as exc:
            log.error("slack file upload failed: %s", exc)
            raise DeliveryError("files upload", "upload failed") from None
        return str((response.get("file") or {}).get("id", ""))
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
