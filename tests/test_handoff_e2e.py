"""The scheduled handoff as users meet it: in `crsbot console` (moving the bot's clock past the configured time)
and with two real `crsbot serve` replicas on one PostgreSQL database, where it must be posted exactly once per
channel at the configured time, listing the right patients and their next-dose lines."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from bot.clock import SystemClock
from bot.storage import Store
from bot.storage.db import DEFAULT_SQLITE_FILENAME, make_engine
from bot.storage.handoffs import HandoffLog
from bot.testing.slack_fake import RESPONSE_URL_METHOD, FakeSlack, RecordedCall
from tests.db_fixtures import pg_admin_engine, pg_database_factory  # noqa: F401  (fixtures)
from tests.slack_support import Served, response_to

CRSBOT = shutil.which("crsbot", path=os.path.dirname(sys.executable))


def is_handoff(channel: str | None = None) -> Callable[[RecordedCall], bool]:
    def predicate(call: RecordedCall) -> bool:
        return (call.method == "chat.postMessage" and call.ok and str(call.params.get("text", "")).startswith(
            "CRS handoff") and (channel is None or call.params.get("channel") == channel))
    predicate.__name__ = f"handoff post to {channel or 'any channel'}"
    return predicate


def clock_time(moment: datetime, zone: ZoneInfo = ZoneInfo("UTC")) -> str:
    """The time of day of `moment` where the site is, as CRSBOT_HANDOFF_TIMES takes it."""
    return moment.astimezone(zone).strftime("%H:%M:%S")


@pytest.mark.parametrize("zone", ["UTC", "Asia/Kolkata"])
def test_console_posts_the_scheduled_handoff_once_at_the_configured_time(tmp_path: Path, zone: str) -> None:
    """CRSBOT_HANDOFF_TIMES is read in the site's time zone (CRSBOT_TIMEZONE): 30 min from now there. Read as
    UTC, the Kolkata time would be 5 h 30 min off and nothing would come in the minutes the clock is moved."""
    assert CRSBOT, "the crsbot console script is not installed in this environment"
    slot = datetime.now(timezone.utc) + timedelta(minutes=30)
    lines = ["/crs temp=39 sbp=85 pressor=1 patient=bed7",
             "/crs temp=38.6 o2=2 device=nc sbp=110 patient=bed8",
             "/crs resolve patient=bed8",
             "advance 31m", "advance 1m", "advance 5m", "quit"]
    result = subprocess.run([CRSBOT, "console", "--data-dir", str(tmp_path)], input="\n".join(lines) + "\n",
                            capture_output=True, text=True, timeout=180,
                            env={**os.environ, "CRSBOT_LOG_LEVEL": "WARNING",
                                 "CRSBOT_HANDOFF_TIMES": clock_time(slot, ZoneInfo(zone)), "CRSBOT_TIMEZONE": zone})
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "Traceback" not in out + result.stderr
    assert out.count("CRS handoff: 1 open episode(s), 1 resolved") == 1, out
    handoff = out[out.index("CRS handoff: 1 open episode(s)"):]
    before = out[:out.index("CRS handoff: 1 open episode(s)")]
    assert "> advance 31m" in before and "> advance 1m" not in before, "posted when the clock passed the time"
    assert "*bed7* · IV · CRS 3, worst 3" in handoff
    assert "admitted to hospital for 24 hours. [NCCN-ENGAGE]" in handoff
    assert "*bed8* (IV, worst 2) resolved" in handoff and "next dose not before" in handoff


@pytest.fixture
def fake() -> Iterator[FakeSlack]:
    with FakeSlack() as running:
        yield running


def handoff_posts(fake: FakeSlack, channel: str, after: int) -> list[RecordedCall]:
    return [c for c in fake.calls[after:] if is_handoff(channel)(c)]


def test_typed_handoff_posts_once_in_the_channel_and_the_next_one_lists_what_resolved_since(
        fake: FakeSlack, tmp_path: Path) -> None:
    """`/crs handoff` typed in Slack: one message in the channel (not a reply only its author sees) with the
    channel's patients and their next-dose lines, logged as a typed handoff (by the user, no slot); the next
    one lists only what was resolved after it."""
    channel = "C0HANDTYPE"
    with Served.running(tmp_path, fake=fake) as bot:
        for text in ("temp=39 sbp=85 pressor=1 patient=bed31", "temp=38.4 sbp=120 pressor=0 o2=ra patient=bed32",
                     "temp=38.6 o2=2 device=nc sbp=110 patient=bed33", "resolve patient=bed33"):
            mark = bot.mark()
            assert bot.slash(text, channel=channel, user="U0DOC").status == 200
            bot.wait_for(lambda c: c.method in ("chat.postMessage", RESPONSE_URL_METHOD), after=mark)

        mark = bot.mark()
        assert bot.slash("handoff", channel=channel, user="U0NIGHT").status == 200
        first = bot.wait_for(is_handoff(channel), after=mark, timeout=20)
        time.sleep(1)  # anything else the command would send
        assert handoff_posts(fake, channel, mark) == [first], "one post"
        assert "thread_ts" not in first.params
        assert not [c for c in bot.calls_since(mark, RESPONSE_URL_METHOD, "chat.postEphemeral")
                    if "CRS handoff" in json.dumps(c.params)], "in the channel, not only to the one who asked"
        text = section_text(first.params)
        row = (r"^\*{}\* · IV · CRS {}, worst {} · assessed \d+ min ago · "
               r"next reassessment <!date\^\d+\^{{time}}\|[^>]*> · next dose \(")
        for label, grade in (("bed31", 3), ("bed32", 1)):
            assert re.search(row.format(label, grade, grade), text, re.M), text
        assert text.index("*bed31*") < text.index("*bed32*"), "most severe first"
        assert "admitted to hospital for 24 hours." in text  # bed31, grade 3 (rulebook)
        assert "only once CRS has been resolved for at least 72 hours." in text  # bed32, grade 1 (rulebook)
        assert "*bed33* (IV, worst 2) resolved" in text and "(72 h symptom-free)" in text
        assert "Asked for <!date^" in text and "*2* open · 1 resolved · on-call" in text

        engine = make_engine(f"sqlite:///{bot.data_dir / DEFAULT_SQLITE_FILENAME}")
        try:
            log = HandoffLog(engine, SystemClock())
            ((slot, posted_at, ts),) = log.posts(channel)
            assert slot is None and posted_at is not None and ts == first.response["ts"]
            (audit,) = [a for a in Store(engine, SystemClock()).iter_audit() if a.action == "handoff"]
            assert audit.user_id == "U0NIGHT" and audit.detail["slot"] is None
            assert audit.detail["patients"] == ["bed31", "bed32"] and audit.detail["message_ts"] == ts

            mark = bot.mark()
            assert bot.slash("resolve patient=bed32", channel=channel, user="U0DOC").status == 200
            bot.wait_for(response_to(channel), after=mark)
            mark = bot.mark()
            assert bot.slash("handoff", channel=channel, user="U0NIGHT").status == 200
            second = bot.wait_for(is_handoff(channel), after=mark, timeout=20)
            text = section_text(second.params)
            since = f"1 resolved since <!date^{int(posted_at.timestamp())}^"
            assert since in text and f"*Resolved since <!date^{int(posted_at.timestamp())}^" in text, text
            assert "*bed32* (IV, worst 1) resolved" in text
            assert "bed33" not in text, "resolved before the first handoff: listed there, not again"
            assert [row[0] for row in log.posts(channel)] == [None, None]
        finally:
            engine.dispose()


@pytest.mark.postgres
def test_two_replicas_post_the_scheduled_handoff_once(pg_database_factory: Callable[[], str],  # noqa: F811
                                                      fake: FakeSlack, tmp_path: Path) -> None:
    url = pg_database_factory()
    slot = (datetime.now(timezone.utc) + timedelta(seconds=75)).replace(microsecond=0)
    env = {"DATABASE_URL": url, "CRSBOT_TICK_SECONDS": "0.2", "CRSBOT_HANDOFF_TIMES": clock_time(slot),
           "CRSBOT_TIMEZONE": "UTC"}
    wards = {"C0HANDA01": ("bed21", "bed22"), "C0HANDA02": ("bed23",)}
    with Served.running(tmp_path / "a", env=env, fake=fake) as replica_a, \
            Served.running(tmp_path / "b", env=env, fake=fake) as replica_b:
        mark = len(fake.calls)
        typed = [("C0HANDA01", "temp=39 sbp=85 pressor=1 patient=bed21", replica_a),
                 ("C0HANDA01", "temp=38.6 o2=2 device=nc sbp=110 patient=bed22", replica_b),
                 ("C0HANDA02", "temp=38.4 sbp=120 pressor=0 o2=ra product=velo patient=bed23", replica_a)]
        for channel, text, replica in typed:
            assert replica.slash(text, channel=channel).status == 200
        deadline = time.monotonic() + 30
        while sum(c.method == "chat.postMessage" and c.ok for c in fake.calls[mark:]) < len(typed):
            assert time.monotonic() < deadline, "the three assessments were not posted"
            time.sleep(0.1)
        assert datetime.now(timezone.utc) < slot, "the machine was too slow to set up before the handoff time"
        for channel in wards:
            fake.wait_for(is_handoff(channel), after=mark, timeout=(slot - datetime.now(timezone.utc)).total_seconds()
                          + 20)
        time.sleep(3)  # both replicas keep ticking: nothing more may come
        handoffs = [c for c in fake.calls[mark:] if is_handoff()(c)]
    assert sorted(c.params["channel"] for c in handoffs) == sorted(wards), [c.params["channel"] for c in handoffs]
    for call in handoffs:
        posted_at = datetime.fromtimestamp(call.at, timezone.utc)
        assert slot <= posted_at <= slot + timedelta(seconds=10), (slot, posted_at)
        text = section_text(call.params)
        for label in wards[call.params["channel"]]:
            assert f"*{label}*" in text
    one = section_text(next(c.params for c in handoffs if c.params["channel"] == "C0HANDA01"))
    assert "admitted to hospital for 24 hours" in one and "resolved for at least 72 hours" in one
    two = section_text(next(c.params for c in handoffs if c.params["channel"] == "C0HANDA02"))
    assert "Not in this rulebook" in two and "LUNSUMIO VELO USPI section 2" in two
    engine = make_engine(url)
    try:
        log = HandoffLog(engine, SystemClock())
        for channel in wards:
            (row,) = log.posts(channel)
            assert row[0] == slot.isoformat() and row[2] in {c.response["ts"] for c in handoffs}
    finally:
        engine.dispose()


def section_text(params: dict[str, Any]) -> str:
    """The message's words: its sections and the next-dose key under them (no-break spaces read as spaces)."""
    return "\n".join(b["text"]["text"] if b["type"] == "section" else b["elements"][0]["text"]
                     for b in params["blocks"] if b["type"] in ("section", "context")).replace("\u00a0", " ")
