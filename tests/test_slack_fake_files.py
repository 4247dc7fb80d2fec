"""The fake's external file upload behaves as Slack documents it: files.getUploadURLExternal hands out an
upload URL and a file id, the bytes are POSTed to the URL (raw or multipart), and files.completeUploadExternal
shares the file, in a thread when asked; completing a file whose bytes never arrived fails."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.testing.slack_fake import UPLOAD_URL_METHOD, FakeSlack

PNG = b"\x89PNG\r\n\x1a\n" + b"\0" * 64


@pytest.fixture
def fake() -> Iterator[FakeSlack]:
    with FakeSlack() as running:
        yield running


@pytest.fixture
def client(fake: FakeSlack) -> WebClient:
    return WebClient(token="xoxb-test", base_url=fake.api_url)


def test_files_upload_v2_shares_the_file_in_the_thread(fake: FakeSlack, client: WebClient) -> None:
    parent = client.chat_postMessage(channel="C1", text="episode")["ts"]
    response = client.files_upload_v2(channel="C1", thread_ts=parent, filename="t.png", content=PNG,
                                      title="Timeline", alt_txt="a picture", initial_comment="here")
    file_id = response["file"]["id"]
    assert fake.file_content(file_id) == PNG
    (message,) = fake.messages("C1", thread_ts=parent)
    assert message["text"] == "here" and message["files"][0]["id"] == file_id
    assert message["files"][0]["alt_txt"] == "a picture" and message["files"][0]["title"] == "Timeline"
    assert [c.method for c in fake.calls][1:] == ["files.getUploadURLExternal", UPLOAD_URL_METHOD,
                                                  "files.completeUploadExternal"]
    assert [f["id"] for f in fake.files()] == [file_id]


def test_complete_fails_when_the_bytes_were_never_uploaded(fake: FakeSlack, client: WebClient) -> None:
    got = client.files_getUploadURLExternal(filename="t.png", length=len(PNG))
    with pytest.raises(SlackApiError) as error:
        client.files_completeUploadExternal(files=[{"id": got["file_id"]}], channel_id="C1")
    assert error.value.response["error"] == "file_not_found"
    assert fake.messages("C1") == []


def test_unknown_file_and_reused_upload_url_are_refused(fake: FakeSlack, client: WebClient) -> None:
    with pytest.raises(SlackApiError) as error:
        client.files_completeUploadExternal(files=[{"id": "F0NOPE"}], channel_id="C1")
    assert error.value.response["error"] == "file_not_found"
    got = client.files_getUploadURLExternal(filename="t.png", length=len(PNG))
    request = urllib.request.Request(got["upload_url"], data=PNG, method="POST")
    with urllib.request.urlopen(request) as first:
        assert first.status == 200 and first.read() == f"OK - {len(PNG)}".encode()
    with pytest.raises(urllib.error.HTTPError) as again:
        urllib.request.urlopen(urllib.request.Request(got["upload_url"], data=PNG, method="POST"))
    assert again.value.code == 404


def test_multipart_upload_is_read_like_raw_bytes(fake: FakeSlack, client: WebClient) -> None:
    got = client.files_getUploadURLExternal(filename="t.png", length=len(PNG))
    boundary = "crsbotboundary"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"filename\"; filename=\"t.png\"\r\n"
            "Content-Type: image/png\r\n\r\n").encode() + PNG + f"\r\n--{boundary}--\r\n".encode()
    request = urllib.request.Request(got["upload_url"], data=body, method="POST",
                                     headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
    urllib.request.urlopen(request).close()
    assert fake.file_content(got["file_id"]) == PNG


@pytest.mark.parametrize("kwargs, error", [
    ({"filename": "t.png", "length": 0}, "missing_argument"),
    ({"filename": "t.png", "length": 10, "alt_txt": "x" * 1001}, "alt_txt_too_large"),
])
def test_get_upload_url_checks_its_arguments(client: WebClient, kwargs: dict[str, object], error: str) -> None:
    with pytest.raises(SlackApiError) as raised:
        client.files_getUploadURLExternal(**kwargs)  # type: ignore[arg-type]
    assert raised.value.response["error"] == error


def test_thread_ts_must_name_a_message_in_the_channel(fake: FakeSlack, client: WebClient) -> None:
    with pytest.raises(SlackApiError) as raised:
        client.files_upload_v2(channel="C1", thread_ts="1.000001", filename="t.png", content=PNG, title="t")
    assert raised.value.response["error"] == "invalid_thread_ts"


def test_uploading_needs_files_write() -> None:
    with FakeSlack(scopes={"chat:write"}) as fake:
        client = WebClient(token="xoxb-test", base_url=fake.api_url)
        with pytest.raises(SlackApiError) as raised:
            client.files_getUploadURLExternal(filename="t.png", length=3)
        assert raised.value.response["error"] == "missing_scope"
        assert json.dumps(raised.value.response.data).count("files:write") == 1
