"""The episode picture end to end: a real `crsbot serve` uploads it through the fake's external-upload flow
(files.getUploadURLExternal -> bytes to the upload URL -> files.completeUploadExternal) into the episode thread,
from `/crs history` and from the Timeline button."""

from __future__ import annotations

import io
import itertools
import json
from typing import Any

from PIL import Image

from bot.testing.slack_fake import UPLOAD_URL_METHOD, RecordedCall
from messages.ids import ActionId
from messages.timeline import SIZE_PX
from tests.slack_support import Served, response_to, served

bot = served("bot")
_ids = itertools.count(1)


def new_channel() -> str:
    return f"C0PIC{next(_ids):04d}"


def completed_in(channel: str) -> Any:
    def predicate(call: RecordedCall) -> bool:
        return call.method == "files.completeUploadExternal" and call.params.get("channel_id") == channel
    predicate.__name__ = f"files.completeUploadExternal for {channel}"
    return predicate


def start_episode(bot: Served, channel: str, label: str) -> dict[str, Any]:
    mark = bot.mark()
    bot.slash(f"temp=39.4 sbp=84 fluids=yes o2=2 device=nc patient={label}", channel=channel)
    bot.wait_for(lambda c: c.method == "chat.postMessage" and c.params.get("channel") == channel, after=mark)
    mark = bot.mark()
    bot.slash(f"temp=37.2 toci=yes pressor=1 sbp=88 o2=6 device=nc patient={label}", channel=channel)
    bot.wait_for(lambda c: c.method == "chat.postMessage" and c.params.get("channel") == channel, after=mark)
    return bot.fake.messages(channel)[0]


def uploaded_picture(bot: Served, channel: str, thread_ts: str) -> tuple[dict[str, Any], Image.Image]:
    """The file message in the episode thread, and its image as the fake received it."""
    shared = [m for m in bot.fake.messages(channel, thread_ts=thread_ts) if m.get("files")]
    assert shared, "the picture must appear in the episode thread"
    file = shared[-1]["files"][0]
    content = bot.fake.file_content(file["id"])
    assert content is not None
    image = Image.open(io.BytesIO(content))
    image.load()
    return shared[-1], image


def test_history_uploads_the_picture_into_the_episode_thread(bot: Served) -> None:
    channel = new_channel()
    first = start_episode(bot, channel, "bed41")
    mark = bot.mark()
    assert bot.slash("history patient=bed41", channel=channel).status == 200
    complete = bot.wait_for(completed_in(channel), after=mark, timeout=30)
    assert complete.ok, complete.response
    methods = [c.method for c in bot.calls_since(mark) if c.method.startswith("files.") or c.method ==
               UPLOAD_URL_METHOD]
    assert methods == ["files.getUploadURLExternal", UPLOAD_URL_METHOD, "files.completeUploadExternal"]
    get_url = next(c for c in bot.calls_since(mark) if c.method == "files.getUploadURLExternal")
    assert "patient bed41" in get_url.params["alt_txt"] and "worst 3" in get_url.params["alt_txt"]
    assert complete.params["thread_ts"] == first["ts"]

    message, image = uploaded_picture(bot, channel, first["ts"])
    assert image.format == "PNG" and image.size == SIZE_PX
    assert message["files"][0]["size"] == int(get_url.params["length"])
    assert message["files"][0]["mimetype"] == "image/png"
    assert "bed41" in message["text"] and "clinical judgment" in message["text"]

    reply = bot.wait_for(response_to(channel), after=mark)
    text = json.dumps(reply.params)
    assert "History for bed41" in text and "CRS grade 2" in text, "the text history is kept"
    assert "posted in the episode's thread" in text


def test_timeline_button_uploads_the_picture(bot: Served) -> None:
    channel = new_channel()
    first = start_episode(bot, channel, "bed42")
    blocks = [*first.get("blocks", []), *(b for a in first.get("attachments", []) for b in a.get("blocks", []))]
    buttons = [e["action_id"] for b in blocks if b["type"] == "actions" for e in b["elements"]]
    assert ActionId.TIMELINE.value in buttons
    mark = bot.mark()
    assert bot.click(first, ActionId.TIMELINE.value, channel=channel, user="U0NURSE01").status == 200
    complete = bot.wait_for(completed_in(channel), after=mark, timeout=30)
    assert complete.ok and complete.params["thread_ts"] == first["ts"]
    _, image = uploaded_picture(bot, channel, first["ts"])
    assert image.size == SIZE_PX


def test_a_failed_upload_still_gives_the_text_history(bot: Served) -> None:
    channel = new_channel()
    start_episode(bot, channel, "bed43")
    bot.fake.fail_next("files.completeUploadExternal", status=200, error="not_in_channel")
    mark = bot.mark()
    bot.slash("history patient=bed43", channel=channel)
    reply = bot.wait_for(response_to(channel), after=mark, timeout=30)
    text = json.dumps(reply.params)
    assert "History for bed43" in text and "could not be uploaded (not_in_channel)" in text
