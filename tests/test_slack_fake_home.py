"""The fake's App Home surface behaves as Slack documents it: views.publish keeps one home view per
user (type "home" only, hash checked), users.conversations lists a user's channels (private ones
only where the bot is a member too), and app_home_opened is shaped like Slack's event."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.testing.slack_fake import FakeSlack


@pytest.fixture()
def fake() -> Iterator[FakeSlack]:
    with FakeSlack() as running:
        yield running


def client(fake: FakeSlack) -> WebClient:
    return WebClient(token="xoxb-local", base_url=fake.api_url)


HOME = {"type": "home", "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "hi"}}]}


def test_views_publish_keeps_one_home_per_user_and_checks_the_hash(fake: FakeSlack) -> None:
    first = client(fake).views_publish(user_id="U1", view=HOME)["view"]
    assert fake.home("U1")["blocks"] == HOME["blocks"] and fake.home("U2") is None
    second = client(fake).views_publish(user_id="U1", view=HOME, hash=first["hash"])["view"]
    assert second["id"] == first["id"] and second["hash"] != first["hash"]
    with pytest.raises(SlackApiError, match="hash_conflict"):
        client(fake).views_publish(user_id="U1", view=HOME, hash=first["hash"])
    with pytest.raises(SlackApiError, match="invalid_arguments"):
        client(fake).views_publish(user_id="U1", view={**HOME, "type": "modal"})


def test_users_conversations_lists_a_users_channels(fake: FakeSlack) -> None:
    fake.add_member("C0PUBLIC1", "U1", "U2")
    fake.add_member("C0PUBLIC2", "U2")
    fake.add_member("G0SECRET1", "U1")  # the bot is not a member: not visible to it
    fake.add_member("G0SHARED1", "U1", fake.bot_user_id)
    ids = [c["id"] for c in client(fake).users_conversations(
        user="U1", types="public_channel,private_channel")["channels"]]
    assert ids == ["C0PUBLIC1", "G0SHARED1"]
    assert [c["id"] for c in client(fake).users_conversations(user="U1")["channels"]] == ["C0PUBLIC1"]
    page = client(fake).users_conversations(user="U2", limit=1)
    assert len(page["channels"]) == 1 and page["response_metadata"]["next_cursor"]


def test_app_home_opened_event_carries_the_published_view(fake: FakeSlack) -> None:
    payload = fake.app_home_opened("U1")
    assert payload["type"] == "event_callback" and payload["event"]["type"] == "app_home_opened"
    assert payload["event"]["tab"] == "home" and "view" not in payload["event"]
    client(fake).views_publish(user_id="U1", view=HOME)
    assert fake.app_home_opened("U1")["event"]["view"]["type"] == "home"
