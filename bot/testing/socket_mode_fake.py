"""Slack's Socket Mode side, for the fake: a local WebSocket server that speaks Slack's protocol.

What Slack documents, and this server does:

* ``apps.connections.open`` (called with the app-level ``xapp-`` token) hands out a URL that can be
  used once; the client connects to it and receives ``{"type": "hello", "num_connections": N,
  "connection_info": {"app_id": ...}, "debug_info": {...}}``.
* Each request arrives as an envelope: ``{"envelope_id", "type": "slash_commands" | "interactive"
  | "events_api", "payload", "accepts_response_payload"}`` (events also carry ``retry_attempt`` and
  ``retry_reason``). The app acknowledges with ``{"envelope_id", "payload"?}``; for slash commands
  and interactions the ack's payload is the immediate response (a message, or a view's
  ``response_action``).
* Slack asks a client to move with ``{"type": "disconnect", "reason": "refresh_requested"}`` and
  closes the old socket once the client has reconnected; a socket can also simply drop.
* An envelope that was not acknowledged is delivered again on the next connection (same
  ``envelope_id``, ``retry_attempt`` one higher, ``retry_reason: "timeout"``); the app must not do
  the work twice.

Built on the ``websockets`` package's synchronous server: one thread per connection.
"""

from __future__ import annotations

import copy
import json
import logging
import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

from websockets.exceptions import ConnectionClosed
from websockets.sync.server import Server, ServerConnection, serve

__all__ = ["Ack", "Envelope", "SocketModeFake"]

logger = logging.getLogger(__name__)
HOST_LABEL = "applink-crsbot-fake"
# How long an unused apps.connections.open URL stays valid.
URL_TTL_SECONDS = 30.0
# After a "disconnect" message, the old socket closes once the client reconnects, or after this.
DISCONNECT_GRACE_SECONDS = 10.0


@dataclass
class Envelope:
    """One request sent to the app; ``deliveries`` counts how often it was sent."""

    envelope_id: str
    type: str
    payload: dict[str, Any]
    accepts_response_payload: bool
    deliveries: int = 0
    acked: bool = False
    lose_next_ack: bool = False

    def message(self) -> dict[str, Any]:
        message: dict[str, Any] = {
            "envelope_id": self.envelope_id,
            "payload": copy.deepcopy(self.payload),
            "type": self.type,
            "accepts_response_payload": self.accepts_response_payload,
        }
        if self.type == "events_api" or self.deliveries > 1:
            message["retry_attempt"] = self.deliveries - 1
            message["retry_reason"] = "timeout" if self.deliveries > 1 else ""
        return message


@dataclass(frozen=True)
class Ack:
    """An acknowledgement the app sent; ``payload`` is its immediate response, if any."""

    envelope_id: str
    payload: dict[str, Any] | None
    connection: int
    at: float


@dataclass
class _Connection:
    number: int
    socket: ServerConnection
    opened_at: float
    closed: bool = False
    retiring: bool = False
    sent: list[str] = field(default_factory=list)


