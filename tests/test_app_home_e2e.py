"""App Home through the fake, against a real `crsbot serve`: opening the tab publishes the open
episodes of the viewer's channels (label, current and worst grade, next reminder as a Slack date
token), each channel's on-call chain and the rulebooks in force; a resolve, a reminder the engine
posts and an "I'm on it" on it each republish it."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from bot.clock import SystemClock
from bot.rulebooks import default_rulebooks
from bot.storage.db import make_engine
from bot.storage.kinds import ReminderKind
from bot.storage.store import Store
from bot.testing.slack_fake import RecordedCall
from messages.ids import ActionId
from tests.slack_support import RESPONSE_URL_METHOD, Served

VIEWER = "U0VIEWER1"
GRADE_3 = "temp=39 sbp=85 pressor=1"


@pytest.fixture(scope="module")
def bot(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    with Served.running(tmp_path_factory.mktemp("home")) as served:
        served.fake.add_member("C0HOME0001", VIEWER, "U0CLINIC01", served.fake.bot_user_id)
        served.fake.add_member("C0HOME0002", "U0CLINIC01", served.fake.bot_user_id)  # not the viewer's
        yield served


def slash(bot: Served, text: str, channel: str) -> RecordedCall:
    mark = bot.mark()
    assert bot.slash(text, channel=channel).status == 200

    def answered(call: RecordedCall) -> bool:
        return (call.method in ("chat.postMessage", RESPONSE_URL_METHOD)
                and channel in (call.params.get("channel"), call.response.get("channel")))
    return bot.wait_for(answered, after=mark)


def published_for(user: str) -> Any:
    def predicate(call: RecordedCall) -> bool:
        return call.ok and call.method == "views.publish" and call.params.get("user_id") == user
    predicate.__name__ = f"views.publish for {user}"
    return predicate


def home_text(call: RecordedCall) -> str:
    return json.dumps(call.params["view"], ensure_ascii=False)


def open_home(bot: Served, user: str) -> RecordedCall:
    mark = bot.mark()
    response = bot.post(json.dumps(bot.fake.app_home_opened(user)), content_type="application/json")
    assert response.status == 200
    return bot.wait_for(published_for(user), after=mark)


def test_home_shows_the_viewers_episodes_and_updates_after_a_resolve(bot: Served) -> None:
    slash(bot, f"{GRADE_3} patient=bed51", "C0HOME0001")
    slash(bot, "temp=38.5 patient=bed52", "C0HOME0001")
    slash(bot, f"{GRADE_3} patient=bed53", "C0HOME0002")
    slash(bot, "oncall <@U0ONCALL1|jane> <@U0ONCALL2|omar> secondary=10m channel=20m repeat=30m", "C0HOME0001")
    status = slash(bot, "status", "C0HOME0001")
    status_chain = re.search(r"On-call chain: [^\n]*", status.params["text"])
    assert status_chain is not None, status.params

    first = open_home(bot, VIEWER)
    view = first.params["view"]
    assert view["type"] == "home" and len(view["blocks"]) <= 100
    text = home_text(first)
    channel_block = next(b["text"]["text"] for b in view["blocks"] if "<#C0HOME0001>" in json.dumps(b))
    # The whole chain, in the words `/crs status` uses: primary, secondary and its delay, the channel
    # step and its delay, the repeat.
    assert status_chain.group(0) in channel_block
    assert ("<@U0ONCALL1>, then <@U0ONCALL2> after 10 min, then the channel 20 min later, "
            "repeating every 30 min") in channel_block
    assert re.search(r"\*bed51\* \(.*?\): current grade 3, worst 3; next reminder <!date\^\d+\^", channel_block)
    assert re.search(r"\*bed52\* \(.*?\): current grade 1, worst 1; next reminder <!date\^\d+\^", channel_block)
    assert "bed53" not in text and "C0HOME0002" not in text  # not a channel the viewer is in
    for book in default_rulebooks().values():
        assert f"{book.rulebook.id} v{book.rulebook.version}" in text
    assert bot.fake.home(VIEWER)["blocks"] == view["blocks"]

    mark = bot.mark()
    slash(bot, "resolve patient=bed51", "C0HOME0001")
    updated = bot.wait_for(published_for(VIEWER), after=mark)
    text = home_text(updated)
    assert "bed51" not in text and "bed52" in text


def next_reminder(call: RecordedCall, label: str) -> int:
    """The epoch of `label`'s "next reminder" date token in a published tab."""
    found = re.search(rf"\*{label}\* \(.*?\): [^\n]*?next reminder <!date\^(\d+)\^", home_text(call))
    assert found is not None, home_text(call)
    return int(found.group(1))


def test_a_reminder_the_engine_posts_and_its_ack_republish_the_home(bot: Served) -> None:
    channel = "C0HOME0001"
    slash(bot, f"{GRADE_3} patient=bed56", channel)
    first = next_reminder(open_home(bot, VIEWER), "bed56")

    # The reminder falls due (booked again a minute ago, as if its hour had passed): the engine posts it,
    # with no request to the bot.
    store = Store(make_engine(f"sqlite:///{bot.data_dir / 'crsbot.sqlite3'}"), SystemClock())
    episode = store.find_open_episode(channel, "bed56")
    assert episode is not None
    mark = bot.mark()
    store.reschedule(episode.id, (ReminderKind.REASSESS,), ReminderKind.REASSESS,
                     SystemClock().now() - timedelta(minutes=1))
    posted = bot.wait_for(lambda c: c.ok and c.method == "chat.postMessage" and c.params.get("channel") == channel
                          and str(c.params.get("text", "")).startswith(":alarm_clock:")
                          and "*bed56*" in str(c.params.get("text")), after=mark)
    # views.publish again, after the post, showing what the post booked next (the chain's escalation).
    refreshed = bot.wait_for(published_for(VIEWER), after=bot.fake.calls.index(posted))
    escalation_at = next_reminder(refreshed, "bed56")
    assert escalation_at != first
    assert escalation_at == int(store.next_due([episode.id])[episode.id].timestamp())

    # "I'm on it" stops the escalation: the tab shows the next reassessment again.
    reminder = next(m for m in bot.fake.messages(channel) if m["ts"] == posted.response["ts"])
    mark = bot.mark()
    assert bot.click(reminder, ActionId.ACK.value, channel=channel).status == 200
    acked = bot.wait_for(published_for(VIEWER), after=mark)
    assert next_reminder(acked, "bed56") == int(store.next_due([episode.id])[episode.id].timestamp()) != escalation_at


def test_changes_in_other_channels_do_not_republish(bot: Served) -> None:
    open_home(bot, VIEWER)
    mark = bot.mark()
    slash(bot, f"{GRADE_3} patient=bed54", "C0HOME0002")  # the viewer is not in this channel
    slash(bot, f"{GRADE_3} patient=bed55", "C0HOME0001")
    bot.wait_for(published_for(VIEWER), after=mark)
    publishes = [c for c in bot.calls_since(mark, "views.publish") if c.params.get("user_id") == VIEWER]
    assert len(publishes) == 1 and "bed55" in home_text(publishes[0]) and "bed54" not in home_text(publishes[0])


def test_a_viewer_without_episodes_sees_that_and_the_rulebooks(bot: Served) -> None:
    call = open_home(bot, "U0NOBODY01")
    text = home_text(call)
    assert "No open CRS episodes in the channels you belong to." in text
    assert "Rulebooks in force" in text
