"""A local stand-in for the Slack Web API and for response URLs.

Why a fake server and not mocks: the bot reaches Slack only through slack_sdk's
real HTTP client and Bolt's ``respond()``, so answering real HTTP exercises the
exact request encoding, retry handlers and error handling that production uses.
``crsbot console`` runs the real Bolt app against it, and the end-to-end tests
use it to see what the bot posted.  Standard library only, because it ships with
the product.

Point slack_sdk at it with ``WebClient(token="xoxb-local", base_url=fake.api_url)``.
Where the fake has to choose, it answers the way Slack documents: errors are
HTTP 200 with ``{"ok": false, "error": ...}``, every method checks the token and
the bot scopes it needs (the defaults are the scopes in ``slack-manifest.json``),
a trigger_id can be exchanged only once, a response URL works five times for
30 minutes, and a message sent to a user ID goes to that user's DM channel.
Socket Mode: ``apps.connections.open`` (app-level ``xapp-`` token only) returns a
local ``ws://`` URL served by ``fake.socket_mode`` (see ``socket_mode_fake``).
App Home: ``views.publish`` keeps one home view per user (``fake.home(user)``);
``users.conversations`` lists the channels a user belongs to (``add_member``), private
ones only where the bot is a member too.
"""

from __future__ import annotations

import copy
import json
import logging
import secrets
import ssl
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from email.message import Message
from email.parser import BytesParser
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

__all__ = [
    "DEFAULT_BOT_SCOPES",
    "RESPONSE_URL_METHOD",
    "SUPPORTED_METHODS",
    "UPLOAD_URL_METHOD",
    "FakeSlack",
    "RecordedCall",
]

logger = logging.getLogger(__name__)

DEFAULT_BOT_SCOPES: frozenset[str] = frozenset(
    {"commands", "chat:write", "users:read", "channels:read", "groups:read", "channels:history",
     "groups:history", "files:write"}
)
"""The scopes the bot gets in production, so a call needing more fails here too."""

RESPONSE_URL_METHOD = "response_url"
"""The ``RecordedCall.method`` of a POST to a response URL handed out by the fake."""

UPLOAD_URL_METHOD = "upload_url"
"""The ``RecordedCall.method`` of a POST of file bytes to an upload URL from ``files.getUploadURLExternal``."""

SUPPORTED_METHODS: frozenset[str] = frozenset(
    {
        "auth.test",
        "apps.connections.open",
        "chat.postMessage",
        "chat.postEphemeral",
        "chat.update",
        "views.open",
        "views.update",
        "users.info",
        "users.conversations",
        "views.publish",
        "conversations.info",
        "conversations.replies",
        "conversations.history",
        "files.getUploadURLExternal",
        "files.completeUploadExternal",
    }
)

# Slack's own limits, so a message the real API would refuse is refused here.
_MAX_MESSAGE_BLOCKS = 50
_MAX_VIEW_BLOCKS = 100
# Fields that form-encoded requests carry as JSON strings.
_JSON_FIELDS: dict[str, str] = {
    "blocks": "invalid_blocks_format",
    "attachments": "invalid_attachments",
    "metadata": "invalid_metadata",
    "view": "invalid_arguments",
    "files": "invalid_arguments",
}
# files.getUploadURLExternal refuses longer alt text (alt_txt_too_large).
_MAX_ALT_TXT = 1000
_MIME_TYPES = {"png": "image/png", "jpg": "image/jpeg", "jpeg": "image/jpeg", "gif": "image/gif",
               "txt": "text/plain", "csv": "text/csv", "json": "application/json", "pdf": "application/pdf"}
_TS_BASE_MICROS = 1_700_000_000_000_000
_TS_STEP_MICROS = 100
_SCOPE_FOR_METHOD: dict[str, str] = {
    "chat.postMessage": "chat:write",
    "chat.postEphemeral": "chat:write",
    "chat.update": "chat:write",
    "users.info": "users:read",
    "files.getUploadURLExternal": "files:write",
    "files.completeUploadExternal": "files:write",
    "users.conversations": "channels:read",
}
_HISTORY_METHODS = ("conversations.replies", "conversations.history")


@dataclass(frozen=True)
class RecordedCall:
    """One request the fake answered, kept so tests and the console can inspect it.

    ``params`` is what the client sent (decoded, without the token); ``response``
    is what the fake answered.  For response-URL posts, ``response`` also says
    where the message went: ``channel``, ``user``, ``ts``, ``ephemeral`` and
    ``action`` ("posted", "replaced" or "deleted").  Treat both as read-only.
    """

    method: str
    params: dict[str, Any]
    at: float
    status: int
    response: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """True when the call was answered 200 with ``ok: true``."""
        return self.status == 200 and self.response.get("ok") is True


@dataclass
class _Fault:
    """A canned failure for the next ``remaining`` calls of one method."""

    status: int
    retry_after: int
    error: str
    remaining: int
    delay: float = 0.0  # > 0: the call succeeds, but the answer is written only after this many seconds


@dataclass
class _ResponseTarget:
    """Where a response URL posts, and how much use it has left."""

    channel: str
    user: str
    created_at: float
    message_ts: str | None
    uses: int = 0


@dataclass
class _Reply:
    """An HTTP answer, built under the lock and written after it is released."""

    status: int
    body: bytes
    content_type: str = "application/json; charset=utf-8"
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


class _SlackError(Exception):
    """A Slack API error answer (HTTP 200, ``ok: false``) raised from a method."""

    def __init__(self, error: str, **extra: Any) -> None:
        super().__init__(error)
        self.error = error
        self.extra = extra


def _missing_field(name: str) -> _SlackError:
    """Slack's answer when a required argument is absent."""
    return _SlackError(
        "invalid_arguments",
        response_metadata={"messages": [f"[ERROR] missing required field: {name}"]},
    )


def _truthy(value: Any) -> bool:
    """Read a boolean the way Slack does, whether it came as JSON or as form text."""
    if isinstance(value, str):
        return value.strip().lower() in {"1", "true", "yes"}
    return bool(value)


def _json_body(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload).encode("utf-8")


