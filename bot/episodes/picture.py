"""Posts the episode picture into the episode's thread (for `/crs history` and the Timeline button)."""

from __future__ import annotations

from bot.episodes.timeline_data import episode_timeline
from bot.slack.sender import Sender
from bot.storage.store import Store
from messages.episodes import timeline_comment
from messages.timeline import Picture, render_picture


def post_timeline(store: Store, sender: Sender, channel: str, label: str, user: str, *,
                  episode_id: int | None = None, sbp_threshold: int = 90) -> Picture | None:
    """Render and upload the picture of the patient's episode; None when there is no episode to draw."""
    found = episode_timeline(store, channel, label, store.clock.now(), episode_id=episode_id,
                             sbp_threshold=sbp_threshold)
    if found is None:
        return None
    episode, timeline = found
    picture = render_picture(timeline)
    sender.upload(channel, episode.thread_ts, picture.filename, picture.png,
                  title=picture.title, alt_txt=picture.alt_text, initial_comment=timeline_comment(label, user))
    return picture
