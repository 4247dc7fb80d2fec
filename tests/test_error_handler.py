"""The error handler answers only requests that passed verification. In HTTP mode the gate stops
unverified requests before Bolt; here Bolt itself is handed one (as it was before the gate), to show
the handler stays silent anyway, while Socket Mode requests (no signatures) are still answered."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from slack_bolt.request import BoltRequest

from bot.app import Runtime, build_runtime
from bot.settings import load_settings
from bot.testing.slack_fake import RESPONSE_URL_METHOD, FakeSlack
from bot.testing.slack_requests import slash_body


@pytest.fixture
def fake() -> Iterator[FakeSlack]:
    with FakeSlack() as running:
        yield running


def _runtime(fake: FakeSlack, tmp_path: Path, socket_mode: bool) -> Runtime:
    settings = load_settings(slack_bot_token="xoxb-handler-test", slack_signing_secret="handler-secret",
                             slack_api_url=fake.api_url, data_dir=tmp_path / "data")
    return build_runtime(settings, socket_mode=socket_mode)


def _body(fake: FakeSlack, channel: str) -> str:
    return slash_body("temp=39 patient=john.smith", channel=channel, user="U0HANDLER1",
                      response_url=fake.new_response_url(channel=channel, user="U0HANDLER1"),
                      trigger_id=fake.new_trigger_id())


def _answered(fake: FakeSlack, channel: str, wait: float) -> bool:
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        if any(c.method in (RESPONSE_URL_METHOD, "chat.postEphemeral") and channel in
               (c.response.get("channel"), c.params.get("channel")) for c in fake.calls):
            return True
        time.sleep(0.02)
    return False


def test_a_malformed_timestamp_reaching_bolt_gets_no_reply_post_or_audit(fake: FakeSlack, tmp_path: Path) -> None:
    runtime = _runtime(fake, tmp_path, socket_mode=False)
    try:
        channel = "C0HANDLER1"
        request = BoltRequest(body=_body(fake, channel),
                              headers={"content-type": "application/x-www-form-urlencoded",
                                       "x-slack-request-timestamp": "abc", "x-slack-signature": "v0=00"})
        response = runtime.app.dispatch(request)
        assert response.status == 401  # the handler's own answer for an unverified request
        assert not _answered(fake, channel, wait=1.0)
        assert list(runtime.deps.store.iter_audit()) == []
    finally:
        runtime.close()


def test_socket_mode_requests_are_still_answered(fake: FakeSlack, tmp_path: Path) -> None:
    runtime = _runtime(fake, tmp_path, socket_mode=True)
    try:
        channel = "C0HANDLER2"
        request = BoltRequest(body=_body(fake, channel), mode="socket_mode")
        assert runtime.app.dispatch(request).status == 200
        assert _answered(fake, channel, wait=10.0)
        audit = list(runtime.deps.store.iter_audit())
        failures = [a for a in audit if a.action == "failure"]
        assert failures and failures[0].detail["patient"] == "[refused label]"
        assert "john" not in str([a.detail for a in audit]).lower()
    finally:
        runtime.close()