class FakeSlack:
    """An in-process HTTP server that answers like the Slack Web API.

    Thread-safe: the server answers each request on its own thread, and the
    inspection methods can be called from any thread while it runs.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        team_id: str = "T0CRSBOT01",
        team_name: str = "crsbot local",
        bot_user_id: str = "U0CRSBOT01",
        bot_id: str = "B0CRSBOT01",
        app_id: str = "A0CRSBOT01",
        tokens: Iterable[str] | None = None,
        scopes: Iterable[str] | None = DEFAULT_BOT_SCOPES,
        response_url_max_uses: int | None = 5,
        response_url_ttl: float | None = 30 * 60,
        clock: Callable[[], float] = time.time,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        """Configure the fake; nothing listens until ``start()``.

        ``tokens=None`` accepts any token (a missing one is still ``not_authed``);
        ``scopes=None`` turns off scope checks; ``clock`` stamps calls and ages
        response URLs, so tests can drive it with a fake clock. With ``tls`` (a server-side
        context) it serves HTTPS, as Slack does, and keeps connections alive (HTTP/1.1).
        """
        self.tls = tls
        self.host = host
        self.port = port
        self.team_id = team_id
        self.team_name = team_name
        self.bot_user_id = bot_user_id
        self.bot_id = bot_id
        self.app_id = app_id
        self._tokens: frozenset[str] | None = None if tokens is None else frozenset(tokens)
        self._scopes: frozenset[str] | None = None if scopes is None else frozenset(scopes)
        self._response_url_max_uses = response_url_max_uses
        self._response_url_ttl = response_url_ttl
        self._clock = clock

        self._lock = threading.RLock()
        self._changed = threading.Condition(self._lock)
        self._listener_lock = threading.Lock()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

        self._ts_counter = 0
        self._id_counter = 0
        self._generation = 0
        self._calls: list[RecordedCall] = []
        self._messages: dict[str, list[dict[str, Any]]] = {}
        self._ephemerals: list[dict[str, Any]] = []
        self._views: dict[str, dict[str, Any]] = {}
        self._external_ids: dict[str, str] = {}
        self._exchanged_triggers: set[str] = set()
        self._response_urls: dict[str, _ResponseTarget] = {}
        self._faults: dict[str, list[_Fault]] = {}
        self._listeners: list[Callable[[RecordedCall], None]] = []
        self._users: dict[str, dict[str, Any]] = {}
        self._channels: dict[str, dict[str, Any]] = {}
        self._files: dict[str, _UploadedFile] = {}
        self._upload_urls: dict[str, str] = {}
        self._socket_mode: Any = None
        self._members: dict[str, set[str]] = {}
        self._homes: dict[str, dict[str, Any]] = {}
        self._api: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
            "auth.test": self._auth_test,
            "apps.connections.open": self._apps_connections_open,
            "chat.postMessage": self._chat_post_message,
            "chat.postEphemeral": self._chat_post_ephemeral,
            "chat.update": self._chat_update,
            "views.open": self._views_open,
            "views.update": self._views_update,
            "users.info": self._users_info,
            "users.conversations": self._users_conversations,
            "views.publish": self._views_publish,
            "conversations.info": self._conversations_info,
            "conversations.replies": self._conversations_replies,
            "conversations.history": self._conversations_history,
            "files.getUploadURLExternal": self._files_get_upload_url_external,
            "files.completeUploadExternal": self._files_complete_upload_external,
        }
        self.add_user(bot_user_id, name="crsbot", real_name="crsbot", is_bot=True)

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> FakeSlack:
        """Bind the port and serve on a daemon thread; returns self for chaining."""
        if self._server is not None:
            raise RuntimeError("FakeSlack is already running")
        server = _Server((self.host, self.port), self)
        if self.tls is not None:
            # The handshake happens on the handler's thread at its first read, not in accept().
            server.socket = self.tls.wrap_socket(server.socket, server_side=True, do_handshake_on_connect=False)
        self.port = server.server_address[1]
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"FakeSlack:{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and free the port; safe to call twice."""
        server, thread = self._server, self._thread
        self._server = self._thread = None
        if self._socket_mode is not None:
            self._socket_mode.stop()
            self._socket_mode = None
        if server is not None:
            server.shutdown()
            server.server_close()
        if thread is not None:
            thread.join(timeout=5)

    def __enter__(self) -> FakeSlack:
        return self if self._server is not None else self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        """Root of the server without a trailing slash, e.g. ``http://127.0.0.1:5555``."""
        if self._server is None:
            raise RuntimeError("FakeSlack is not running; call start() first")
        host = "127.0.0.1" if self.host in ("", "0.0.0.0") else self.host
        return f"{'https' if self.tls is not None else 'http'}://{host}:{self.port}"

    @property
    def socket_mode(self) -> Any:
        """The Socket Mode side (a started ``SocketModeFake``), created on first use."""
        with self._lock:
            if self._socket_mode is None:
                from bot.testing.socket_mode_fake import SocketModeFake

                self._socket_mode = SocketModeFake(self.app_id, host=self.host or "127.0.0.1").start()
            return self._socket_mode

    @property
    def api_url(self) -> str:
        """What to pass as slack_sdk's ``base_url`` (ends with ``/api/``)."""
        return f"{self.base_url}/api/"

    # ------------------------------------------------------------------ set-up

    def add_user(
        self,
        user_id: str,
        *,
        name: str | None = None,
        real_name: str | None = None,
        tz: str = "America/New_York",
        is_bot: bool = False,
    ) -> dict[str, Any]:
        """Register the user ``users.info`` returns; unknown IDs get a made-up user."""
        name = name or f"user.{user_id.lower()}"
        real_name = real_name or f"Test User {user_id}"
        tz_label, tz_offset = _describe_tz(tz)
        user = {
            "id": user_id,
            "team_id": self.team_id,
            "name": name,
            "real_name": real_name,
            "deleted": False,
            "is_bot": is_bot,
            "is_app_user": False,
            "tz": tz,
            "tz_label": tz_label,
            "tz_offset": tz_offset,
            "profile": {
                "real_name": real_name,
                "display_name": name,
                "real_name_normalized": real_name,
                "display_name_normalized": name,
                "team": self.team_id,
            },
        }
        with self._lock:
            self._users[user_id] = user
        return copy.deepcopy(user)

    def add_channel(
        self, channel_id: str, *, name: str | None = None, is_private: bool = False
    ) -> dict[str, Any]:
        """Register the channel ``conversations.info`` returns (private ones need groups:read)."""
        channel = {
            "id": channel_id,
            "name": name or f"channel-{channel_id.lower()}",
            "is_channel": not is_private,
            "is_group": is_private,
            "is_im": False,
            "is_private": is_private,
            "is_archived": False,
            "is_general": False,
            "is_member": True,
            "created": 1_700_000_000,
            "creator": "U0CREATOR1",
            "topic": {"value": "", "creator": "", "last_set": 0},
            "purpose": {"value": "", "creator": "", "last_set": 0},
        }
        with self._lock:
            self._channels[channel_id] = channel
        return copy.deepcopy(channel)

    def add_member(self, channel_id: str, *users: str) -> None:
        """Make ``users`` members of the channel (registering it if needed), for users.conversations."""
        with self._lock:
            if channel_id not in self._channels:
                self.add_channel(channel_id, is_private=channel_id.startswith("G"))
            self._members.setdefault(channel_id, set()).update(users)

    def home(self, user_id: str) -> dict[str, Any] | None:
        """The App Home view last published for ``user_id`` (None if never)."""
        with self._lock:
            view = self._homes.get(user_id)
            return copy.deepcopy(view) if view is not None else None

    def app_home_opened(self, user_id: str) -> dict[str, Any]:
        """The Events API payload Slack sends when ``user_id`` opens the app's Home tab: POST it
        (signed, as JSON) to the bot's request URL, or send it as an ``events_api`` envelope."""
        now = self._clock()
        with self._lock:
            self._id_counter += 1
            event: dict[str, Any] = {"type": "app_home_opened", "user": user_id,
                                     "channel": self._resolve_channel(user_id), "tab": "home",
                                     "event_ts": f"{now:.6f}"}
            if user_id in self._homes:
                event["view"] = copy.deepcopy(self._homes[user_id])
            return {"token": "fake-verification-token", "team_id": self.team_id, "api_app_id": self.app_id,
                    "event": event, "type": "event_callback", "event_id": f"Ev0HOME{self._id_counter:05d}",
                    "event_time": int(now), "is_ext_shared_channel": False,
                    "authorizations": [{"enterprise_id": None, "team_id": self.team_id,
                                        "user_id": self.bot_user_id, "is_bot": True}]}

    def new_response_url(
        self, channel: str, user: str, *, message_ts: str | None = None
    ) -> str:
        """Hand out a response URL, as Slack puts in slash-command and action payloads.

        ``message_ts`` names the message that ``replace_original`` and
        ``delete_original`` act on (the message a button was clicked in); without
        it they act on the first message posted through this URL.
        """
        token = secrets.token_hex(12)
        with self._lock:
            self._response_urls[token] = _ResponseTarget(
                channel=self._resolve_channel(channel),
                user=user,
                created_at=self._clock(),
                message_ts=message_ts,
            )
        return f"{self.base_url}/response/{token}"

    def new_trigger_id(self) -> str:
        """A trigger_id in Slack's format, for payloads that open a modal."""
        return f"{int(self._clock() * 1000)}.{secrets.randbelow(10**10)}.{secrets.token_hex(16)}"

    def fail_next(
        self,
        method: str,
        status: int = 429,
        retry_after: int = 1,
        times: int = 1,
        *,
        error: str | None = None,
    ) -> None:
        """Make the next ``times`` calls of ``method`` fail, to test retries and error paths.

        429 answers with ``Retry-After`` and ``ratelimited``; 5xx with
        ``fatal_error``; ``status=200`` with ``error=...`` answers a plain Slack
        error such as ``channel_not_found``.  ``method`` may be
        ``RESPONSE_URL_METHOD`` to fail response-URL posts.  Faults queue in order.
        """
        if method not in SUPPORTED_METHODS and method not in (RESPONSE_URL_METHOD, UPLOAD_URL_METHOD):
            raise ValueError(f"FakeSlack does not implement {method!r}")
        if times < 1:
            raise ValueError("times must be at least 1")
        if retry_after < 0:
            raise ValueError("retry_after must not be negative")
        if status == 200:
            if not error:
                raise ValueError("status=200 needs an error, e.g. error='channel_not_found'")
        elif status != 429 and not 500 <= status <= 599:
            raise ValueError("status must be 429, a 5xx, or 200 with an error")
        default_error = "ratelimited" if status == 429 else "fatal_error"
        fault = _Fault(status, retry_after, error or default_error, times)
        with self._lock:
            self._faults.setdefault(method, []).append(fault)

    def respond_slowly(self, method: str, delay: float, times: int = 1) -> None:
        """Accept the next ``times`` calls of ``method`` (the message is posted and visible at once) but
        write the answer only after ``delay`` seconds, so a client with a shorter timeout gives up on a
        call that in fact succeeded."""
        if method not in SUPPORTED_METHODS:
            raise ValueError(f"FakeSlack does not implement {method!r}")
        if times < 1 or delay <= 0:
            raise ValueError("times must be at least 1 and delay positive")
        with self._lock:
            self._faults.setdefault(method, []).append(_Fault(200, 0, "", times, delay))

    def subscribe(self, callback: Callable[[RecordedCall], None]) -> Callable[[], None]:
        """Call ``callback`` with every successful call; returns an unsubscribe function.

        Callbacks run one at a time, on the request's thread, before the client
        gets its answer: when a bot call returns, the console has already seen
        it.  An exception in a callback is logged and otherwise ignored.
        """
        with self._lock:
            self._listeners.append(callback)

        def unsubscribe() -> None:
            with self._lock:
                if callback in self._listeners:
                    self._listeners.remove(callback)

        return unsubscribe

    def reset(self) -> None:
        """Forget calls, messages, views, response URLs and pending faults.

        Registered users, channels and subscribers stay; ``ts`` values keep
        increasing so they never repeat.
        """
        with self._changed:
            self._calls.clear()
            self._messages.clear()
            self._ephemerals.clear()
            self._views.clear()
            self._external_ids.clear()
            self._exchanged_triggers.clear()
            self._response_urls.clear()
            self._files.clear()
            self._upload_urls.clear()
            self._faults.clear()
            self._generation += 1
            self._changed.notify_all()

    # ------------------------------------------------------------------ inspection

    @property
    def calls(self) -> list[RecordedCall]:
        """Every request answered so far, failed ones included, oldest first."""
        with self._lock:
            return list(self._calls)

    def calls_to(self, method: str) -> list[RecordedCall]:
        """The recorded calls of one method (use ``RESPONSE_URL_METHOD`` for response URLs)."""
        with self._lock:
            return [call for call in self._calls if call.method == method]

    def messages(self, channel: str, *, thread_ts: str | None = None) -> list[dict[str, Any]]:
        """A channel's messages as they stand now (after updates), oldest first.

        A user ID means that user's DM with the bot.  With ``thread_ts``, only
        the replies in that thread.
        """
        with self._lock:
            stored = self._messages.get(self._resolve_channel(channel), [])
            if thread_ts is not None:
                stored = [
                    m for m in stored if m.get("thread_ts") == thread_ts and m["ts"] != thread_ts
                ]
            return copy.deepcopy(stored)

    def ephemerals(
        self, channel: str | None = None, *, user: str | None = None
    ) -> list[dict[str, Any]]:
        """Ephemeral messages (``chat.postEphemeral`` and response URLs), oldest first."""
        with self._lock:
            resolved = None if channel is None else self._resolve_channel(channel)
            return copy.deepcopy(
                [
                    m
                    for m in self._ephemerals
                    if (resolved is None or m["channel"] == resolved)
                    and (user is None or m["user"] == user)
                ]
            )

    def file_content(self, file_id: str) -> bytes | None:
        """The bytes uploaded for a file (None if the upload URL was never used)."""
        with self._lock:
            found = self._files.get(file_id)
            return None if found is None else found.data

    def files(self) -> list[dict[str, Any]]:
        """Files whose upload was completed, as Slack describes them, oldest first."""
        with self._lock:
            return [f.describe() for f in self._files.values() if f.completed]

    def views(self) -> list[dict[str, Any]]:
        """Open views as they stand now, in the order they were opened."""
        with self._lock:
            return copy.deepcopy(list(self._views.values()))

    def wait_for(
        self,
        match: str | Callable[[RecordedCall], bool],
        timeout: float = 5.0,
        *,
        after: int = 0,
    ) -> RecordedCall:
        """Block until a matching call has been recorded and return it.

        A method name matches successful calls of that method (see
        ``RecordedCall.ok``); a predicate sees every call.  Calls recorded before
        this is called count, from index ``after`` on (pass ``len(fake.calls)``
        to wait only for new ones).  Raises ``TimeoutError`` naming what was seen.
        """
        if isinstance(match, str):
            method = match
            description = f"a successful {method!r} call"

            def predicate(call: RecordedCall) -> bool:
                return call.method == method and call.ok

        else:
            predicate = match
            description = f"a call matching {getattr(match, '__name__', repr(match))}"
        deadline = time.monotonic() + timeout
        with self._changed:
            generation = self._generation
            index = after
            while True:
                if generation != self._generation:
                    generation, index = self._generation, 0
                for call in self._calls[index:]:
                    if predicate(call):
                        return call
                index = max(index, len(self._calls))
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    seen = ", ".join(f"{c.method}={c.status}" for c in self._calls) or "none"
                    raise TimeoutError(
                        f"FakeSlack: no {description} within {timeout:g}s; calls seen: {seen}"
                    )
                self._changed.wait(remaining)

    # ------------------------------------------------------------------ request handling

    def _handle(self, http_method: str, path: str, headers: Message, body: bytes) -> _Reply:
        """Answer one HTTP request; the handler thread writes the returned reply."""
        url = urlsplit(path)
        if url.path.startswith("/api/"):
            reply, call = self._handle_api(url.path[len("/api/"):], url.query, headers, body)
        elif url.path.startswith("/response/") and http_method == "POST":
            reply, call = self._handle_response_url(url.path[len("/response/"):], body)
        elif url.path.startswith("/upload/v1/") and http_method == "POST":
            reply, call = self._handle_upload(url.path[len("/upload/v1/"):], headers, body)
        else:
            return _Reply(404, b"not found", "text/plain; charset=utf-8")
        self._notify(call)
        return reply

    def _handle_api(
        self, method: str, query: str, headers: Message, body: bytes
    ) -> tuple[_Reply, RecordedCall]:
        params, parse_error = _parse_params(query, headers, body)
        header_token = _bearer_token(headers.get("Authorization"))
        body_token = params.pop("token", None)
        token = header_token or (body_token if isinstance(body_token, str) else None)
        scope_header = {} if self._scopes is None else {"x-oauth-scopes": ",".join(sorted(self._scopes))}
        with self._changed:
            fault = self._take_fault(method) if method in self._api else None
            delay = 0.0
            if fault is not None and fault.delay > 0:
                delay, fault = fault.delay, None
            if fault is not None:
                status, payload = fault.status, {"ok": False, "error": fault.error}
            else:
                status = 200
                try:
                    payload = self._call_api(method, params, token, parse_error)
                except _SlackError as exc:
                    payload = {"ok": False, "error": exc.error, **exc.extra}
            if method not in self._api:
                payload["req_method"] = method
            call = self._record(method, params, status, payload)
        headers_out = dict(scope_header)
        if fault is not None and fault.status == 429:
            headers_out["Retry-After"] = str(fault.retry_after)
        return _Reply(status, _json_body(payload), headers=headers_out, delay=delay), call

    def _call_api(
        self, method: str, params: dict[str, Any], token: str | None, parse_error: str | None
    ) -> dict[str, Any]:
        """Run one API method; caller holds the lock.  Checks mirror Slack's order."""
        handler = self._api.get(method)
        if handler is None:
            raise _SlackError("unknown_method")
        if not token:
            raise _SlackError("not_authed")
        if self._tokens is not None and token not in self._tokens:
            raise _SlackError("invalid_auth")
        if (method == "apps.connections.open") != token.startswith("xapp-"):
            raise _SlackError("not_allowed_token_type")  # app-level tokens open sockets, and only that
        if parse_error is not None:
            raise _SlackError(parse_error)
        needed = self._needed_scope(method, params)
        if needed is not None and self._scopes is not None and needed not in self._scopes:
            raise _SlackError(
                "missing_scope", needed=needed, provided=",".join(sorted(self._scopes))
            )
        return handler(params)

    def _handle_response_url(self, token: str, body: bytes) -> tuple[_Reply, RecordedCall]:
        try:
            params = json.loads(body.decode("utf-8") or "null")
        except (UnicodeDecodeError, json.JSONDecodeError):
            params = None
        with self._changed:
            target = self._response_urls.get(token)
            fault = self._take_fault(RESPONSE_URL_METHOD)
            if fault is not None:
                status, outcome = fault.status, {"ok": False, "error": fault.error}
            else:
                status, outcome = self._respond(target, params)
            call = self._record(
                RESPONSE_URL_METHOD, params if isinstance(params, dict) else {}, status, outcome
            )
        headers = {"Retry-After": str(fault.retry_after)} if fault and fault.status == 429 else {}
        text = "ok" if outcome.get("ok") else str(outcome["error"])
        return _Reply(status, text.encode("utf-8"), "text/html", headers), call

    def _respond(
        self, target: _ResponseTarget | None, params: Any
    ) -> tuple[int, dict[str, Any]]:
        """Apply a response-URL post; caller holds the lock.  Errors are Slack's webhook ones."""
        if target is None:
            return 404, {"ok": False, "error": "no_service"}
        if (
            self._response_url_ttl is not None
            and self._clock() - target.created_at > self._response_url_ttl
        ):
            return 404, {"ok": False, "error": "expired_url"}
        if self._response_url_max_uses is not None and target.uses >= self._response_url_max_uses:
            return 404, {"ok": False, "error": "used_url"}
        if not isinstance(params, dict):
            return 400, {"ok": False, "error": "invalid_payload"}
        try:
            blocks = self._blocks(params, _MAX_MESSAGE_BLOCKS)
        except _SlackError as exc:
            return 400, {"ok": False, "error": exc.error}
        target.uses += 1
        where = {"channel": target.channel, "user": target.user}
        original = (
            None if target.message_ts is None else self._find_message(target.channel, target.message_ts)
        )
        if _truthy(params.get("delete_original")):
            if original is not None:
                self._remove_message(original)
            return 200, {"ok": True, "action": "deleted", "ts": target.message_ts, **where}
        text = params.get("text")
        if not text and not blocks and not params.get("attachments"):
            return 400, {"ok": False, "error": "no_text"}
        if _truthy(params.get("replace_original")) and original is not None:
            _set_content(original, params, blocks)
            return 200, {
                "ok": True,
                "action": "replaced",
                "ts": original["ts"],
                "ephemeral": any(m is original for m in self._ephemerals),
                **where,
            }
        in_channel = params.get("response_type") == "in_channel"
        message = self._new_message(params, blocks)
        if in_channel:
            message.update(user=self.bot_user_id, bot_id=self.bot_id, app_id=self.app_id)
            self._messages.setdefault(target.channel, []).append(message)
        else:
            message["user"] = target.user
            self._ephemerals.append(message)
        message["channel"] = target.channel
        if target.message_ts is None:
            target.message_ts = message["ts"]
        return 200, {
            "ok": True,
            "action": "posted",
            "ts": message["ts"],
            "ephemeral": not in_channel,
            **where,
        }

    def _handle_upload(self, token: str, headers: Message, body: bytes) -> tuple[_Reply, RecordedCall]:
        """Take a file's bytes at its upload URL, sent raw or as a multipart form (both work with Slack)."""
        data = _multipart_file(headers, body) if headers.get_content_type() == "multipart/form-data" else body
        with self._changed:
            file_id = self._upload_urls.get(token)
            fault = self._take_fault(UPLOAD_URL_METHOD)
            uploaded = self._files.get(file_id) if file_id else None
            if fault is not None:
                status, outcome = fault.status, {"ok": False, "error": fault.error}
            elif uploaded is None:
                status, outcome = 404, {"ok": False, "error": "not_found"}
            elif not data:
                status, outcome = 400, {"ok": False, "error": "empty_upload"}
            else:
                uploaded.data = data
                del self._upload_urls[token]  # an upload URL takes one file
                status, outcome = 200, {"ok": True, "file_id": uploaded.id, "size": len(data)}
            call = self._record(UPLOAD_URL_METHOD, {"file_id": file_id, "size": len(data or b"")}, status, outcome)
        text = f"OK - {len(data)}" if outcome["ok"] else str(outcome["error"])
        return _Reply(status, text.encode("utf-8"), "text/plain; charset=utf-8"), call

    def _take_fault(self, method: str) -> _Fault | None:
        """Consume one pending fault for ``method``; caller holds the lock."""
        queue = self._faults.get(method)
        if not queue:
            return None
        fault = queue[0]
        fault.remaining -= 1
        if fault.remaining == 0:
            queue.pop(0)
        return fault

    def _record(
        self, method: str, params: dict[str, Any], status: int, response: dict[str, Any]
    ) -> RecordedCall:
        """Append a call and wake waiters; caller holds the lock."""
        call = RecordedCall(
            method=method,
            params=copy.deepcopy(params),
            at=self._clock(),
            status=status,
            response=copy.deepcopy(response),
        )
        self._calls.append(call)
        self._changed.notify_all()
        return call

    def _notify(self, call: RecordedCall) -> None:
        """Tell subscribers about a successful call, outside the state lock."""
        if not call.ok:
            return
        with self._lock:
            listeners = list(self._listeners)
        with self._listener_lock:
            for listener in listeners:
                try:
                    listener(call)
                except Exception:
                    logger.exception("FakeSlack subscriber %r failed", listener)

    # ------------------------------------------------------------------ helpers (lock held)

    def _needed_scope(self, method: str, params: dict[str, Any]) -> str | None:
        if method in _HISTORY_METHODS:
            channel_id = str(params.get("channel", ""))
            if channel_id.startswith("D"):
                return "im:history"
            private = bool(self._channels.get(channel_id, {}).get("is_private")) or channel_id.startswith("G")
            return "groups:history" if private else "channels:history"
        if method == "conversations.info":
            channel_id = str(params.get("channel", ""))
            channel = self._channels.get(channel_id)
            if channel_id.startswith("D"):
                return "im:read"
            private = channel["is_private"] if channel else channel_id.startswith("G")
            return "groups:read" if private else "channels:read"
        return _SCOPE_FOR_METHOD.get(method)

    def _next_ts(self) -> str:
        self._ts_counter += 1
        micros = _TS_BASE_MICROS + self._ts_counter * _TS_STEP_MICROS
        return f"{micros // 1_000_000}.{micros % 1_000_000:06d}"

    def _resolve_channel(self, channel: str) -> str:
        """Map a user ID to the bot's DM with that user, as chat.postMessage does."""
        if channel[:1] in ("U", "W"):
            return "D" + channel[1:]
        return channel

    def _blocks(self, params: dict[str, Any], limit: int) -> list[dict[str, Any]] | None:
        blocks = params.get("blocks")
        if blocks is None:
            return None
        if not isinstance(blocks, list) or not all(
            isinstance(b, dict) and isinstance(b.get("type"), str) for b in blocks
        ):
            raise _SlackError("invalid_blocks")
        if len(blocks) > limit:
            raise _SlackError("invalid_blocks", response_metadata={
                "messages": [f"[ERROR] no more than {limit} items allowed [json-pointer:/blocks]"]
            })
        return blocks

    def _new_message(self, params: dict[str, Any], blocks: list[dict[str, Any]] | None) -> dict[str, Any]:
        message: dict[str, Any] = {
            "type": "message",
            "ts": self._next_ts(),
            "text": params.get("text") or "",
            "team": self.team_id,
        }
        if blocks is not None:
            message["blocks"] = blocks
        for key in ("attachments", "thread_ts", "metadata"):
            if params.get(key):
                message[key] = params[key]
        if message.get("thread_ts") and _truthy(params.get("reply_broadcast")):
            message["subtype"] = "thread_broadcast"
        return message

    def _find_message(self, channel: str, ts: str) -> dict[str, Any] | None:
        for message in self._messages.get(channel, []):
            if message["ts"] == ts:
                return message
        for message in self._ephemerals:
            if message["channel"] == channel and message["ts"] == ts:
                return message
        return None

    def _remove_message(self, message: dict[str, Any]) -> None:
        for stored in (self._messages.get(message["channel"], []), self._ephemerals):
            for i, candidate in enumerate(stored):
                if candidate is message:
                    del stored[i]
                    return

    def _require(self, params: dict[str, Any], name: str, error: str | None = None) -> str:
        value = params.get(name)
        if not isinstance(value, str) or not value:
            raise _SlackError(error) if error else _missing_field(name)
        return value

    # ------------------------------------------------------------------ API methods (lock held)

    def _auth_test(self, params: dict[str, Any]) -> dict[str, Any]:
        return {
            "ok": True,
            "url": "https://crsbot-local.slack.com/",
            "team": self.team_name,
            "user": "crsbot",
            "team_id": self.team_id,
            "user_id": self.bot_user_id,
            "bot_id": self.bot_id,
            "is_enterprise_install": False,
        }

    def _apps_connections_open(self, params: dict[str, Any]) -> dict[str, Any]:
        return {"ok": True, "url": self.socket_mode.open_url()}

    def _chat_post_message(self, params: dict[str, Any]) -> dict[str, Any]:
        channel = self._resolve_channel(self._require(params, "channel", "channel_not_found"))
        blocks = self._blocks(params, _MAX_MESSAGE_BLOCKS)
        if not params.get("text") and not blocks and not params.get("attachments"):
            raise _SlackError("no_text")
        metadata = params.get("metadata")
        if metadata is not None and not (
                isinstance(metadata, dict) and isinstance(metadata.get("event_type"), str)
                and metadata["event_type"] and isinstance(metadata.get("event_payload"), dict)):
            raise _SlackError("invalid_metadata_format")
        message = self._new_message(params, blocks)
        message.update(user=self.bot_user_id, bot_id=self.bot_id, app_id=self.app_id)
        stored = {**message, "channel": channel}
        self._messages.setdefault(channel, []).append(stored)
        return {"ok": True, "channel": channel, "ts": message["ts"], "message": message}

    def _chat_post_ephemeral(self, params: dict[str, Any]) -> dict[str, Any]:
        channel = self._resolve_channel(self._require(params, "channel", "channel_not_found"))
        user = self._require(params, "user", "user_not_found")
        blocks = self._blocks(params, _MAX_MESSAGE_BLOCKS)
        if not params.get("text") and not blocks and not params.get("attachments"):
            raise _SlackError("no_text")
        message = self._new_message(params, blocks)
        message.update(channel=channel, user=user)
        self._ephemerals.append(message)
        return {"ok": True, "message_ts": message["ts"]}

    def _chat_update(self, params: dict[str, Any]) -> dict[str, Any]:
        channel = self._resolve_channel(self._require(params, "channel", "channel_not_found"))
        ts = self._require(params, "ts", "message_not_found")
        stored = self._messages.get(channel, [])
        message = next((m for m in stored if m["ts"] == ts), None)
        if message is None:
            raise _SlackError("message_not_found")
        blocks = self._blocks(params, _MAX_MESSAGE_BLOCKS)
        if "text" not in params and blocks is None and "attachments" not in params:
            raise _SlackError("no_text")
        _set_content(message, params, blocks)
        message["edited"] = {"user": self.bot_user_id, "ts": self._next_ts()}
        shown = {k: v for k, v in message.items() if k != "channel"}
        return {"ok": True, "channel": channel, "ts": ts, "text": message["text"], "message": shown}

    def _views_open(self, params: dict[str, Any]) -> dict[str, Any]:
        view = params.get("view")
        if not isinstance(view, dict):
            raise _missing_field("view")
        trigger = params.get("trigger_id") or params.get("interactivity_pointer")
        if not trigger:
            raise _missing_field("trigger_id")
        if trigger in self._exchanged_triggers:
            raise _SlackError("exchanged_trigger_id")
        _check_view(view, self._blocks(view, _MAX_VIEW_BLOCKS))
        external_id = view.get("external_id") or ""
        if external_id and external_id in self._external_ids:
            raise _SlackError("duplicate_external_id")
        self._exchanged_triggers.add(str(trigger))
        self._id_counter += 1
        view_id = f"V0CRS{self._id_counter:05d}"
        stored: dict[str, Any] = {
            "id": view_id,
            "team_id": self.team_id,
            "type": "modal",
            "blocks": [],
            "private_metadata": "",
            "callback_id": "",
            "state": {"values": {}},
            "clear_on_close": False,
            "notify_on_close": False,
            "close": None,
            "submit": None,
            "previous_view_id": None,
            "root_view_id": view_id,
            "app_id": self.app_id,
            "bot_id": self.bot_id,
            **view,
            "external_id": external_id,
            "hash": self._view_hash(),
        }
        stored["id"] = stored["root_view_id"] = view_id
        self._views[view_id] = stored
        if external_id:
            self._external_ids[external_id] = view_id
        return {"ok": True, "view": copy.deepcopy(stored)}

    def _views_update(self, params: dict[str, Any]) -> dict[str, Any]:
        view = params.get("view")
        if not isinstance(view, dict):
            raise _missing_field("view")
        if not params.get("view_id") and not params.get("external_id"):
            raise _missing_field("view_id")
        view_id = params.get("view_id") or self._external_ids.get(str(params["external_id"]))
        stored = self._views.get(str(view_id))
        if stored is None:
            raise _SlackError("not_found")
        if params.get("hash") and params["hash"] != stored["hash"]:
            raise _SlackError("hash_conflict")
        _check_view(view, self._blocks(view, _MAX_VIEW_BLOCKS))
        new_external = view.get("external_id")
        if new_external and self._external_ids.get(new_external, stored["id"]) != stored["id"]:
            raise _SlackError("duplicate_external_id")
        kept = {k: stored[k] for k in ("id", "team_id", "root_view_id", "app_id", "bot_id", "state")}
        old_external = stored["external_id"]
        stored.clear()
        stored.update(
            {
                "type": "modal",
                "blocks": [],
                "private_metadata": "",
                "callback_id": "",
                "previous_view_id": None,
                **view,
                **kept,
                "external_id": new_external or old_external,
                "hash": self._view_hash(),
            }
        )
        if new_external:
            self._external_ids[new_external] = stored["id"]
        return {"ok": True, "view": copy.deepcopy(stored)}

    def _view_hash(self) -> str:
        self._id_counter += 1
        return f"{int(self._clock())}.{self._id_counter:08d}"

    def _users_info(self, params: dict[str, Any]) -> dict[str, Any]:
        user_id = self._require(params, "user", "user_not_found")
        if user_id not in self._users:
            self.add_user(user_id)
        return {"ok": True, "user": copy.deepcopy(self._users[user_id])}

    def _files_get_upload_url_external(self, params: dict[str, Any]) -> dict[str, Any]:
        filename = self._require(params, "filename")
        try:
            length = int(params.get("length"))  # type: ignore[arg-type]
        except (TypeError, ValueError):
            raise _missing_field("length") from None
        if length <= 0:
            raise _SlackError("missing_argument")  # what Slack answers for length 0
        alt_txt = params.get("alt_txt")
        if isinstance(alt_txt, str) and len(alt_txt) > _MAX_ALT_TXT:
            raise _SlackError("alt_txt_too_large")
        self._id_counter += 1
        file_id = f"F0CRS{self._id_counter:06d}"
        token = secrets.token_hex(12)
        self._files[file_id] = _UploadedFile(id=file_id, name=filename, length=length,
                                             alt_txt=alt_txt if isinstance(alt_txt, str) else None,
                                             created=int(self._clock()), user=self.bot_user_id)
        self._upload_urls[token] = file_id
        return {"ok": True, "upload_url": f"{self.base_url}/upload/v1/{token}", "file_id": file_id}

    def _files_complete_upload_external(self, params: dict[str, Any]) -> dict[str, Any]:
        """Share uploaded files; a file whose bytes never reached its upload URL is not found, as with Slack
        (the upload service, not this method, creates the file's content)."""
        requested = params.get("files")
        if not isinstance(requested, list) or not requested or not all(
            isinstance(f, dict) and isinstance(f.get("id"), str) for f in requested
        ):
            raise _missing_field("files")
        found = [self._files.get(f["id"]) for f in requested]
        if any(f is None or f.data is None or f.completed for f in found):
            raise _SlackError("file_not_found")
        channels = [c for c in str(params.get("channels") or "").split(",") if c]
        if params.get("channel_id"):
            channels.insert(0, str(params["channel_id"]))
        thread_ts = params.get("thread_ts")
        if thread_ts and len(channels) != 1:
            raise _SlackError("invalid_arguments", response_metadata={
                "messages": ["[ERROR] thread_ts needs exactly one channel"]})
        targets = [self._resolve_channel(c) for c in channels]
        if thread_ts and self._find_message(targets[0], str(thread_ts)) is None:
            raise _SlackError("invalid_thread_ts")
        files: list[_UploadedFile] = [f for f in found if f is not None]
        for f, asked in zip(files, requested):
            f.title = asked.get("title") or f.name
            f.completed = True
        for channel in targets:
            message: dict[str, Any] = {
                "type": "message", "subtype": "file_share" if not thread_ts else None, "ts": self._next_ts(),
                "text": str(params.get("initial_comment") or ""), "team": self.team_id, "user": self.bot_user_id,
                "bot_id": self.bot_id, "app_id": self.app_id, "upload": True, "display_as_bot": False,
                "files": [f.describe() for f in files], "channel": channel,
            }
            if thread_ts:
                message["thread_ts"] = str(thread_ts)
            message = {k: v for k, v in message.items() if v is not None}
            self._messages.setdefault(channel, []).append(message)
            for f in files:
                f.shares.setdefault(channel, []).append(message["ts"])
        return {"ok": True, "files": [{"id": f.id, "title": f.title} for f in files]}
    def _views_publish(self, params: dict[str, Any]) -> dict[str, Any]:
        user_id = self._require(params, "user_id", "user_not_found")
        view = params.get("view")
        if not isinstance(view, dict):
            raise _missing_field("view")
        if view.get("type") != "home":
            raise _SlackError("invalid_arguments", response_metadata={
                "messages": ["[ERROR] must be 'home' [json-pointer:/view/type]"]})
        if self._blocks(view, _MAX_VIEW_BLOCKS) is None:
            raise _missing_field("blocks")
        old = self._homes.get(user_id)
        if params.get("hash") and old is not None and params["hash"] != old["hash"]:
            raise _SlackError("hash_conflict")
        self._id_counter += 1
        view_id = old["id"] if old else f"V0HOME{self._id_counter:05d}"
        stored = {"id": view_id, "team_id": self.team_id, "type": "home", "private_metadata": "",
                  "callback_id": "", "app_id": self.app_id, "bot_id": self.bot_id, **view,
                  "hash": self._view_hash()}
        self._homes[user_id] = stored
        return {"ok": True, "view": copy.deepcopy(stored)}

    def _users_conversations(self, params: dict[str, Any]) -> dict[str, Any]:
        user_id = str(params.get("user") or self.bot_user_id)
        types = {t.strip() for t in str(params.get("types") or "public_channel").split(",") if t.strip()}
        if "private_channel" in types and self._scopes is not None and "groups:read" not in self._scopes:
            raise _SlackError("missing_scope", needed="groups:read", provided=",".join(sorted(self._scopes)))
        found = []
        for channel_id in sorted(self._members):
            members = self._members[channel_id]
            channel = self._channels[channel_id]
            kind = "private_channel" if channel["is_private"] else "public_channel"
            # A bot sees another user's private channels only where it is a member too.
            visible = not channel["is_private"] or self.bot_user_id in members or user_id == self.bot_user_id
            if user_id in members and kind in types and visible:
                found.append(copy.deepcopy(channel))
        limit = max(1, min(int(params.get("limit") or 100), 1000))
        start = int(params.get("cursor") or 0)
        page = found[start:start + limit]
        cursor = str(start + limit) if start + limit < len(found) else ""
        return {"ok": True, "channels": page, "response_metadata": {"next_cursor": cursor}}

    def _conversations_info(self, params: dict[str, Any]) -> dict[str, Any]:
        channel_id = self._require(params, "channel", "channel_not_found")
        if channel_id[:1] not in ("C", "G", "D"):
            raise _SlackError("channel_not_found")
        if channel_id not in self._channels:
            if channel_id.startswith("D"):
                dm = {"id": channel_id, "is_im": True, "is_private": True, "user": "U" + channel_id[1:]}
                return {"ok": True, "channel": dm}
            self.add_channel(channel_id, is_private=channel_id.startswith("G"))
        return {"ok": True, "channel": copy.deepcopy(self._channels[channel_id])}


    def _conversations_replies(self, params: dict[str, Any]) -> dict[str, Any]:
        """The thread's parent and replies, oldest first; ``metadata`` only with include_all_metadata."""
        channel = self._resolve_channel(self._require(params, "channel", "channel_not_found"))
        ts = self._require(params, "ts", "thread_not_found")
        stored = self._messages.get(channel, [])
        thread = [m for m in stored if m["ts"] == ts or m.get("thread_ts") == ts]
        if not any(m["ts"] == ts for m in thread):
            raise _SlackError("thread_not_found")
        return self._history_page(thread, params, newest_first=False)

    def _conversations_history(self, params: dict[str, Any]) -> dict[str, Any]:
        """Top-level messages (and broadcast replies), newest first, as Slack returns them."""
        channel = self._resolve_channel(self._require(params, "channel", "channel_not_found"))
        stored = [m for m in self._messages.get(channel, [])
                  if not m.get("thread_ts") or m["thread_ts"] == m["ts"] or m.get("subtype") == "thread_broadcast"]
        return self._history_page(stored, params, newest_first=True)

    def _history_page(self, messages: list[dict[str, Any]], params: dict[str, Any], *,
                      newest_first: bool) -> dict[str, Any]:
        oldest = float(params.get("oldest") or 0)
        latest = float(params.get("latest") or "inf")
        selected = [m for m in messages if oldest <= float(m["ts"]) <= latest]
        selected.sort(key=lambda m: float(m["ts"]), reverse=newest_first)
        try:
            limit = max(1, min(int(params.get("limit") or 100), 1000))
            start = int(params.get("cursor") or 0)
        except ValueError:
            raise _SlackError("invalid_cursor") from None
        page = selected[start:start + limit]
        with_metadata = _truthy(params.get("include_all_metadata"))
        shown = []
        for message in page:
            item = {k: v for k, v in message.items() if k != "channel"}
            if not with_metadata:
                item.pop("metadata", None)
            shown.append(copy.deepcopy(item))
        more = start + limit < len(selected)
        return {"ok": True, "messages": shown, "has_more": more,
                "response_metadata": {"next_cursor": str(start + limit) if more else ""}}


