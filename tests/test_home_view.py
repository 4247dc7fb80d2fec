"""The App Home tab's times: Slack date tokens (each viewer's own zone) whose fallback is the site's time."""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from bot.rulebooks import load_rulebooks
from bot.storage.records import Episode
from messages.home import ChannelHome, home_view


def test_home_times_fall_back_to_the_sites_zone() -> None:
    now = datetime(2026, 3, 2, 22, 10, tzinfo=timezone.utc)
    episode = Episode(id=1, channel_id="C0HOME1", patient_label="bed12", product="iv", status="open",
                      opened_at=now - timedelta(hours=2), resolved_at=None, resolved_by=None, current_grade=3,
                      worst_grade=3, recurrent_of=None, thread_ts=None, symptom_free_until=None)
    channels = [ChannelHome("C0HOME1", "primary <@U0PRIMARY1>", ((episode, now + timedelta(minutes=30)),))]
    refs = [book.ref for book in load_rulebooks(None).values()]

    view = home_view(channels, refs, now, ZoneInfo("Asia/Kolkata"))

    fallbacks = re.findall(r"<!date\^\d+\^[^|]*\|([^>]*)>", json.dumps(view["blocks"]))
    # 22:40 UTC is 04:10 the next day in Kolkata; 22:10 UTC is 03:40.
    assert fallbacks == ["Tue 03 Mar 04:10 IST", "Tue 03 Mar 03:40 IST"]
    assert "UTC" not in json.dumps(view)
