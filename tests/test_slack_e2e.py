"""End to end over real HTTP: a real `crsbot serve` subprocess (waitress, Bolt, SQLite in a temp
dir) against the local Slack fake, driven with requests signed and encoded the way Slack sends them.

One server per module; each test works in its own channel and waits with `fake.wait_for(after=...)`,
so tests neither sleep nor see each other's messages.
"""

from __future__ import annotations

import itertools
import json
import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from bot.rulebooks import load_rulebooks
from bot.testing.slack_fake import FakeSlack, RecordedCall
from messages.blocks import SEVERITY_EMOJI
from messages.ids import ActionId, CallbackId
from messages.layout import JUDGMENT
from bot.testing.slack_requests import interactive_body, sign, slash_body, view_submission_payload
from tests.slack_support import (
    RESPONSE_URL_METHOD,
    Served,
    clean_env,
    response_to,
    run_crsbot,
    served,
    start_crsbot,
)

bot = served("bot")
restricted = served("restricted", env={"CRSBOT_ALLOWED_CHANNELS": "C0WARD1,C0WARD2",
                                       "CRSBOT_LOG_LEVEL": "DEBUG"})

GRADE_3 = "temp=39 sbp=85 pressor=1"
_ids = itertools.count(1)


def new_channel() -> str:
    return f"C0E2E{next(_ids):04d}"


def posts_to(channel: str) -> Any:
    def predicate(call: RecordedCall) -> bool:
        return call.method == "chat.postMessage" and call.params.get("channel") == channel
    predicate.__name__ = f"chat.postMessage to {channel}"
    return predicate


def ok_post_to(channel: str) -> Any:
    def predicate(call: RecordedCall) -> bool:
        return call.ok and call.method == "chat.postMessage" and call.params.get("channel") == channel
    predicate.__name__ = f"successful chat.postMessage to {channel}"
    return predicate


def all_text(payload: dict[str, Any]) -> str:
    """Every piece of text in a message payload (fallback, blocks, attachment blocks) as one string."""
    return json.dumps(payload, ensure_ascii=False)


def header_text(params: dict[str, Any]) -> str:
    return next(b["text"]["text"] for b in params["blocks"] if b["type"] == "header")


def message_blocks(params: dict[str, Any]) -> list[dict[str, Any]]:
    assert "attachments" not in params, "Block Kit only: no legacy attachments"
    return params["blocks"]


def context_texts(blocks: list[dict[str, Any]]) -> list[str]:
    return [e.get("text", "") for b in blocks if b["type"] == "context" for e in b["elements"]]


def action_ids(blocks: list[dict[str, Any]]) -> list[str]:
    return [e["action_id"] for b in blocks if b["type"] == "actions" for e in b["elements"]]


def nothing_reached(served_: Served, mark: int, channel: str) -> None:
    """Nothing was posted (in channel, ephemerally or through a response URL) for `channel`."""
    bad = [c for c in served_.calls_since(mark)
           if c.method in ("chat.postMessage", "chat.postEphemeral", "chat.update", RESPONSE_URL_METHOD,
                           "views.open")
           and channel in (c.params.get("channel"), c.response.get("channel"))]
    assert bad == [], f"unexpected Slack calls for {channel}: {[(c.method, c.status) for c in bad]}"
    assert served_.fake.messages(channel) == []


def barrier(served_: Served, channel: str) -> RecordedCall:
    """Send a harmless signed `/crs help` and wait for its reply. A 401 is decided before any
    listener runs, so this is belt and braces: it shows the server still does work for good
    requests, and gives anything a bad request might have queued its turn first."""
    mark = served_.mark()
    assert served_.slash("help", channel=channel).status == 200
    return served_.wait_for(response_to(channel), after=mark)


# --------------------------------------------------------------------------- health


def test_healthz_returns_json_200(bot: Served) -> None:
    response = bot.health()
    assert response.status == 200
    assert response.headers["Content-Type"].startswith("application/json")
    assert response.json() == {"ok": True, "database": "ok", "reminders": "running"}


# --------------------------------------------------------------------------- the graded message