@dataclass
class _UploadedFile:
    """A file between files.getUploadURLExternal and files.completeUploadExternal, and after."""

    id: str
    name: str
    length: int
    alt_txt: str | None
    created: int
    user: str
    data: bytes | None = None
    title: str | None = None
    completed: bool = False
    shares: dict[str, list[str]] = field(default_factory=dict)

    def describe(self) -> dict[str, Any]:
        filetype = self.name.rsplit(".", 1)[-1].lower() if "." in self.name else "binary"
        described: dict[str, Any] = {
            "id": self.id, "created": self.created, "timestamp": self.created, "name": self.name,
            "title": self.title or self.name, "mimetype": _MIME_TYPES.get(filetype, "application/octet-stream"),
            "filetype": filetype, "user": self.user, "size": len(self.data or b""), "mode": "hosted",
            "is_external": False, "is_public": False, "channels": sorted(self.shares),
            "url_private": f"https://files.slack.com/files-pri/{self.id}/{self.name}",
        }
        if self.alt_txt:
            described["alt_txt"] = self.alt_txt
        return described


def _multipart_file(headers: Message, body: bytes) -> bytes:
    """The first part's content of a multipart/form-data body (how curl -F sends a file)."""
    prefix = f"Content-Type: {headers.get('Content-Type')}\r\n\r\n".encode()
    message = BytesParser(policy=HTTP).parsebytes(prefix + body)
    for part in message.iter_parts() if message.is_multipart() else ():
        payload = part.get_payload(decode=True)
        if isinstance(payload, bytes):
            return payload
    return b""


