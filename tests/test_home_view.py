"""The App Home tab's times: Slack date tokens (each viewer's own zone) whose fallback is the site's time."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from bot.rulebooks import load_rulebooks
from messages.home import ChannelHome, home_view


@dataclass(frozen=True)
class _Episode:
    id: int
    patient_label: str
    product: str
    current_grade: int | None
    worst_grade: int | None
    opened_at: datetime


def test_home_times_fall_back_to_the_sites_zone() -> None:
    now = datetime(2026, 3, 2, 22, 10, tzinfo=timezone.utc)
    episode = _Episode(1, "bed12", "iv", 3, 3, now - timedelta(hours=2))
    channels = [ChannelHome("C0HOME1", "primary <@U0PRIMARY1>", ((episode, now + timedelta(minutes=30)),))]
    refs = [book.ref for book in load_rulebooks(None).values()]

    view = home_view(channels, refs, now, ZoneInfo("Asia/Kolkata"))

    fallbacks = re.findall(r"<!date\^\d+\^[^|]*\|([^>]*)>", json.dumps(view["blocks"]))
    # 22:40 UTC is 04:10 the next day in Kolkata; 22:10 UTC is 03:40.
    assert fallbacks == ["Tue 03 Mar 04:10 IST", "Tue 03 Mar 03:40 IST"]
    assert "UTC" not in json.dumps(view)