@contextmanager
def posts_held(bot: Served, channel: str) -> Iterator[threading.Event]:
    """Slack slow: the bot's posts to `channel` are taken but not answered until the block ends. Yields an
    event set when the first one arrives."""
    held, release = threading.Event(), threading.Event()

    def hold_post(call: RecordedCall) -> None:
        # Runs on the fake's request thread before the bot gets its answer.
        if call.method == "chat.postMessage" and call.params.get("channel") == channel:
            held.set()
            release.wait(15)

    unsubscribe = bot.fake.subscribe(hold_post)
    try:
        yield held
    finally:
        release.set()
        unsubscribe()


def test_signed_command_acks_then_posts_grade_3_in_channel(bot: Served) -> None:
    channel = new_channel()
    mark = bot.mark()
    with posts_held(bot, channel) as hold:
        # The ack does not wait for the post: it arrives while the post is still being held.
        response = bot.slash(f"{GRADE_3} patient=bed12", channel=channel, timeout=8)
        assert response.status == 200
        assert response.body == b""
        assert hold.wait(10), "the message was never posted"

    call = bot.wait_for(ok_post_to(channel), after=mark)
    params = call.params
    assert "response_type" not in params  # a real channel message, not a reply to the user
    assert call.response["channel"] == channel

    header = header_text(params)
    assert header.startswith(SEVERITY_EMOJI[3] + " bed12 · CRS at least grade 3"), header
    # The notification alone: patient, grade, first action.
    assert params["text"].startswith("bed12 · CRS at least grade 3. First: Hold LUNSUMIO"), params["text"]
    assert "1 vasopressor" in params["text"]

    blocks = message_blocks(params)
    assert action_ids(blocks) == [ActionId.REASSESSED.value, ActionId.DETAILS.value, ActionId.RESOLVED.value,
                                  ActionId.NEW_ASSESSMENT.value, ActionId.TIMELINE.value]  # no snooze here
    version = load_rulebooks(None)["iv"].rulebook.version
    context = " ".join(context_texts(blocks))
    assert f"v{version}" in context
    assert JUDGMENT in context

    stored = bot.fake.messages(channel)
    assert len(stored) == 1 and stored[0]["ts"] == call.response["ts"]
    assert bot.calls_since(mark, RESPONSE_URL_METHOD, "chat.postEphemeral") == []


def test_a_follow_up_typed_while_the_first_reply_posts_goes_in_its_thread(bot: Served) -> None:
    """Slack slow, or two people a moment apart: the follow-up is recorded before the first reply's ts is
    known. It waits for that ts and replies in the episode's thread instead of starting a second one."""
    channel = new_channel()
    mark = bot.mark()
    with posts_held(bot, channel) as held:
        assert bot.slash(f"{GRADE_3} patient=bed31", channel=channel).status == 200
        assert held.wait(10), "the first reply was never posted"
        assert bot.slash("temp=38.4 patient=bed31", channel=channel).status == 200
        time.sleep(0.5)  # the follow-up is recorded and ready to post
    first = bot.wait_for(ok_post_to(channel), after=mark)
    follow_up = bot.wait_for(ok_post_to(channel), after=bot.fake.calls.index(first) + 1)
    assert "thread_ts" not in first.params
    assert follow_up.params["thread_ts"] == first.response["ts"] and follow_up.params["reply_broadcast"] is True
    top_level = [m["ts"] for m in bot.fake.messages(channel) if m.get("thread_ts", m["ts"]) == m["ts"]]
    assert top_level == [first.response["ts"]]  # one thread, not two


def test_acks_do_not_wait_behind_slow_posts(bot: Served) -> None:
    """Slack gives 3 s to ack. While several posts are stuck (Slack slow, or a long Retry-After),
    a new command must still be acked: the ack must not queue behind post-ack work."""
    stuck = [new_channel() for _ in range(8)]
    release = threading.Event()

    def hold_post(call: RecordedCall) -> None:
        # Subscribers run one at a time before the fake answers: holding one holds every
        # later post's answer too, so each acked command keeps one bot thread busy.
        if call.method == "chat.postMessage" and call.params.get("channel") in stuck:
            release.wait(20)

    unsubscribe = bot.fake.subscribe(hold_post)
    mark = bot.mark()
    acked: list[str] = []
    try:
        for channel in stuck:
            try:
                response = bot.slash(GRADE_3, channel=channel, timeout=2.5)
            except OSError:  # timed out: Slack would show the user "operation_timeout"
                break
            assert response.status == 200
            acked.append(channel)
            bot.wait_for(posts_to(channel), after=mark)  # its post is now in flight, and held
    finally:
        release.set()
        unsubscribe()
    assert acked == stuck, (f"command {len(acked) + 1} was not acked within 2.5 s while {len(acked)} "
                            "posts were in progress")
    for channel in stuck:
        bot.wait_for(ok_post_to(channel), after=mark, timeout=15)