class SocketModeFake:
    """The WebSocket half of Slack for one app. Thread-safe; see the module docstring."""

    def __init__(self, app_id: str, host: str = "127.0.0.1") -> None:
        self.app_id = app_id
        self.host = host
        self._lock = threading.RLock()
        self._changed = threading.Condition(self._lock)
        self._server: Server | None = None
        self._thread: threading.Thread | None = None
        self._tickets: dict[str, float] = {}
        self._connections: list[_Connection] = []
        self._envelopes: dict[str, Envelope] = {}
        self._order: list[str] = []
        self._acks: list[Ack] = []
        self.port = 0

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> SocketModeFake:
        if self._server is None:
            self._server = serve(self._serve, self.host, 0, ping_interval=None, max_size=2**20)
            self.port = int(self._server.socket.getsockname()[1])
            self._thread = threading.Thread(target=self._server.serve_forever, name=f"SocketModeFake:{self.port}",
                                            daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            for connection in self.connections():
                connection.socket.close()
            server.shutdown()
        if self._thread is not None:
            self._thread.join(timeout=5)

    # ------------------------------------------------------------------ what apps.connections.open calls

    def open_url(self) -> str:
        """A fresh single-use WebSocket URL, as ``apps.connections.open`` returns."""
        ticket = secrets.token_hex(16)
        with self._lock:
            self._tickets[ticket] = time.monotonic() + URL_TTL_SECONDS
        return f"ws://{self.host}:{self.port}/link/?ticket={ticket}&app_id={self.app_id}"

    # ------------------------------------------------------------------ driving it from a test

    def connections(self, *, open_only: bool = False) -> list[_Connection]:
        with self._lock:
            return [c for c in self._connections if not (open_only and (c.closed or c.retiring))]

    def wait_connected(self, count: int = 1, timeout: float = 15.0) -> _Connection:
        """Wait until ``count`` connections were ever made and one is open (hello sent); return it."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                live = [c for c in self._connections if not c.closed and not c.retiring]
                if len(self._connections) >= count and live:
                    return live[-1]
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"no Socket Mode connection #{count} within {timeout} s "
                                       f"({len(self._connections)} so far)")
                self._changed.wait(remaining)

    def send(self, type_: str, payload: dict[str, Any], *, accepts_response_payload: bool | None = None,
             lose_ack: bool = False, connection: int | None = None) -> str:
        """Send an envelope on the newest open connection, or on connection number `connection` (or
        queue it until one opens).

        ``lose_ack=True`` throws away the app's first ack and drops the connection when it arrives,
        as when the network fails between the app and Slack: Slack then delivers it again.
        """
        if accepts_response_payload is None:
            accepts_response_payload = type_ in ("slash_commands", "interactive")
        envelope = Envelope(envelope_id=secrets.token_hex(16), type=type_, payload=dict(payload),
                            accepts_response_payload=accepts_response_payload, lose_next_ack=lose_ack)
        with self._lock:
            self._envelopes[envelope.envelope_id] = envelope
            self._order.append(envelope.envelope_id)
            live = [c for c in self._connections if not c.closed and not c.retiring
                    and (connection is None or c.number == connection)]
            target = live[-1] if live else None
        if target is not None:
            self._deliver(target, envelope)
        return envelope.envelope_id

    def wait_ack(self, envelope_id: str, timeout: float = 10.0, count: int = 1) -> Ack:
        """The `count`-th acknowledgement of the envelope (a redelivered one is acknowledged again)."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                acks = [a for a in self._acks if a.envelope_id == envelope_id]
                if len(acks) >= count and self._envelopes[envelope_id].acked:
                    return acks[count - 1]
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"envelope {envelope_id} was not acknowledged {count} time(s) within "
                                       f"{timeout} s ({len(acks)} so far)")
                self._changed.wait(remaining)

    def acks(self, envelope_id: str | None = None) -> list[Ack]:
        with self._lock:
            return [a for a in self._acks if envelope_id is None or a.envelope_id == envelope_id]

    def envelope(self, envelope_id: str) -> Envelope:
        with self._lock:
            return copy.deepcopy(self._envelopes[envelope_id])

    def redeliver(self, envelope_id: str, connection: int | None = None) -> None:
        """Deliver an envelope again (same id, `retry_attempt` one higher), as Slack does when the app's
        ack never reached it: on connection number `connection` (another replica's, say), by default
        the newest open one. Slack cannot tell a lost ack from none, so the envelope counts as not
        acknowledged until the app acknowledges it again."""
        with self._lock:
            envelope = self._envelopes[envelope_id]
            envelope.acked = False
            live = [c for c in self._connections if not c.closed and not c.retiring
                    and (connection is None or c.number == connection)]
        if not live:
            raise ValueError(f"no open Socket Mode connection{f' #{connection}' if connection else ''}")
        self._deliver(live[-1], envelope)

    def request_reconnect(self, reason: str = "refresh_requested") -> None:
        """Slack's polite move: tell open connections to reconnect; each closes when a newer one opens."""
        for connection in self.connections(open_only=True):
            with self._lock:
                connection.retiring = True
            self._send_raw(connection, {"type": "disconnect", "reason": reason, "debug_info": {"host": HOST_LABEL}})
            threading.Timer(DISCONNECT_GRACE_SECONDS, self._close, args=(connection,)).start()

    def drop(self) -> None:
        """The network's rude move: close every open socket with no goodbye."""
        for connection in self.connections(open_only=True):
            self._close(connection)

    # ------------------------------------------------------------------ server side

    def _serve(self, socket: ServerConnection) -> None:
        query = parse_qs(urlsplit(socket.request.path if socket.request else "").query)
        ticket = (query.get("ticket") or [""])[0]
        with self._lock:
            expires = self._tickets.pop(ticket, None)  # a URL works once
            if expires is None or expires < time.monotonic():
                socket.close(code=1008, reason="invalid or used ticket")
                return
            connection = _Connection(number=len(self._connections) + 1, socket=socket, opened_at=time.time())
            self._connections.append(connection)
            older = [c for c in self._connections if c is not connection and c.retiring and not c.closed]
            live = sum(1 for c in self._connections if not c.closed)
        self._send_raw(connection, {"type": "hello", "num_connections": live,
                                    "debug_info": {"host": HOST_LABEL, "build_number": 1,
                                                   "approximate_connection_time": 18060},
                                    "connection_info": {"app_id": self.app_id}})
        for old in older:
            self._close(old)
        with self._changed:
            self._changed.notify_all()
            unacked = [self._envelopes[e] for e in self._order if not self._envelopes[e].acked]
        for envelope in unacked:  # what the last connection left unacknowledged
            self._deliver(connection, envelope)
        try:
            for raw in socket:
                self._receive(connection, raw)
        except ConnectionClosed:
            pass
        finally:
            with self._changed:
                connection.closed = True
                self._changed.notify_all()

    def _receive(self, connection: _Connection, raw: str | bytes) -> None:
        try:
            message = json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError):
            logger.warning("Socket Mode fake: ignoring a message that is not JSON")
            return
        envelope_id = message.get("envelope_id") if isinstance(message, dict) else None
        if not envelope_id:
            return
        drop = False
        with self._changed:
            envelope = self._envelopes.get(envelope_id)
            if envelope is None:
                logger.warning("Socket Mode fake: ack for unknown envelope %s", envelope_id)
                return
            if envelope.lose_next_ack:
                envelope.lose_next_ack = False
                drop = True
            else:
                envelope.acked = True
                self._acks.append(Ack(envelope_id, message.get("payload"), connection.number, time.time()))
            self._changed.notify_all()
        if drop:
            self._close(connection)

    def _deliver(self, connection: _Connection, envelope: Envelope) -> None:
        with self._lock:
            envelope.deliveries += 1
            message = envelope.message()
        self._send_raw(connection, message)

    def _send_raw(self, connection: _Connection, message: dict[str, Any]) -> None:
        text = json.dumps(message)
        try:
            connection.socket.send(text)
            with self._lock:
                connection.sent.append(text)
        except ConnectionClosed:
            pass

    def _close(self, connection: _Connection) -> None:
        with self._changed:
            if connection.closed:
                return
            connection.closed = True
            self._changed.notify_all()
        try:
            connection.socket.close()
        except Exception:  # noqa: BLE001 - closing a dead socket is not an error here
            logger.debug("Socket Mode fake: closing connection %s", connection.number, exc_info=True)
