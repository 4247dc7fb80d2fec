"""The escalation chain end to end: a real `crsbot serve` over real HTTP against the Slack fake.

A team sets its chain with `/crs oncall`; an unanswered reminder goes to the primary, then the
secondary, then the channel (@here), and repeats; "I'm on it" stops it and is shown on the message
to everyone. A channel with no chain is told so at its first assessment, and its reminders mention
who ran the assessment. Times in Slack messages are Slack date tokens. Delays are seconds here.
"""

from __future__ import annotations

import re
import time
from typing import Any

from bot.testing.slack_fake import RecordedCall
from messages.ids import ActionId
from tests.slack_support import DEFAULT_USER, Served, served

GRADE_3 = "temp=39 sbp=85 pressor=1"
STEP = 2.0  # seconds between chain steps
INTERVAL = 15  # seconds between reminders: longer than the chain shown, as in real use
chain_bot = served("chain_bot", env={
    "CRSBOT_REASSESS_INTERVALS": ",".join(f"{g}={INTERVAL}s" for g in (1, 2, 3, 4)),
    "CRSBOT_ESCALATE_AFTER": f"{STEP:g}s",
    "CRSBOT_TICK_SECONDS": "0.5",
})
SLACK_DATE = re.compile(r"<!date\^\d+\^\{date_short_pretty\} \{time\}\|[^>]+>")


def posts_in(bot: Served, channel: str, after: int) -> list[RecordedCall]:
    return [c for c in bot.fake.calls[after:] if c.method == "chat.postMessage" and c.ok
            and c.params.get("channel") == channel]


def wait_posts(bot: Served, channel: str, after: int, prefix: str, count: int, timeout: float) -> list[RecordedCall]:
    deadline = time.monotonic() + timeout
    while True:
        found = [c for c in posts_in(bot, channel, after) if str(c.params.get("text", "")).startswith(prefix)]
        if len(found) >= count:
            return found
        if time.monotonic() > deadline:
            raise TimeoutError(f"{len(found)}/{count} posts starting {prefix!r}: "
                               f"{[c.params.get('text', '')[:80] for c in posts_in(bot, channel, after)]}")
        time.sleep(0.05)


def message(bot: Served, channel: str, ts: str) -> dict[str, Any]:
    return next(m for m in bot.fake.messages(channel) if m["ts"] == ts)


def test_chain_primary_secondary_channel_then_ack_stops_it(chain_bot: Served) -> None:
    channel = "C0CHAIN01"
    reply = chain_bot.slash(f"oncall <@U0PRIMARY1|pat> <@U0SECOND01|sam> secondary={STEP:g}s channel={STEP:g}s "
                            f"repeat={STEP:g}s", channel=channel)
    assert reply.status == 200
    mark = chain_bot.mark()
    assert chain_bot.slash(f"{GRADE_3} patient=bed1", channel=channel).status == 200

    (reminder,) = wait_posts(chain_bot, channel, mark, ":alarm_clock:", 1, INTERVAL + 10)
    assert reminder.params["text"].startswith(":alarm_clock: <@U0PRIMARY1>: time to reassess patient *bed1*")
    escalations = wait_posts(chain_bot, channel, mark, ":rotating_light:", 3, 4 * STEP + 6)
    secondary, to_channel, repeat = escalations[:3]
    assert "to the secondary <@U0SECOND01>" in secondary.params["text"]
    assert "to the channel <!here>" in to_channel.params["text"]
    assert "to the channel <!here>" in repeat.params["text"]
    assert secondary.at - reminder.at >= STEP / 2 and to_channel.at - secondary.at >= STEP / 2  # booked from the post
    for call in (secondary, to_channel, repeat):
        assert call.params.get("reply_broadcast") is True  # loud: also shown in the channel
        assert call.params["metadata"]["event_type"] == "crsbot_reminder"

    # "I'm on it" on the latest escalation: recorded on the message for everyone, and the chain stops.
    latest = message(chain_bot, channel, repeat.response["ts"])
    before = chain_bot.mark()
    assert chain_bot.click(latest, ActionId.ACK.value, channel=channel, user="U0NURSE01").status == 200
    update = chain_bot.wait_for(lambda c: c.method == "chat.update" and c.ok
                                and c.params.get("ts") == repeat.response["ts"], after=before)
    assert "<@U0NURSE01> is on it: escalation stopped" in str(update.params["blocks"])
    acked_at = time.time()
    time.sleep(2 * STEP + 1)
    after_ack = [c for c in posts_in(chain_bot, channel, before) if c.at > acked_at
                 and str(c.params.get("text", "")).startswith(":rotating_light:")]
    assert after_ack == [], [c.params["text"][:80] for c in after_ack]


def test_a_channel_without_a_chain_is_prompted_and_reminders_mention_the_assessor(chain_bot: Served) -> None:
    channel = "C0NOCHAIN"
    mark = chain_bot.mark()
    assert chain_bot.slash(f"{GRADE_3} patient=bed2", channel=channel, user="U0ASSESS01").status == 200
    first = chain_bot.wait_for(lambda c: c.method == "chat.postMessage" and c.ok
                               and c.params.get("channel") == channel, after=mark)
    prompt = ":warning: No on-call chain is set in this channel: reminders for this patient will mention <@U0ASSESS01>"
    assert prompt in first.params["text"]  # in the channel post itself, seen by all
    assert any(prompt in str(b.get("text", {}).get("text", "")) for b in first.params["blocks"])
    (reminder,) = wait_posts(chain_bot, channel, mark, ":alarm_clock:", 1, INTERVAL + 10)
    assert reminder.params["text"].startswith(":alarm_clock: <@U0ASSESS01>: time to reassess patient *bed2*")
    # A second assessment of the same episode does not repeat the prompt.
    again = chain_bot.mark()
    assert chain_bot.slash(f"{GRADE_3} patient=bed2", channel=channel, user="U0ASSESS01").status == 200
    chain_bot.wait_for(lambda c: c.method == "chat.postMessage" and c.ok and c.params.get("channel") == channel,
                       after=again)
    time.sleep(0.5)
    assert not [c for c in posts_in(chain_bot, channel, again) if "No on-call chain" in str(c.params.get("text"))]


def test_times_in_slack_use_slack_date_formatting(chain_bot: Served) -> None:
    channel = "C0TIMES01"
    assert chain_bot.slash(f"{GRADE_3} patient=bed3", channel=channel).status == 200
    mark = chain_bot.mark()
    assert chain_bot.slash("status", channel=channel).status == 200
    call = chain_bot.wait_for(lambda c: c.ok and "Open CRS episodes" in str(c.params.get("text", "")), after=mark)
    text = str(call.params["text"])
    assert len(SLACK_DATE.findall(text)) >= 2, text  # opened at, next reminder
    assert " UTC" not in SLACK_DATE.sub("", text), "a bare UTC time outside Slack's date token"
    mark = chain_bot.mark()
    assert chain_bot.slash("history patient=bed3", channel=channel, user=DEFAULT_USER).status == 200
    call = chain_bot.wait_for(lambda c: c.ok and "History for" in str(c.params.get("text", "")), after=mark)
    assert SLACK_DATE.search(str(call.params["text"])), call.params["text"]