# --------------------------------------------------------------------------- request signing


def _stale(served_: Served, body: str) -> Any:
    return served_.post(body, timestamp=int(time.time()) - 6 * 60)


def _unsigned(served_: Served, body: str) -> Any:
    return served_.post(body, signed=False)


def _wrong_secret(served_: Served, body: str) -> Any:
    return served_.post(body, secret="not-the-signing-secret")


def _tampered(served_: Served, body: str) -> Any:
    """Signed for one body, sent with another (a changed finding)."""
    headers = sign(body, served_.secret)
    forged = body.replace("pressor%3D1", "pressor%3D2")
    assert forged != body
    return served_.post(forged, signed=False, headers=headers)


def _bad_signature_header(served_: Served, body: str) -> Any:
    return served_.post(body, headers={"X-Slack-Signature": "v0=" + "0" * 64})


@pytest.mark.parametrize("send", [_unsigned, _tampered, _wrong_secret, _stale, _bad_signature_header],
                         ids=["unsigned", "tampered-body", "wrong-secret", "stale-6min", "garbage-signature"])
def test_unverified_requests_get_401_and_do_nothing(bot: Served, send: Any) -> None:
    channel = new_channel()
    mark = bot.mark()
    body = bot.slash_body(f"{GRADE_3} patient=bed7", channel=channel)
    response = send(bot, body)
    assert response.status == 401
    barrier(bot, new_channel())
    nothing_reached(bot, mark, channel)


def test_unverified_interactivity_gets_401(bot: Served) -> None:
    channel = new_channel()
    view = open_form(bot, channel)
    mark = bot.mark()
    body = interactive_body(view_submission_payload(view, {"temp": "39", "pressor": "1"}, user="U0CLINIC01",
                                                    trigger_id=bot.fake.new_trigger_id()))
    assert _stale(bot, body).status == 401
    assert _wrong_secret(bot, body).status == 401
    barrier(bot, new_channel())
    nothing_reached(bot, mark, channel)


# --------------------------------------------------------------------------- the form


def open_form(served_: Served, channel: str) -> dict[str, Any]:
    mark = served_.mark()
    assert served_.slash("form", channel=channel).status == 200
    return served_.wait_for("views.open", after=mark).response["view"]


def test_form_command_opens_the_modal(bot: Served) -> None:
    channel = new_channel()
    view = open_form(bot, channel)
    assert view["callback_id"] == CallbackId.CRS_FORM.value
    metadata = json.loads(view["private_metadata"])
    assert metadata["channel"] == channel and metadata["s"], "the channel is sealed (bot/seal.py)"
    block_ids = {b.get("block_id") for b in view["blocks"] if b["type"] == "input"}
    assert {"temp", "sbp", "pressor", "o2", "device", "patient"} <= block_ids
    assert bot.fake.views()[-1]["id"] == view["id"]


@pytest.mark.parametrize(("values", "block"), [
    ({"temp": "500", "pressor": "1"}, "temp"),
    ({"temp": "39", "pressor": "x"}, "pressor"),
    ({"temp": "39", "patient": "12345678"}, "patient"),
], ids=["temp-500", "pressor-x", "patient-mrn"])
def test_form_submission_with_a_bad_field_gets_an_inline_error(bot: Served, values: dict[str, str],
                                                                block: str) -> None:
    channel = new_channel()
    view = open_form(bot, channel)
    mark = bot.mark()
    response = bot.submit(view, values)
    assert response.status == 200
    assert response.headers["Content-Type"].startswith("application/json")
    answer = response.json()
    assert answer["response_action"] == "errors"
    assert list(answer["errors"]) == [block]
    assert f"`{block}`" in answer["errors"][block]
    assert "Traceback" not in answer["errors"][block]
    barrier(bot, new_channel())
    nothing_reached(bot, mark, channel)


