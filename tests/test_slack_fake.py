"""The Slack fake, driven over real HTTP by the real slack_sdk and Bolt clients.

These pin down the behaviour the console and the end-to-end tests rely on:
what gets stored, how failures look to slack_sdk, and how waiting works.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest
from slack_bolt.context.respond import Respond
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import RateLimitErrorRetryHandler

from bot.testing.slack_fake import RESPONSE_URL_METHOD, FakeSlack, RecordedCall

TOKEN = "xoxb-test-token"


@pytest.fixture
def fake() -> Iterator[FakeSlack]:
    with FakeSlack() as server:
        yield server


@pytest.fixture
def client(fake: FakeSlack) -> WebClient:
    # No retry handlers beyond slack_sdk's default connection-error one, so
    # injected HTTP failures surface as SlackApiError.
    return WebClient(token=TOKEN, base_url=fake.api_url)


def section(text: str) -> dict[str, object]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


MODAL = {
    "type": "modal",
    "callback_id": "crs_form",
    "title": {"type": "plain_text", "text": "Grade CRS"},
    "blocks": [section("Temperature")],
}


def raw_post(url: str, body: bytes, headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
    """POST without slack_sdk, to see status and headers exactly as sent."""
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=5) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers), err.read()


# --------------------------------------------------------------------------- lifecycle


def test_urls_point_at_the_running_server_and_stop_frees_it() -> None:
    fake = FakeSlack().start()
    try:
        assert fake.port > 0
        assert fake.api_url == f"http://127.0.0.1:{fake.port}/api/"
        assert fake.base_url == f"http://127.0.0.1:{fake.port}"
        assert WebClient(token=TOKEN, base_url=fake.api_url).auth_test()["ok"] is True
    finally:
        fake.stop()
    fake.stop()  # idempotent
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(f"http://127.0.0.1:{fake.port}/api/auth.test", data=b"", timeout=2)
    with pytest.raises(RuntimeError):
        _ = fake.api_url


def test_requests_are_not_logged_to_stderr(fake: FakeSlack, client: WebClient, capfd: pytest.CaptureFixture[str]) -> None:
    client.auth_test()
    fake.fail_next("auth.test", status=503)
    with pytest.raises(SlackApiError):
        client.auth_test()
    with pytest.raises(SlackApiError):
        client.api_call("no.such.method")
    assert len(fake.calls) == 3
    _, err = capfd.readouterr()
    assert err == ""


# --------------------------------------------------------------------------- auth and dispatch


def test_auth_test_reports_the_bot_identity_and_scopes(fake: FakeSlack) -> None:
    status, headers, body = raw_post(
        fake.api_url + "auth.test", b"", {"Authorization": f"Bearer {TOKEN}"}
    )
    data = json.loads(body)
    assert status == 200
    assert data["ok"] is True
    assert (data["team_id"], data["user_id"], data["bot_id"]) == (
        fake.team_id,
        fake.bot_user_id,
        fake.bot_id,
    )
    assert set(headers["x-oauth-scopes"].split(",")) == {
        "commands",
        "chat:write",
        "users:read",
        "channels:read",
        "groups:read",
        "files:write",
    }


def test_missing_token_is_not_authed(fake: FakeSlack) -> None:
    anonymous = WebClient(token=None, base_url=fake.api_url)
    with pytest.raises(SlackApiError) as excinfo:
        anonymous.chat_postMessage(channel="C1", text="hello")
    assert excinfo.value.response["error"] == "not_authed"
    assert fake.messages("C1") == []
    assert fake.calls_to("chat.postMessage")[0].response["error"] == "not_authed"


def test_token_in_form_body_is_accepted_but_not_recorded(fake: FakeSlack) -> None:
    status, _, body = raw_post(
        fake.api_url + "chat.postMessage",
        b"token=xoxb-in-body&channel=C1&text=hi",
        {"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert status == 200 and json.loads(body)["ok"] is True
    assert "token" not in fake.calls[-1].params


def test_only_configured_tokens_are_accepted() -> None:
    with FakeSlack(tokens={"xoxb-right"}) as fake:
        with pytest.raises(SlackApiError) as excinfo:
            WebClient(token="xoxb-wrong", base_url=fake.api_url).auth_test()
        assert excinfo.value.response["error"] == "invalid_auth"
        assert WebClient(token="xoxb-right", base_url=fake.api_url).auth_test()["ok"] is True


def test_unknown_method_is_refused_and_recorded(fake: FakeSlack, client: WebClient) -> None:
    with pytest.raises(SlackApiError) as excinfo:
        client.api_call("chat.delete", json={"channel": "C1", "ts": "1.2"})
    assert excinfo.value.response["error"] == "unknown_method"
    assert [c.method for c in fake.calls] == ["chat.delete"]
    assert fake.calls[0].params == {"channel": "C1", "ts": "1.2"}


def test_a_method_needing_a_scope_the_bot_lacks_is_refused() -> None:
    with FakeSlack(scopes={"commands", "chat:write"}) as fake:
        client = WebClient(token=TOKEN, base_url=fake.api_url)
        with pytest.raises(SlackApiError) as excinfo:
            client.users_info(user="U1")
        assert excinfo.value.response["error"] == "missing_scope"
        assert excinfo.value.response["needed"] == "users:read"


def test_private_channel_info_needs_groups_read() -> None:
    with FakeSlack(scopes={"chat:write", "channels:read"}) as fake:
        client = WebClient(token=TOKEN, base_url=fake.api_url)
        fake.add_channel("C0PRIVATE1", name="heme-onc", is_private=True)
        assert client.conversations_info(channel="C0PUBLIC01")["channel"]["is_private"] is False
        with pytest.raises(SlackApiError) as excinfo:
            client.conversations_info(channel="C0PRIVATE1")
        assert excinfo.value.response["needed"] == "groups:read"


# --------------------------------------------------------------------------- messages


def test_post_message_stores_the_message_with_increasing_ts(fake: FakeSlack, client: WebClient) -> None:
    first = client.chat_postMessage(channel="C1", text="CRS grade 2", blocks=[section("*Grade 2*")])
    reply = client.chat_postMessage(channel="C1", text="reminder", thread_ts=first["ts"])

    assert first["channel"] == "C1"
    assert first["ts"] == "1700000000.000100"
    assert float(reply["ts"]) > float(first["ts"])
    stored = fake.messages("C1")
    assert [m["text"] for m in stored] == ["CRS grade 2", "reminder"]
    assert stored[0]["blocks"] == [section("*Grade 2*")]
    assert stored[0]["user"] == fake.bot_user_id
    assert stored[1]["thread_ts"] == first["ts"]
    assert [m["text"] for m in fake.messages("C1", thread_ts=first["ts"])] == ["reminder"]
    assert fake.messages("C2") == []
    recorded = fake.calls_to("chat.postMessage")
    assert recorded[0].params["blocks"] == [section("*Grade 2*")]
    assert recorded[0].status == 200 and recorded[0].ok


def test_form_encoded_blocks_arrive_decoded(fake: FakeSlack, client: WebClient) -> None:
    # api_call(params=...) is how slack_sdk sends form bodies; blocks travel as a JSON string.
    client.api_call(
        "chat.postMessage",
        params={"channel": "C1", "text": "t", "blocks": json.dumps([section("form")])},
    )
    assert fake.messages("C1")[0]["blocks"] == [section("form")]
    assert fake.calls[-1].params["blocks"] == [section("form")]


def test_malformed_blocks_are_refused(fake: FakeSlack, client: WebClient) -> None:
    with pytest.raises(SlackApiError) as excinfo:
        client.api_call("chat.postMessage", params={"channel": "C1", "blocks": "[not json"})
    assert excinfo.value.response["error"] == "invalid_blocks_format"
    with pytest.raises(SlackApiError) as excinfo:
        client.chat_postMessage(channel="C1", text="t", blocks=[section(str(i)) for i in range(51)])
    assert excinfo.value.response["error"] == "invalid_blocks"
    with pytest.raises(SlackApiError) as excinfo, pytest.warns(UserWarning):
        client.chat_postMessage(channel="C1", text="")
    assert excinfo.value.response["error"] == "no_text"
    assert fake.messages("C1") == []


def test_message_to_a_user_goes_to_their_dm(fake: FakeSlack, client: WebClient) -> None:
    response = client.chat_postMessage(channel="U0NURSE001", text="check vitals")
    assert response["channel"] == "D0NURSE001"
    assert [m["text"] for m in fake.messages("D0NURSE001")] == ["check vitals"]
    assert fake.messages("U0NURSE001") == fake.messages("D0NURSE001")


def test_chat_update_changes_the_stored_message(fake: FakeSlack, client: WebClient) -> None:
    posted = client.chat_postMessage(channel="C1", text="grade 1", blocks=[section("grade 1")])
    client.chat_postMessage(channel="C1", text="other")
    updated = client.chat_update(channel="C1", ts=posted["ts"], text="grade 3", blocks=[section("grade 3")])

    assert updated["ts"] == posted["ts"]
    assert updated["message"]["text"] == "grade 3"
    first, second = fake.messages("C1")
    assert (first["ts"], first["text"], first["blocks"]) == (posted["ts"], "grade 3", [section("grade 3")])
    assert "edited" in first
    assert second["text"] == "other"


def test_chat_update_of_a_missing_message_is_message_not_found(fake: FakeSlack, client: WebClient) -> None:
    client.chat_postMessage(channel="C1", text="x")
    with pytest.raises(SlackApiError) as excinfo:
        client.chat_update(channel="C1", ts="1600000000.000001", text="y")
    assert excinfo.value.response["error"] == "message_not_found"
    assert [m["text"] for m in fake.messages("C1")] == ["x"]


def test_post_ephemeral_is_kept_apart_from_channel_messages(fake: FakeSlack, client: WebClient) -> None:
    response = client.chat_postEphemeral(channel="C1", user="U0DOC00001", text="only you")
    assert response["message_ts"]
    assert fake.messages("C1") == []
    [ephemeral] = fake.ephemerals("C1", user="U0DOC00001")
    assert (ephemeral["text"], ephemeral["ts"]) == ("only you", response["message_ts"])
    assert fake.ephemerals(user="U0SOMEONE1") == []
    with pytest.raises(SlackApiError) as excinfo:
        client.chat_update(channel="C1", ts=response["message_ts"], text="edit")
    assert excinfo.value.response["error"] == "message_not_found"


def test_concurrent_posts_get_unique_ts(fake: FakeSlack) -> None:
    def post(n: int) -> None:
        WebClient(token=TOKEN, base_url=fake.api_url).chat_postMessage(channel="C1", text=str(n))

    threads = [threading.Thread(target=post, args=(n,)) for n in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    stored = fake.messages("C1")
    assert len(stored) == 20
    assert len({m["ts"] for m in stored}) == 20
    assert sorted(int(m["text"]) for m in stored) == list(range(20))


# --------------------------------------------------------------------------- views, users, channels


def test_views_open_requires_a_trigger_id(fake: FakeSlack, client: WebClient) -> None:
    with pytest.raises(SlackApiError) as excinfo:
        client.views_open(view=MODAL)
    assert excinfo.value.response["error"] == "invalid_arguments"
    assert "trigger_id" in excinfo.value.response["response_metadata"]["messages"][0]
    assert fake.views() == []


def test_views_open_stores_the_view_and_a_trigger_works_once(fake: FakeSlack, client: WebClient) -> None:
    trigger = fake.new_trigger_id()
    opened = client.views_open(trigger_id=trigger, view=MODAL)["view"]
    assert opened["id"].startswith("V")
    assert opened["callback_id"] == "crs_form"
    assert opened["hash"]
    assert fake.views() == [opened]
    with pytest.raises(SlackApiError) as excinfo:
        client.views_open(trigger_id=trigger, view=MODAL)
    assert excinfo.value.response["error"] == "exchanged_trigger_id"


def test_views_update_by_id_and_external_id(fake: FakeSlack, client: WebClient) -> None:
    opened = client.views_open(trigger_id="1.2.abc", view={**MODAL, "external_id": "patient-7"})["view"]
    by_id = client.views_update(view_id=opened["id"], view={**MODAL, "blocks": [section("step 2")]})["view"]
    assert by_id["id"] == opened["id"]
    assert by_id["blocks"] == [section("step 2")]
    assert by_id["hash"] != opened["hash"]

    by_ext = client.views_update(external_id="patient-7", view={**MODAL, "blocks": [section("step 3")]})["view"]
    assert by_ext["id"] == opened["id"]
    assert fake.views()[0]["blocks"] == [section("step 3")]

    with pytest.raises(SlackApiError) as excinfo:
        client.views_update(view_id=opened["id"], hash=opened["hash"], view=MODAL)
    assert excinfo.value.response["error"] == "hash_conflict"
    with pytest.raises(SlackApiError) as excinfo:
        client.views_update(view_id="V0NOPE", view=MODAL)
    assert excinfo.value.response["error"] == "not_found"


def test_users_info_returns_a_plausible_user(fake: FakeSlack, client: WebClient) -> None:
    fake.add_user("U0NURSE001", name="pat", real_name="Pat Nurse", tz="Europe/Paris")
    user = client.users_info(user="U0NURSE001")["user"]
    assert (user["id"], user["name"], user["real_name"], user["tz"]) == (
        "U0NURSE001",
        "pat",
        "Pat Nurse",
        "Europe/Paris",
    )
    assert user["tz_offset"] in (3600, 7200)
    stranger = client.users_info(user="U0STRANGE1")["user"]
    assert stranger["id"] == "U0STRANGE1" and stranger["real_name"] and stranger["tz"]
    assert client.users_info(user=fake.bot_user_id)["user"]["is_bot"] is True


def test_conversations_info_returns_a_plausible_channel(fake: FakeSlack, client: WebClient) -> None:
    fake.add_channel("C0HEMEONC1", name="heme-onc")
    channel = client.conversations_info(channel="C0HEMEONC1")["channel"]
    assert (channel["id"], channel["name"], channel["is_private"]) == ("C0HEMEONC1", "heme-onc", False)
    with pytest.raises(SlackApiError) as excinfo:
        client.conversations_info(channel="U0NOTACHAN")
    assert excinfo.value.response["error"] == "channel_not_found"


# --------------------------------------------------------------------------- fault injection


def test_rate_limit_is_retried_after_retry_after_and_then_succeeds(fake: FakeSlack) -> None:
    fake.fail_next("chat.postMessage", status=429, retry_after=0)
    retrying = WebClient(
        token=TOKEN,
        base_url=fake.api_url,
        retry_handlers=[RateLimitErrorRetryHandler(max_retry_count=2)],
    )
    response = retrying.chat_postMessage(channel="C1", text="after the limit")

    assert response["ok"] is True
    assert [c.status for c in fake.calls_to("chat.postMessage")] == [429, 200]
    assert fake.calls_to("chat.postMessage")[0].response == {"ok": False, "error": "ratelimited"}
    assert [m["text"] for m in fake.messages("C1")] == ["after the limit"]


def test_rate_limit_answer_carries_retry_after(fake: FakeSlack, client: WebClient) -> None:
    fake.fail_next("chat.postMessage", status=429, retry_after=7)
    status, headers, body = raw_post(
        fake.api_url + "chat.postMessage",
        json.dumps({"channel": "C1", "text": "x"}).encode(),
        {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"},
    )
    assert status == 429
    assert headers["Retry-After"] == "7"
    assert json.loads(body) == {"ok": False, "error": "ratelimited"}
    # The fault was used up: the next call goes through.
    assert client.chat_postMessage(channel="C1", text="x")["ok"] is True


def test_server_error_without_retry_handler_raises(fake: FakeSlack, client: WebClient) -> None:
    fake.fail_next("chat.postMessage", status=503, times=2)
    for _ in range(2):
        with pytest.raises(SlackApiError) as excinfo:
            client.chat_postMessage(channel="C1", text="lost")
        assert excinfo.value.response.status_code == 503
    assert client.chat_postMessage(channel="C1", text="kept")["ok"] is True
    assert [c.status for c in fake.calls_to("chat.postMessage")] == [503, 503, 200]
    assert [m["text"] for m in fake.messages("C1")] == ["kept"]


def test_fault_can_be_a_plain_slack_error(fake: FakeSlack, client: WebClient) -> None:
    fake.fail_next("users.info", status=200, error="user_not_found")
    with pytest.raises(SlackApiError) as excinfo:
        client.users_info(user="U1")
    assert excinfo.value.response["error"] == "user_not_found"
    assert client.users_info(user="U1")["ok"] is True


def test_fault_only_hits_its_method(fake: FakeSlack, client: WebClient) -> None:
    fake.fail_next("chat.update", status=500)
    assert client.chat_postMessage(channel="C1", text="x")["ok"] is True
    with pytest.raises(SlackApiError):
        client.chat_update(channel="C1", ts=fake.messages("C1")[0]["ts"], text="y")


def test_fail_next_rejects_nonsense() -> None:
    fake = FakeSlack()
    with pytest.raises(ValueError):
        fake.fail_next("chat.postMesage")
    with pytest.raises(ValueError):
        fake.fail_next("chat.postMessage", status=404)
    with pytest.raises(ValueError):
        fake.fail_next("chat.postMessage", status=200)
    with pytest.raises(ValueError):
        fake.fail_next("chat.postMessage", times=0)


# --------------------------------------------------------------------------- response URLs


def test_response_url_posts_are_recorded_ephemeral_by_default(fake: FakeSlack) -> None:
    url = fake.new_response_url(channel="C1", user="U0DOC00001")
    assert url.startswith(f"{fake.base_url}/response/")

    result = Respond(response_url=url)(text="Grade 2 CRS", blocks=[section("Grade 2")])

    assert result.status_code == 200 and result.body == "ok"
    [call] = fake.calls_to(RESPONSE_URL_METHOD)
    assert call.params["text"] == "Grade 2 CRS"
    assert call.params["blocks"] == [section("Grade 2")]
    assert call.response["ephemeral"] is True and call.response["user"] == "U0DOC00001"
    assert fake.messages("C1") == []
    assert [m["text"] for m in fake.ephemerals("C1", user="U0DOC00001")] == ["Grade 2 CRS"]


def test_in_channel_response_becomes_a_channel_message(fake: FakeSlack) -> None:
    url = fake.new_response_url(channel="C1", user="U0DOC00001")
    Respond(response_url=url)(text="Shared grade", response_type="in_channel")
    [message] = fake.messages("C1")
    assert message["text"] == "Shared grade"
    assert fake.calls_to(RESPONSE_URL_METHOD)[0].params["response_type"] == "in_channel"
    assert fake.ephemerals() == []


def test_replace_and_delete_original_act_on_the_clicked_message(fake: FakeSlack, client: WebClient) -> None:
    posted = client.chat_postMessage(channel="C1", text="Confirm grade?")
    url = fake.new_response_url(channel="C1", user="U0DOC00001", message_ts=posted["ts"])
    respond = Respond(response_url=url)

    respond(text="Confirmed: grade 2", replace_original=True)
    [message] = fake.messages("C1")
    assert (message["ts"], message["text"]) == (posted["ts"], "Confirmed: grade 2")
    assert fake.calls_to(RESPONSE_URL_METHOD)[-1].params["replace_original"] is True

    respond(delete_original=True)
    assert fake.messages("C1") == []
    assert fake.calls_to(RESPONSE_URL_METHOD)[-1].response["action"] == "deleted"


def test_replace_original_without_a_clicked_message_replaces_the_first_reply(fake: FakeSlack) -> None:
    respond = Respond(response_url=fake.new_response_url(channel="C1", user="U1"))
    respond(text="Working…")
    respond(text="Grade 1", replace_original=True)
    assert [m["text"] for m in fake.ephemerals("C1")] == ["Grade 1"]


def test_response_url_limits_match_slack(fake: FakeSlack) -> None:
    url = fake.new_response_url(channel="C1", user="U1")
    for n in range(5):
        assert Respond(response_url=url)(text=str(n)).status_code == 200
    sixth = Respond(response_url=url)(text="too many")
    assert (sixth.status_code, sixth.body) == (404, "used_url")
    assert fake.calls_to(RESPONSE_URL_METHOD)[-1].status == 404

    unknown = Respond(response_url=f"{fake.base_url}/response/nope")(text="x")
    assert unknown.status_code == 404


def test_response_url_expires_after_thirty_minutes() -> None:
    now = [1_800_000_000.0]
    with FakeSlack(clock=lambda: now[0]) as fake:
        url = fake.new_response_url(channel="C1", user="U1")
        now[0] += 29 * 60
        assert Respond(response_url=url)(text="in time").status_code == 200
        now[0] += 2 * 60
        late = Respond(response_url=url)(text="too late")
        assert (late.status_code, late.body) == (404, "expired_url")
        assert [m["text"] for m in fake.ephemerals()] == ["in time"]


def test_response_url_can_be_made_to_fail(fake: FakeSlack) -> None:
    fake.fail_next(RESPONSE_URL_METHOD, status=500)
    url = fake.new_response_url(channel="C1", user="U1")
    assert Respond(response_url=url)(text="x").status_code == 500
    assert Respond(response_url=url)(text="y").status_code == 200
    assert [m["text"] for m in fake.ephemerals()] == ["y"]


# --------------------------------------------------------------------------- waiting, listeners, reset


def test_wait_for_returns_a_call_made_from_another_thread(fake: FakeSlack) -> None:
    def later() -> None:
        time.sleep(0.2)
        WebClient(token=TOKEN, base_url=fake.api_url).chat_postMessage(channel="C1", text="late")

    threading.Thread(target=later).start()
    started = time.monotonic()
    call = fake.wait_for("chat.postMessage", timeout=5)
    assert isinstance(call, RecordedCall)
    assert call.params["text"] == "late"
    assert time.monotonic() - started < 4


def test_wait_for_by_method_skips_failed_calls(fake: FakeSlack) -> None:
    fake.fail_next("chat.postMessage", status=429, retry_after=0)
    client = WebClient(
        token=TOKEN, base_url=fake.api_url, retry_handlers=[RateLimitErrorRetryHandler()]
    )
    client.chat_postMessage(channel="C1", text="x")
    assert fake.wait_for("chat.postMessage", timeout=1).status == 200
    assert fake.wait_for(lambda c: c.status == 429, timeout=1).response["error"] == "ratelimited"


def test_wait_for_with_after_ignores_earlier_calls(fake: FakeSlack, client: WebClient) -> None:
    client.chat_postMessage(channel="C1", text="old")
    mark = len(fake.calls)
    with pytest.raises(TimeoutError):
        fake.wait_for("chat.postMessage", timeout=0.2, after=mark)
    client.chat_postMessage(channel="C1", text="new")
    assert fake.wait_for("chat.postMessage", timeout=1, after=mark).params["text"] == "new"


def test_wait_for_times_out_with_a_clear_error(fake: FakeSlack, client: WebClient) -> None:
    client.auth_test()
    started = time.monotonic()
    with pytest.raises(TimeoutError) as excinfo:
        fake.wait_for("views.open", timeout=0.3)
    elapsed = time.monotonic() - started
    assert 0.25 <= elapsed < 2
    message = str(excinfo.value)
    assert "'views.open'" in message and "0.3s" in message and "auth.test=200" in message


def test_subscribers_see_successful_calls_and_cannot_break_the_server(
    fake: FakeSlack, client: WebClient, caplog: pytest.LogCaptureFixture
) -> None:
    seen: list[RecordedCall] = []

    def broken(call: RecordedCall) -> None:
        raise RuntimeError("console crashed")

    fake.subscribe(broken)
    unsubscribe = fake.subscribe(seen.append)
    fake.fail_next("chat.postMessage", status=503)
    with pytest.raises(SlackApiError):
        client.chat_postMessage(channel="C1", text="failed")
    client.chat_postMessage(channel="C1", text="posted")
    Respond(response_url=fake.new_response_url(channel="C1", user="U1"))(text="eph")

    assert [(c.method, c.status) for c in seen] == [("chat.postMessage", 200), (RESPONSE_URL_METHOD, 200)]
    assert seen[0].params["text"] == "posted"
    assert "console crashed" in caplog.text
    unsubscribe()
    client.chat_postMessage(channel="C1", text="unheard")
    assert len(seen) == 2


def test_reset_forgets_state_but_keeps_ts_unique(fake: FakeSlack, client: WebClient) -> None:
    first = client.chat_postMessage(channel="C1", text="before")
    fake.fail_next("chat.postMessage", status=503)
    fake.reset()
    assert fake.calls == [] and fake.messages("C1") == []
    second = client.chat_postMessage(channel="C1", text="after")  # the fault was forgotten too
    assert float(second["ts"]) > float(first["ts"])
    assert [c.method for c in fake.calls] == ["chat.postMessage"]


# --------------------------------------------------------------------------- with Bolt


def test_a_real_bolt_app_can_run_against_the_fake(fake: FakeSlack) -> None:
    from urllib.parse import urlencode

    from slack_bolt import App, BoltRequest

    app = App(
        client=WebClient(token=TOKEN, base_url=fake.api_url),
        signing_secret="unused",
        request_verification_enabled=False,
        process_before_response=True,  # run the listener inside dispatch(), not on a pool thread
    )

    @app.command("/crs")
    def crs(ack, respond, say, command) -> None:  # type: ignore[no-untyped-def]
        ack()
        respond(text=f"private: {command['text']}")
        say(text="public summary")

    body = urlencode(
        {
            "command": "/crs",
            "text": "temp=39",
            "team_id": fake.team_id,
            "channel_id": "C1",
            "user_id": "U0DOC00001",
            "trigger_id": fake.new_trigger_id(),
            "response_url": fake.new_response_url(channel="C1", user="U0DOC00001"),
        }
    )
    response = app.dispatch(
        BoltRequest(body=body, headers={"content-type": ["application/x-www-form-urlencoded"]})
    )

    assert response.status == 200
    assert fake.wait_for("auth.test", timeout=1).response["user_id"] == fake.bot_user_id
    assert [m["text"] for m in fake.ephemerals("C1", user="U0DOC00001")] == ["private: temp=39"]
    assert [m["text"] for m in fake.messages("C1")] == ["public summary"]
