"""Verify first, then parse: the checks every HTTP request from Slack passes before Bolt (or any
code of ours) reads, decodes or acts on its body.

Order matters. The headers are checked first (a timestamp that is not digits, outside the replay
window, or a signature that is not `v0=<64 hex>` is refused with 401 and the body is never read).
Then the body is read in bounded chunks, never past `MAX_BODY_BYTES` (413). Then the HMAC is
compared in constant time (401). Only then is the request checked against the shared replay
memory: a request seen before is acknowledged with 200 and does nothing. An Events API request is
remembered by its `event_id`, which Slack's retries (`X-Slack-Retry-Num`, new timestamp and signature)
keep, so a retry of an event already taken does nothing while a retry of one that never got through
(lost, or refused 503 while the database was away) does the work once. Any other retry is dropped.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, BinaryIO

# Slack's slash-command and interactivity payloads are a few KB (a modal submission with every
# field filled is about 6 KB); 64 KiB leaves ten times that, and refuses anything bigger unread.
MAX_BODY_BYTES = 64 * 1024
# Slack's own rule: a request whose timestamp is more than five minutes from now is refused.
REPLAY_WINDOW_SECONDS = 5 * 60
CHUNK_BYTES = 8 * 1024

_TIMESTAMP = re.compile(r"[0-9]{1,12}")
_SIGNATURE = re.compile(r"v0=[0-9a-f]{64}")
_EVENT_ID = re.compile(r"Ev[0-9A-Za-z]{1,60}")


@dataclass(frozen=True)
class Verdict:
    """What the gate decided: `status` 0 means "pass `body` on to Bolt"."""

    status: int
    reason: str
    body: bytes = b""
    signature: str = ""

    @property
    def passed(self) -> bool:
        return self.status == 0


def refuse(status: int, reason: str) -> Verdict:
    return Verdict(status, reason)


def check_headers(headers: Mapping[str, str], now: float | None = None) -> Verdict | None:
    """401 for a missing or malformed timestamp or signature, or a timestamp outside the window."""
    timestamp = headers.get("x-slack-request-timestamp", "")
    signature = headers.get("x-slack-signature", "")
    if not _TIMESTAMP.fullmatch(timestamp):
        return refuse(401, "missing or malformed X-Slack-Request-Timestamp")
    if not _SIGNATURE.fullmatch(signature):
        return refuse(401, "missing or malformed X-Slack-Signature")
    if abs((time.time() if now is None else now) - int(timestamp)) > REPLAY_WINDOW_SECONDS:
        return refuse(401, "X-Slack-Request-Timestamp outside the 5-minute window")
    return None


def read_bounded(stream: BinaryIO, content_length: str | None, limit: int = MAX_BODY_BYTES) -> Verdict:
    """The body, read in chunks and never past `limit` bytes (a declared length over it is refused
    before reading anything)."""
    declared: int | None = None
    if content_length:
        if not content_length.isdigit():
            return refuse(400, "malformed Content-Length")
        declared = int(content_length)
        if declared > limit:
            return refuse(413, f"body over {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    while declared is None or size < declared:
        want = CHUNK_BYTES if declared is None else min(CHUNK_BYTES, declared - size)
        chunk = stream.read(want)
        if not chunk:
            break
        size += len(chunk)
        if size > limit:
            return refuse(413, f"body over {limit} bytes")
        chunks.append(chunk)
    return Verdict(0, "read", body=b"".join(chunks))


def check_signature(headers: Mapping[str, str], body: bytes, secret: str) -> Verdict:
    """Slack's v0 signature: HMAC-SHA256 over `v0:<timestamp>:<body>`, compared in constant time."""
    timestamp = headers["x-slack-request-timestamp"]
    expected = "v0=" + hmac.new(secret.encode(), b"v0:" + timestamp.encode() + b":" + body,
                                hashlib.sha256).hexdigest()
    signature = headers["x-slack-signature"]
    if not hmac.compare_digest(expected, signature):
        return refuse(401, "signature does not match")
    return Verdict(0, "verified", body=body, signature=signature)


def event_id(body: bytes) -> str | None:
    """The `event_id` of a verified Events API body (JSON), else None (commands and clicks are forms)."""
    if not body.startswith(b"{"):
        return None
    try:
        data = json.loads(body)
    except ValueError:
        return None
    value = data.get("event_id") if isinstance(data, dict) else None
    return value if isinstance(value, str) and _EVENT_ID.fullmatch(value) else None


def wsgi_headers(environ: Mapping[str, Any]) -> dict[str, str]:
    """Request headers from a WSGI environ, lower-cased with dashes."""
    return {key[5:].replace("_", "-").lower(): str(value) for key, value in environ.items()
            if key.startswith("HTTP_")}


def verify_request(environ: Mapping[str, Any], secret: str,
                   first_time: Callable[[str], bool] | None = None) -> Verdict:
    """The whole gate for one request to the events path."""
    headers = wsgi_headers(environ)
    refused = check_headers(headers)
    if refused:
        return refused
    read = read_bounded(environ["wsgi.input"], environ.get("CONTENT_LENGTH"))
    if not read.passed:
        return read
    verified = check_signature(headers, read.body, secret)
    if not verified.passed:
        return verified
    event = event_id(verified.body)
    if headers.get("x-slack-retry-num") and (event is None or first_time is None):
        return refuse(200, "Slack retry acknowledged without repeating the work")
    if first_time is not None and not first_time(f"event:{event}" if event else verified.signature):
        return refuse(200, "replayed or retried request acknowledged without repeating the work")
    return verified