def test_good_form_submission_posts_to_the_channel_in_private_metadata(bot: Served) -> None:
    channel = new_channel()
    view = open_form(bot, channel)
    mark = bot.mark()
    response = bot.submit(view, {"temp": "39", "sbp": "85", "pressor": "1", "patient": "bed21"})
    assert response.status == 200
    assert response.body == b""  # a plain ack closes the modal
    call = bot.wait_for(ok_post_to(channel), after=mark)
    assert re.search(r"CRS (at least )?grade 3\b", header_text(call.params))
    assert "bed21" in header_text(call.params)


# --------------------------------------------------------------------------- buttons


def post_graded(served_: Served, channel: str, text: str) -> dict[str, Any]:
    mark = served_.mark()
    assert served_.slash(text, channel=channel).status == 200
    call = served_.wait_for(ok_post_to(channel), after=mark)
    return next(m for m in served_.fake.messages(channel) if m["ts"] == call.response["ts"])


def updated(served_: Served, channel: str, ts: str, mark: int) -> RecordedCall:
    def predicate(call: RecordedCall) -> bool:
        return call.ok and call.method == "chat.update" and call.params.get("ts") == ts
    predicate.__name__ = f"chat.update of {ts}"
    return served_.wait_for(predicate, after=mark)


def test_button_clicks_update_the_message(bot: Served) -> None:
    channel = new_channel()
    message = post_graded(bot, channel, f"{GRADE_3} patient=bed31")

    mark = bot.mark()
    assert bot.click(message, ActionId.REASSESSED.value, channel=channel, user="U0NURSE01").status == 200
    call = updated(bot, channel, message["ts"], mark)
    assert call.params["channel"] == channel
    snoozed = bot.fake.messages(channel)[0]
    notes = context_texts(message_blocks(snoozed))
    assert any("reassessing" in n and "U0NURSE01" in n for n in notes), notes
    assert any("Rulebook" in n for n in notes[-1:]), "the rulebook context line must be kept, last"
    assert action_ids(message_blocks(snoozed)), "reassessing keeps the buttons"
    assert snoozed["text"] == message["text"]

    mark = bot.mark()
    assert bot.click(snoozed, ActionId.RESOLVED.value, channel=channel, user="U0DOCTOR1").status == 200
    updated(bot, channel, message["ts"], mark)
    resolved = bot.fake.messages(channel)[0]
    notes = context_texts(message_blocks(resolved))
    assert any("Resolved by" in n and "U0DOCTOR1" in n for n in notes), notes
    assert any("reassessing" in n for n in notes), "earlier notes stay on the message"
    assert action_ids(message_blocks(resolved)) == [ActionId.DETAILS.value], "resolved keeps only Details"
    thread = bot.fake.messages(channel, thread_ts=message["ts"])
    assert any("resolved" in m["text"] for m in thread), "the resolution is also said in the thread"


def test_reassessed_button_opens_the_form_prefilled(bot: Served) -> None:
    channel = new_channel()
    message = post_graded(bot, channel, f"{GRADE_3} patient=bed32")
    mark = bot.mark()
    assert bot.click(message, ActionId.REASSESSED.value, channel=channel).status == 200
    view = bot.wait_for("views.open", after=mark).params["view"]
    assert view["callback_id"] == CallbackId.CRS_FORM.value
    initial = {b["block_id"]: b["element"].get("initial_value") for b in view["blocks"] if b["type"] == "input"}
    assert initial["temp"] == "39" and initial["pressor"] == "1" and initial["patient"] == "bed32"
    updated(bot, channel, message["ts"], mark)
    notes = context_texts(message_blocks(bot.fake.messages(channel)[0]))
    assert any("is reassessing" in n for n in notes), notes


def test_button_on_a_message_without_patient_updates_it(bot: Served) -> None:
    channel = new_channel()
    message = post_graded(bot, channel, GRADE_3)
    mark = bot.mark()
    assert bot.click(message, ActionId.RESOLVED.value, channel=channel).status == 200
    updated(bot, channel, message["ts"], mark)
    notes = context_texts(message_blocks(bot.fake.messages(channel)[0]))
    assert any("marked this resolved" in n for n in notes), notes