def _set_content(message: dict[str, Any], params: dict[str, Any], blocks: list[dict[str, Any]] | None) -> None:
    """Overwrite a stored message's content with what an update sent."""
    if "text" in params:
        message["text"] = params.get("text") or ""
    if blocks is not None:
        if blocks:
            message["blocks"] = blocks
        else:
            message.pop("blocks", None)
    if "attachments" in params:
        message["attachments"] = params["attachments"]


def _check_view(view: dict[str, Any], blocks: list[dict[str, Any]] | None) -> None:
    """Refuse a view Slack would refuse: views.open/update take modals with a title."""
    if view.get("type") != "modal":
        raise _SlackError(
            "invalid_arguments",
            response_metadata={"messages": ["[ERROR] must be 'modal' [json-pointer:/view/type]"]},
        )
    if not isinstance(view.get("title"), dict):
        raise _missing_field("title")
    if blocks is None:
        raise _missing_field("blocks")


def _describe_tz(tz: str) -> tuple[str, int]:
    """The label and UTC offset in seconds Slack reports for a time zone right now."""
    try:
        now = datetime.now(ZoneInfo(tz))
    except (ZoneInfoNotFoundError, ValueError):
        return tz, 0
    offset = now.utcoffset()
    return now.tzname() or tz, int(offset.total_seconds()) if offset else 0


