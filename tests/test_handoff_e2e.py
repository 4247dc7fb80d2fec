"""The scheduled handoff as users meet it: in `crsbot console` (moving the bot's clock past the configured time)
and with two real `crsbot serve` replicas on one PostgreSQL database, where it must be posted exactly once per
channel at the configured time, listing the right patients and their next-dose lines."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from bot.clock import SystemClock
from bot.storage.db import make_engine
from bot.storage.handoffs import HandoffLog
from bot.testing.slack_fake import FakeSlack, RecordedCall
from tests.db_fixtures import pg_admin_engine, pg_database_factory  # noqa: F401  (fixtures)
from tests.slack_support import Served

CRSBOT = shutil.which("crsbot", path=os.path.dirname(sys.executable))


def is_handoff(channel: str | None = None) -> Callable[[RecordedCall], bool]:
    def predicate(call: RecordedCall) -> bool:
        return (call.method == "chat.postMessage" and call.ok and str(call.params.get("text", "")).startswith(
            "CRS handoff") and (channel is None or call.params.get("channel") == channel))
    predicate.__name__ = f"handoff post to {channel or 'any channel'}"
    return predicate


def clock_time(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%H:%M:%S")


def test_console_posts_the_scheduled_handoff_once_at_the_configured_time(tmp_path: Path) -> None:
    assert CRSBOT, "the crsbot console script is not installed in this environment"
    slot = datetime.now(timezone.utc) + timedelta(minutes=30)
    lines = ["/crs temp=39 sbp=85 pressor=1 patient=bed7",
             "/crs temp=38.6 o2=2 device=nc sbp=110 patient=bed8",
             "/crs resolve patient=bed8",
             "advance 31m", "advance 1m", "advance 5m", "quit"]
    result = subprocess.run([CRSBOT, "console", "--data-dir", str(tmp_path)], input="\n".join(lines) + "\n",
                            capture_output=True, text=True, timeout=180,
                            env={**os.environ, "CRSBOT_LOG_LEVEL": "WARNING", "CRSBOT_HANDOFF_TIMES": clock_time(slot),
                                 "CRSBOT_TIMEZONE": "UTC"})
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