def test_details_button_opens_the_full_reply_as_decided(bot: Served) -> None:
    channel = new_channel()
    message = post_graded(bot, channel, f"{GRADE_3} patient=bed33")
    assert "Supportive care" not in json.dumps(message["blocks"])  # not on the first screen
    mark = bot.mark()
    assert bot.click(message, ActionId.DETAILS.value, channel=channel).status == 200
    view = bot.wait_for("views.open", after=mark).params["view"]
    assert view["callback_id"] == CallbackId.CRS_DETAILS.value
    full = all_text(view)
    for title in ("Supportive care", "Conventions applied", "Next dose", "Rulebook"):
        assert f"*{title}*" in full, title
    assert "bed33 · CRS at least grade 3" in full
    assert bot.calls_since(mark, "chat.update") == []  # reading details changes nothing


def test_details_of_another_channels_assessment_are_refused(bot: Served) -> None:
    channel, other = new_channel(), new_channel()
    message = post_graded(bot, channel, f"{GRADE_3} patient=bed34")
    mark = bot.mark()
    assert bot.click(message, ActionId.DETAILS.value, channel=other).status == 200

    def told(call: RecordedCall) -> bool:  # the value was sealed for the other channel: refused
        return call.ok and call.method in ("chat.postEphemeral", RESPONSE_URL_METHOD) \
            and "nothing was changed" in call.params.get("text", "")
    bot.wait_for(told, after=mark)
    assert bot.calls_since(mark, "views.open") == []


# --------------------------------------------------------------------------- replies to the user


def ephemeral_reply(served_: Served, text: str, channel: str) -> dict[str, Any]:
    mark = served_.mark()
    assert served_.slash(text, channel=channel).status == 200
    call = served_.wait_for(response_to(channel), after=mark)
    assert call.ok, call
    assert call.params.get("response_type") == "ephemeral"
    assert call.response["ephemeral"] is True
    return call.params


def test_bad_key_gets_an_ephemeral_did_you_mean(bot: Served) -> None:
    channel = new_channel()
    mark = bot.mark()
    reply = ephemeral_reply(bot, "temp=39 presor=1", channel)
    text = all_text(reply)
    assert "`presor`" in reply["text"]
    assert "did you mean `pressor`" in reply["text"].lower()
    assert "Example:" in reply["text"]
    assert "Traceback" not in text and "Error(" not in text
    assert bot.fake.messages(channel) == []
    assert bot.calls_since(mark, "chat.postMessage") == []


@pytest.mark.parametrize("text", ["", "help", "  HELP "])
def test_bare_command_and_help_give_the_ephemeral_guide(bot: Served, text: str) -> None:
    channel = new_channel()
    reply = ephemeral_reply(bot, text, channel)
    assert "how to use /crs" in reply["text"]
    assert "/crs temp=39 sbp=85 pressor=1 patient=bed12" in reply["text"]
    assert "/crs form" in reply["text"]
    assert bot.fake.messages(channel) == []


@pytest.mark.parametrize("label", ["12345678", "john.smith", "MRN-0042"])
def test_patient_label_like_a_record_number_or_name_is_refused(bot: Served, label: str) -> None:
    channel = new_channel()
    mark = bot.mark()
    reply = ephemeral_reply(bot, f"{GRADE_3} patient={label}", channel)
    assert "`patient`" in reply["text"]
    assert "name or a record number" in reply["text"]
    assert "bed or study label" in reply["text"]
    barrier(bot, new_channel())
    assert bot.fake.messages(channel) == []
    assert [c for c in bot.calls_since(mark, "chat.postMessage") if c.params.get("channel") == channel] == []


def test_icans_posts_the_grade_in_channel(bot: Served) -> None:
    channel = new_channel()
    mark = bot.mark()
    assert bot.slash("icans ice=6", channel=channel).status == 200
    call = bot.wait_for(ok_post_to(channel), after=mark)
    assert re.search(r"ICANS (at least )?grade 2\b", header_text(call.params)), header_text(call.params)
    assert re.search(r"ICANS (at least )?grade 2\b", call.params["text"])