def _bearer_token(header: str | None) -> str | None:
    if not header:
        return None
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer":
        return None
    return value.strip() or None


def _parse_params(query: str, headers: Message, body: bytes) -> tuple[dict[str, Any], str | None]:
    """Decode query string plus a form or JSON body into one dict, as Slack reads them.

    Returns the params and, if the body could not be read, the Slack error to
    answer (after authentication, like Slack).
    """
    params: dict[str, Any] = dict(parse_qsl(query, keep_blank_values=True))
    content_type = headers.get_content_type() if body else ""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return params, "invalid_charset"
    if content_type == "application/json":
        try:
            decoded = json.loads(text)
        except json.JSONDecodeError:
            return params, "invalid_json"
        if not isinstance(decoded, dict):
            return params, "json_not_object"
        params.update(decoded)
    elif content_type == "application/x-www-form-urlencoded":
        params.update(parse_qsl(text, keep_blank_values=True))
    elif body:
        return params, "invalid_form_data"
    for name, error in _JSON_FIELDS.items():
        value = params.get(name)
        if isinstance(value, str):
            try:
                params[name] = json.loads(value) if value.strip() else None
            except json.JSONDecodeError:
                return params, error
    return params, None


class _Server(ThreadingHTTPServer):
    """The HTTP server, carrying the fake so handlers can reach it."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], fake: FakeSlack) -> None:
        super().__init__(address, _Handler)
        self.fake = fake

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client hanging up mid-answer is normal in tests; keep stderr clean.
        logger.debug("FakeSlack: error answering %s", client_address, exc_info=True)


class _Handler(BaseHTTPRequestHandler):
    """Reads one request, lets the fake answer it, writes the answer."""

    server: _Server
    server_version = "FakeSlack/1"
    protocol_version = "HTTP/1.1"  # keep-alive, as Slack's API servers do
    # Headers and body go out as two writes: with Nagle on, a kept-alive client waits ~40 ms for the
    # second (delayed ACK), which no real Slack server imposes.
    disable_nagle_algorithm = True

    def setup(self) -> None:
        super().setup()
        if self.server.fake.tls is not None:
            self.protocol_version = "HTTP/1.1"  # Slack keeps HTTPS connections alive

    def do_POST(self) -> None:
        self._serve("POST")

    def do_GET(self) -> None:
        self._serve("GET")

    def _serve(self, http_method: str) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length > 0 else b""
        try:
            reply = self.server.fake._handle(http_method, self.path, self.headers, body)
        except Exception:
            logger.exception("FakeSlack failed on %s %s", http_method, self.path)
            reply = _Reply(500, _json_body({"ok": False, "error": "fatal_error"}))
        if reply.delay > 0:
            time.sleep(reply.delay)
        self.send_response(reply.status)
        self.send_header("Content-Type", reply.content_type)
        self.send_header("Content-Length", str(len(reply.body)))
        for name, value in reply.headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(reply.body)

    def log_message(self, format: str, *args: Any) -> None:
        """Stay quiet: the console prints what matters, request lines are noise."""
