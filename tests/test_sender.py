"""The one Slack client keeps its connections alive over HTTPS (the fake serves TLS as Slack does) and
still retries rate limits as slack_sdk does."""

from __future__ import annotations

import logging
import shutil
import socket
import ssl
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.slack.sender import (
    KeptAliveClient,
    PostOutcomeUnknown,
    PostRateLimited,
    PostRefused,
    Sender,
    make_client,
)
from bot.testing.slack_fake import FakeSlack

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="needs openssl to make a certificate")


@pytest.fixture()
def tls_fake(tmp_path: Path) -> Iterator[tuple[FakeSlack, Path]]:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                    "-keyout", str(key), "-out", str(cert), "-days", "1", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1"], check=True, capture_output=True)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    with FakeSlack(tls=context) as fake:
        yield fake, cert


def test_calls_from_one_thread_share_one_kept_alive_tls_connection(tls_fake: tuple[FakeSlack, Path]) -> None:
    fake, cert = tls_fake
    assert fake.api_url.startswith("https://")
    client = make_client("xoxb-local", fake.api_url)
    assert isinstance(client, KeptAliveClient)
    client.ssl.load_verify_locations(cert)  # type: ignore[union-attr]
    sender = Sender(client)
    sockets = []
    for n in range(3):
        assert sender.post("C0TLS1", {"text": f"post {n}"})
        (connection,) = client._local.pool.values()  # type: ignore[attr-defined]
        sockets.append(connection.sock)
    assert sockets[0] is not None and sockets[0] is sockets[1] is sockets[2], "one handshake, then reuse"
    assert [m["text"] for m in fake.messages("C0TLS1")] == ["post 0", "post 1", "post 2"]


def test_a_rate_limit_is_still_retried_on_the_kept_alive_client(tls_fake: tuple[FakeSlack, Path]) -> None:
    fake, cert = tls_fake
    client = make_client("xoxb-local", fake.api_url)
    client.ssl.load_verify_locations(cert)  # type: ignore[union-attr]
    fake.fail_next("chat.postMessage", status=429, times=1)
    assert Sender(client).post("C0TLS2", {"text": "after a 429"})
    assert [c.status for c in fake.calls if c.method == "chat.postMessage"] == [429, 200]


def test_a_missing_thread_holds_no_earlier_post_rather_than_an_unknown_outcome() -> None:
    """Reconciling a reminder reads its thread; Slack answers thread_not_found when the thread's first
    message was deleted. That thread holds nothing of ours, so the reminder is not posted there: it
    used to count as 'cannot tell', and the reminder was retried until it failed."""
    with FakeSlack() as fake:
        sender = Sender(make_client("xoxb-local", fake.api_url))
        ts = sender.post("C0GONE", {"text": "first assessment"})
        sender.post_once("C0GONE", {"text": "reminder"}, thread_ts=ts,
                         metadata={"event_type": "crsbot_reminder", "event_payload": {"ids": [7]}})
        assert [m for _, m in sender.thread_metadata("C0GONE", ts)] == [
            {"event_type": "crsbot_reminder", "event_payload": {"ids": [7]}}]
        assert sender.thread_metadata("C0GONE", "1600000000.999999") == []


def test_post_once_classifies_each_answer_on_the_kept_alive_connection(tls_fake: tuple[FakeSlack, Path]) -> None:
    """The reminder engine's one-attempt post decides exactly-once: a 429 is 'not posted, wait', a 5xx or a
    timeout 'maybe posted', ok: false 'not posted'. Every answer is read off the one kept-alive connection,
    and a connection the server had closed is replaced without posting twice."""
    fake, cert = tls_fake
    client = make_client("xoxb-local", fake.api_url, timeout=0.5)
    client.ssl.load_verify_locations(cert)  # type: ignore[union-attr]
    sender = Sender(client)
    meta = {"event_type": "crsbot_reminder", "event_payload": {"ids": [7]}}
    ts = sender.post_once("C0TLS3", {"text": "first"}, metadata=meta)
    assert ts and fake.messages("C0TLS3")[0]["metadata"] == meta
    fake.fail_next("chat.postMessage", status=429, retry_after=7)
    with pytest.raises(PostRateLimited) as limited:
        sender.post_once("C0TLS3", {"text": "limited"})
    assert limited.value.retry_after == 7
    fake.fail_next("chat.postMessage", status=503)
    with pytest.raises(PostOutcomeUnknown, match="HTTP 503"):
        sender.post_once("C0TLS3", {"text": "server error"})
    fake.fail_next("chat.postMessage", status=200, error="channel_not_found")
    with pytest.raises(PostRefused, match="channel_not_found"):
        sender.post_once("C0TLS3", {"text": "refused"})
    (connection,) = client._local.pool.values()  # type: ignore[attr-defined]
    assert connection.sock is not None, "every answer so far came back on the kept-alive connection"
    connection.sock.shutdown(socket.SHUT_RDWR)  # as if the server had closed the idle connection
    assert sender.post_once("C0TLS3", {"text": "after a closed connection"})
    (replaced,) = client._local.pool.values()  # type: ignore[attr-defined]
    assert replaced is not connection
    fake.respond_slowly("chat.postMessage", delay=1.5)
    with pytest.raises(PostOutcomeUnknown, match="timed out|TimeoutError"):
        sender.post_once("C0TLS3", {"text": "slow but posted"})
    assert [m["text"] for m in fake.messages("C0TLS3")] == ["first", "after a closed connection", "slow but posted"]


class _CountedText(str):
    """Message text that counts how often something formats it with repr()."""

    reprs = 0

    def __repr__(self) -> str:
        type(self).reprs += 1
        return super().__repr__()


def test_a_post_never_formats_its_body_for_a_debug_line(caplog: pytest.LogCaptureFixture) -> None:
    # slack_sdk formats every request body into a DEBUG line whenever its logger's own level is unset, even
    # when nothing would print it: for a grade reply that was 8% of the command's instructions. And a body holds
    # patient labels, which crsbot never logs, even with CRSBOT_LOG_LEVEL=DEBUG.
    caplog.set_level(logging.DEBUG)
    _CountedText.reprs = 0
    with FakeSlack() as fake:
        sender = Sender(make_client("xoxb-local", fake.api_url))
        assert sender.post("C0LOG1", {"text": _CountedText("bed12 · CRS grade 3")})
        assert [m["text"] for m in fake.messages("C0LOG1")] == ["bed12 · CRS grade 3"]
    assert _CountedText.reprs == 0
    assert not [r for r in caplog.records if r.name.startswith("slack_sdk") and "bed12" in r.getMessage()]