def test_delay_and_premed_answer_the_user(bot: Served) -> None:
    channel = new_channel()
    delay = ephemeral_reply(bot, "delay last=c1d8 since=3w", channel)
    assert "Restart after a dose delay" in delay["text"]
    assert "c1d8" in delay["text"].lower()
    assert delay["blocks"][0]["type"] == "header"
    premed = ephemeral_reply(bot, "premed cycle=1", channel)
    assert "Premedication, cycle 1" in premed["text"]
    assert "Traceback" not in delay["text"] + premed["text"]


# --------------------------------------------------------------------------- Slack failing


def test_rate_limited_post_is_retried_and_arrives(bot: Served) -> None:
    channel = new_channel()
    bot.fake.fail_next("chat.postMessage", status=429, retry_after=1)
    mark = bot.mark()
    assert bot.slash(f"{GRADE_3} patient=bed41", channel=channel).status == 200
    bot.wait_for(ok_post_to(channel), after=mark, timeout=15)
    posts = [c for c in bot.calls_since(mark, "chat.postMessage")]
    assert [c.status for c in posts] == [429, 200]
    assert all(c.params.get("channel") == channel for c in posts)
    assert posts[1].at - posts[0].at >= 0.9, "Retry-After: 1 must be honoured"
    assert len(bot.fake.messages(channel)) == 1
    assert bot.calls_since(mark, RESPONSE_URL_METHOD) == []


def test_persistent_server_error_tells_the_user_and_stays_healthy(bot: Served) -> None:
    channel = new_channel()
    bot.fake.fail_next("chat.postMessage", status=500, times=10)
    try:
        mark = bot.mark()
        assert bot.slash(f"{GRADE_3} patient=bed51", channel=channel).status == 200
        call = bot.wait_for(response_to(channel), after=mark, timeout=20)
        assert call.ok
        assert call.params.get("response_type") == "ephemeral"
        assert "Slack did not accept the message" in call.params["text"]
        assert "Traceback" not in all_text(call.params)
        attempts = [c.status for c in bot.calls_since(mark, "chat.postMessage")]
        assert attempts and set(attempts) == {500}, attempts
        assert bot.fake.messages(channel) == []
    finally:
        bot.fake.reset()  # drop the faults that are still queued
    assert bot.process.alive()
    assert bot.health().status == 200
    mark = bot.mark()
    assert bot.slash(GRADE_3, channel=channel).status == 200
    bot.wait_for(ok_post_to(channel), after=mark)


def test_form_submission_whose_post_fails_tells_the_user(bot: Served) -> None:
    channel = new_channel()
    view = open_form(bot, channel)
    bot.fake.fail_next("chat.postMessage", status=500, times=10)
    try:
        mark = bot.mark()
        assert bot.submit(view, {"temp": "39", "pressor": "1"}, user="U0NURSE02").status == 200
        bot.wait_for(posts_to(channel), after=mark)

        def told(call: RecordedCall) -> bool:
            return call.ok and call.method == "chat.postEphemeral" and call.params.get("user") == "U0NURSE02"
        bot.wait_for(told, after=mark, timeout=5)
    finally:
        bot.fake.reset()


# --------------------------------------------------------------------------- allowed channels


def test_allowed_channels_refuse_other_channels(restricted: Served) -> None:
    mark = restricted.mark()
    assert restricted.slash(GRADE_3, channel="C0OTHER1").status == 200
    call = restricted.wait_for(response_to("C0OTHER1"), after=mark)
    assert call.params.get("response_type") == "ephemeral"
    assert "not enabled in this channel" in call.params["text"]
    assert "CRSBOT_ALLOWED_CHANNELS" in call.params["text"]
    assert restricted.fake.messages("C0OTHER1") == []

    mark = restricted.mark()
    assert restricted.slash(GRADE_3, channel="C0WARD2").status == 200
    restricted.wait_for(ok_post_to("C0WARD2"), after=mark)
    assert restricted.calls_since(mark, RESPONSE_URL_METHOD) == []


def test_secrets_stay_out_of_debug_logs(restricted: Served) -> None:
    mark = restricted.mark()
    restricted.slash("temp=39 presor=1", channel="C0WARD1")
    restricted.wait_for(response_to("C0WARD1"), after=mark)
    output = restricted.output()
    assert "DEBUG" in output, "the server was meant to log at DEBUG"
    assert restricted.token not in output
    assert restricted.secret not in output


