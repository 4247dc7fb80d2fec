"""Socket Mode end to end: a real `crsbot serve --socket-mode` process connects out to the Slack fake
(apps.connections.open with the xapp- token, then a WebSocket), and the tests send it envelopes as
Slack does: a slash command, a button click, a form submission, connections that drop, and an
envelope delivered again after a restart or to another replica.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

from bot.slack.socket_mode import envelope_key
from bot.testing.slack_fake import FakeSlack, RecordedCall
from bot.testing.slack_requests import block_actions_payload, view_submission_payload
from messages.ids import ActionId, CallbackId
from tests.db_fixtures import pg_admin_engine, pg_database_factory  # noqa: F401  (fixtures)
from tests.slack_support import RESPONSE_URL_METHOD, DEFAULT_USER, Served, http_request

APP_TOKEN = "xapp-1-A0CRSBOT01-1-e2e"
GRADE_3 = "temp=39 sbp=85 pressor=1"
_ids = itertools.count(1)


# No signing secret: Socket Mode needs none (nothing is received over HTTP).
SOCKET_ENV: dict[str, str | None] = {"SLACK_APP_TOKEN": APP_TOKEN, "SLACK_SIGNING_SECRET": None}


@pytest.fixture(scope="module")
def sm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    with Served.running(tmp_path_factory.mktemp("socket"), args=["--socket-mode"], env=SOCKET_ENV) as served:
        served.fake.socket_mode.wait_connected()
        yield served


def new_channel() -> str:
    return f"C0SOCK{next(_ids):04d}"


def ok_post_to(channel: str) -> Any:
    def predicate(call: RecordedCall) -> bool:
        return call.ok and call.method == "chat.postMessage" and call.params.get("channel") == channel
    predicate.__name__ = f"successful chat.postMessage to {channel}"
    return predicate


def slash(sm: Served, text: str, channel: str, **kwargs: Any) -> str:
    """`/crs TEXT` as a slash_commands envelope: the same fields Slack POSTs, as a JSON object."""
    payload = dict(parse_qsl(sm.slash_body(text, channel=channel), keep_blank_values=True))
    return sm.fake.socket_mode.send("slash_commands", payload, **kwargs)


def graded(sm: Served, channel: str, text: str = GRADE_3) -> dict[str, Any]:
    mark = sm.mark()
    sm.fake.socket_mode.wait_ack(slash(sm, text, channel))
    call = sm.wait_for(ok_post_to(channel), after=mark)
    return next(m for m in sm.fake.messages(channel) if m["ts"] == call.response["ts"])


def posts_to(sm: Served, channel: str) -> list[RecordedCall]:
    return [c for c in sm.fake.calls_to("chat.postMessage") if c.ok and c.params.get("channel") == channel]


def barrier(sm: Served, connection: int | None = None) -> None:
    """A later command answered (on `connection`, default the newest): anything queued before it has
    had its turn."""
    channel = new_channel()
    mark = sm.mark()
    sm.fake.socket_mode.wait_ack(slash(sm, "help", channel, connection=connection))
    sm.wait_for(lambda c: c.method == RESPONSE_URL_METHOD and c.response.get("channel") == channel, after=mark)


# --------------------------------------------------------------------------- connecting


def test_connects_with_the_app_token_and_serves_health_without_slack_events(sm: Served) -> None:
    opened = sm.fake.calls_to("apps.connections.open")
    assert opened and opened[0].ok and opened[0].response["url"].startswith("ws://127.0.0.1:")
    hello = json.loads(sm.fake.socket_mode.connections()[0].sent[0])
    assert hello["type"] == "hello" and hello["connection_info"]["app_id"] == sm.fake.app_id
    assert sm.health().status == 200
    # Nothing is signed in Socket Mode, so the HTTP port must not take Slack requests at all.
    assert http_request(sm.process.events_url, data=b"command=%2Fcrs", method="POST").status == 404


def test_the_fake_refuses_a_bot_token_for_sockets(sm: Served) -> None:
    from slack_sdk import WebClient
    from slack_sdk.errors import SlackApiError

    with pytest.raises(SlackApiError, match="not_allowed_token_type"):
        WebClient(token=sm.token, base_url=sm.fake.api_url).apps_connections_open(app_token=sm.token)


# --------------------------------------------------------------------------- the three entry points


def test_slash_command_is_acked_and_posts_the_grade(sm: Served) -> None:
    channel = new_channel()
    mark = sm.mark()
    envelope_id = slash(sm, f"{GRADE_3} patient=bed31", channel)
    ack = sm.fake.socket_mode.wait_ack(envelope_id)
    assert not ack.payload  # a bare ack; the answer follows as a message
    call = sm.wait_for(ok_post_to(channel), after=mark)
    header = next(b["text"]["text"] for b in call.params["blocks"] if b["type"] == "header")
    assert re.search(r"\bgrade 3\b", header) and "bed31" in header


def test_button_click_updates_the_message(sm: Served) -> None:
    channel = new_channel()
    message = graded(sm, channel, f"{GRADE_3} patient=bed32")
    mark = sm.mark()
    payload = block_actions_payload(
        message, ActionId.RESOLVED.value, channel=channel, user="U0DOCTOR1", trigger_id=sm.fake.new_trigger_id(),
        response_url=sm.fake.new_response_url(channel=channel, user="U0DOCTOR1", message_ts=message["ts"]))
    sm.fake.socket_mode.wait_ack(sm.fake.socket_mode.send("interactive", payload))
    update = sm.wait_for(lambda c: c.ok and c.method == "chat.update" and c.params.get("ts") == message["ts"],
                         after=mark)
    assert "U0DOCTOR1" in json.dumps(update.params)


def test_form_submission_errors_come_back_in_the_ack_and_a_good_one_posts(sm: Served) -> None:
    channel = new_channel()
    mark = sm.mark()
    sm.fake.socket_mode.wait_ack(slash(sm, "form", channel))
    sm.wait_for("views.open", after=mark)
    view = sm.fake.views()[-1]
    assert view["callback_id"] == CallbackId.CRS_FORM.value

    bad = view_submission_payload(view, {"temp": "500", "pressor": "1"}, user=DEFAULT_USER,
                                  trigger_id=sm.fake.new_trigger_id())
    ack = sm.fake.socket_mode.wait_ack(sm.fake.socket_mode.send("interactive", bad))
    assert ack.payload and ack.payload["response_action"] == "errors" and list(ack.payload["errors"]) == ["temp"]

    good = view_submission_payload(view, {"temp": "39", "sbp": "85", "pressor": "1", "patient": "bed33"},
                                   user=DEFAULT_USER, trigger_id=sm.fake.new_trigger_id())
    mark = sm.mark()
    ack = sm.fake.socket_mode.wait_ack(sm.fake.socket_mode.send("interactive", good))
    assert not ack.payload  # closes the modal
    call = sm.wait_for(ok_post_to(channel), after=mark)
    assert "bed33" in json.dumps(call.params)


# --------------------------------------------------------------------------- connections that go away


def test_lost_ack_is_redelivered_on_the_new_connection_and_not_repeated(sm: Served) -> None:
    socket = sm.fake.socket_mode
    before = len(socket.connections())
    channel = new_channel()
    mark = sm.mark()
    # The bot does the work and acks, the ack is lost with the connection: Slack sends it again.
    envelope_id = slash(sm, f"{GRADE_3} patient=bed34", channel, lose_ack=True)
    sm.wait_for(ok_post_to(channel), after=mark)
    socket.wait_connected(count=before + 1)
    ack = socket.wait_ack(envelope_id)
    assert socket.envelope(envelope_id).deliveries == 2
    assert ack.connection == before + 1
    barrier(sm)
    assert len(posts_to(sm, channel)) == 1, "the redelivered command was done twice"


def test_command_sent_while_the_socket_is_down_arrives_once(sm: Served) -> None:
    socket = sm.fake.socket_mode
    before = len(socket.connections())
    socket.drop()
    channel = new_channel()
    mark = sm.mark()
    envelope_id = slash(sm, f"{GRADE_3} patient=bed35", channel)  # queued until the bot is back
    socket.wait_connected(count=before + 1)
    socket.wait_ack(envelope_id, timeout=20)
    sm.wait_for(ok_post_to(channel), after=mark)
    barrier(sm)
    assert len(posts_to(sm, channel)) == 1


def test_disconnect_message_moves_the_bot_to_a_new_connection(sm: Served) -> None:
    socket = sm.fake.socket_mode
    before = len(socket.connections())
    socket.request_reconnect()
    live = socket.wait_connected(count=before + 1)
    assert live.number == before + 1
    assert [c.number for c in socket.connections(open_only=True)] == [before + 1]
    opened = [c for c in sm.fake.calls_to("apps.connections.open") if c.ok]
    assert len(opened) >= before + 1  # a fresh URL for every connection: each is single-use
    channel = new_channel()
    graded(sm, channel)
    assert len(posts_to(sm, channel)) == 1


# --------------------------------------------------------------------------- envelopes other processes saw


def test_an_envelope_delivered_again_after_a_restart_is_not_repeated(tmp_path: Path) -> None:
    """The first process did the work and acked, but Slack never got the ack; the restarted process
    (same database) is sent the envelope again and only acknowledges it."""
    channel = new_channel()
    with FakeSlack() as fake:
        socket = fake.socket_mode
        with Served.running(tmp_path, args=["--socket-mode"], env=SOCKET_ENV, fake=fake) as first:
            socket.wait_connected()
            mark = first.mark()
            envelope_id = slash(first, f"{GRADE_3} patient=bed36", channel)
            socket.wait_ack(envelope_id)
            first.wait_for(ok_post_to(channel), after=mark)
        with Served.running(tmp_path, args=["--socket-mode"], env=SOCKET_ENV, fake=fake) as restarted:
            live = socket.wait_connected(count=2)
            socket.redeliver(envelope_id, connection=live.number)
            ack = socket.wait_ack(envelope_id, count=2)
            assert ack.connection == live.number and not ack.payload
            barrier(restarted)
            assert len(posts_to(restarted, channel)) == 1, "the restarted process did the envelope's work again"
            assert f"envelope {envelope_id} delivered again" in restarted.output()
            assert socket.envelope(envelope_id).deliveries == 2


@pytest.mark.postgres
def test_an_envelope_delivered_again_to_another_replica_is_not_repeated(
        pg_database_factory: Callable[[], str], tmp_path: Path) -> None:  # noqa: F811
    """Two replicas on one PostgreSQL database, each with its own connection: the envelope one of them
    handled is delivered again to the other, which only acknowledges it."""
    url = pg_database_factory()
    env = {**SOCKET_ENV, "DATABASE_URL": url}
    channel = new_channel()
    with FakeSlack() as fake, Served.running(tmp_path / "a", args=["--socket-mode"], env=env, fake=fake) as a:
        socket = fake.socket_mode
        first = socket.wait_connected()
        with Served.running(tmp_path / "b", args=["--socket-mode"], env=env, fake=fake) as b:
            second = socket.wait_connected(count=2)
            mark = b.mark()
            envelope_id = slash(b, f"{GRADE_3} patient=bed37", channel, connection=second.number)
            socket.wait_ack(envelope_id)
            b.wait_for(ok_post_to(channel), after=mark)
            socket.redeliver(envelope_id, connection=first.number)
            ack = socket.wait_ack(envelope_id, count=2)
            assert ack.connection == first.number and not ack.payload
            # A later assessment on the same replica, posted: the redelivered one has had its turn.
            later = new_channel()
            mark = a.mark()
            socket.wait_ack(slash(a, f"{GRADE_3} patient=bed38", later, connection=first.number))
            a.wait_for(ok_post_to(later), after=mark)
            assert len(posts_to(a, channel)) == 1, "the other replica did the envelope's work again"
            assert f"envelope {envelope_id} delivered again" in a.output()
            engine = create_engine(url, poolclass=NullPool)
            with engine.connect() as conn:
                assert conn.execute(text("SELECT count(*) FROM assessments")).scalar() == 2  # bed37 once, bed38
                assert conn.execute(text("SELECT count(*) FROM seen_requests WHERE signature = :key"),
                                    {"key": envelope_key(envelope_id)}).scalar() == 1
            engine.dispose()