# --------------------------------------------------------------------------- start-up failures


def _startup_env(tmp_path: Any, **overrides: str | None) -> dict[str, str]:
    base: dict[str, str | None] = {
        "SLACK_BOT_TOKEN": "xoxb-startup-" + "9" * 24,
        "SLACK_SIGNING_SECRET": "startup-signing-" + "8" * 24,
        "SLACK_API_URL": "http://127.0.0.1:9/api/",  # never reached: start-up fails first
        "CRSBOT_DATA_DIR": str(tmp_path / "data"),
    }
    base.update(overrides)
    return clean_env(base)


@pytest.mark.parametrize(("overrides", "name"), [
    ({"SLACK_SIGNING_SECRET": None}, "SLACK_SIGNING_SECRET"),
    ({"SLACK_BOT_TOKEN": None}, "SLACK_BOT_TOKEN"),
    ({"PORT": "abc"}, "PORT"),
    ({"CRSBOT_REASSESS_INTERVALS": "bogus"}, "CRSBOT_REASSESS_INTERVALS"),
    ({"CRSBOT_SBP_THRESHOLD": "lots"}, "CRSBOT_SBP_THRESHOLD"),
    ({"CRSBOT_ESCALATE_AFTER": "soon"}, "CRSBOT_ESCALATE_AFTER"),
], ids=["no-signing-secret", "no-bot-token", "port-abc", "intervals-bogus", "sbp-threshold", "escalate-after"])
def test_bad_settings_stop_start_up_naming_the_variable(tmp_path: Any, overrides: dict[str, str | None],
                                                         name: str) -> None:
    env = _startup_env(tmp_path, **overrides)
    result = run_crsbot(env, "--port", "0", cwd=tmp_path)
    assert result.returncode != 0
    assert name in result.stdout, result.stdout
    assert "Traceback" not in result.stdout, result.stdout
    assert "listening" not in result.stdout
    for secret in ("xoxb-startup-" + "9" * 24, "startup-signing-" + "8" * 24):
        assert secret not in result.stdout


def test_unreachable_slack_api_stops_start_up_with_a_message(tmp_path: Any) -> None:
    result = run_crsbot(_startup_env(tmp_path), "--port", "0", cwd=tmp_path)
    assert result.returncode != 0
    assert "SLACK_API_URL" in result.stdout or "SLACK_BOT_TOKEN" in result.stdout, result.stdout
    assert "Traceback" not in result.stdout, result.stdout
    assert "xoxb-startup-" + "9" * 24 not in result.stdout


def test_empty_signing_secret_stops_start_up(tmp_path: Any) -> None:
    with FakeSlack() as fake:
        env = _startup_env(tmp_path, SLACK_SIGNING_SECRET="", SLACK_API_URL=fake.api_url)
        process = start_crsbot(env, tmp_path / "crsbot.log", cwd=tmp_path, wait=False)
        try:
            deadline = time.monotonic() + 20
            while process.alive() and "crsbot listening" not in process.output() and time.monotonic() < deadline:
                time.sleep(0.05)
            started = process.alive()
        finally:
            process.stop()
    output = process.output()
    assert not started, "crsbot serve started with an empty SLACK_SIGNING_SECRET"
    assert process.proc.returncode != 0
    assert "SLACK_SIGNING_SECRET" in output
    assert "Traceback" not in output


# --------------------------------------------------------------------------- last: the logs


def test_rejected_request_bodies_are_not_logged(bot: Served) -> None:
    channel = new_channel()
    response_url = bot.fake.new_response_url(channel=channel, user="U0CLINIC01")
    body = slash_body(f"{GRADE_3} patient=bedzq77", channel=channel, user="U0CLINIC01",
                      response_url=response_url, trigger_id=bot.fake.new_trigger_id())
    assert bot.post(body, timestamp=int(time.time()) - 6 * 60).status == 401
    barrier(bot, new_channel())
    output = bot.output()
    assert "bedzq77" not in output
    assert response_url.rsplit("/", 1)[-1] not in output


def test_secrets_never_appear_in_the_process_output(bot: Served) -> None:
    # Runs last in this module, after the error, retry and failure paths above have been logged.
    output = bot.output()
    assert "crsbot listening on" in output
    assert bot.token not in output
    assert bot.secret not in output
