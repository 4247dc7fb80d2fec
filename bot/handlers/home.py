"""The App Home tab: gathered for one viewer (their channels, from Slack) and published with
views.publish; refreshed for every recent viewer of a channel whenever a request there finished
(an assessment, a resolve, a button), so the tab never shows a resolved episode as open, and
whenever the reminder engine posted (or failed to post) in it, so "next reminder" follows the engine.

Viewers are remembered per replica for a while after they open the tab; their channel lists are
cached for the same time, so a busy channel costs one views.publish per viewer, not a lookup too.
"""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

from bot.episodes.engine import DueReminder, EngineObserver
from bot.handlers.deps import Deps
from bot.handlers.episodes import describe_chain
from bot.slack.sender import DeliveryError
from messages.home import ChannelHome, home_view

log = logging.getLogger("crsbot.home")
# How long a viewer keeps getting refreshes (and their channel list is trusted) after opening the tab.
VIEWER_TTL_SECONDS = 15 * 60
_EPISODE_CHANNELS = ("C", "G")


class HomeTab:
    def __init__(self, deps: Deps) -> None:
        self.deps = deps
        self._lock = threading.Lock()
        self._viewers: dict[str, tuple[float, frozenset[str]]] = {}  # user -> (opened at, channel ids)
        self._pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="crsbot-home")
        self._engine_changed: set[str] = set()  # channels the engine posted in, not yet refreshed

    def opened(self, user: str) -> None:
        """The viewer opened the tab: look up their channels and publish."""
        channels = frozenset(c for c in self.deps.sender.user_channels(user) if c.startswith(_EPISODE_CHANNELS))
        with self._lock:
            self._viewers[user] = (time.monotonic(), channels)
        self.publish(user, channels)

    def publish(self, user: str, channels: frozenset[str]) -> None:
        store = self.deps.store
        homes = []
        for channel in sorted(channels):
            episodes = store.open_episodes(channel)
            if not episodes:
                continue
            due = store.next_due([ep.id for ep in episodes])
            rows = [(ep, due.get(ep.id)) for ep in episodes]
            homes.append(ChannelHome(channel, describe_chain(self.deps, store.get_oncall(channel)), tuple(rows)))
        refs = [book.ref for book in self.deps.rulebooks.values()]
        self.deps.sender.publish_home(user, home_view(homes, refs, store.clock.now(), self.deps.settings.zone))

    def changed(self, channel: str) -> None:
        """Something in `channel` changed: refresh, in the background, every recent viewer who is in it."""
        now = time.monotonic()
        with self._lock:
            for user, (seen, _) in list(self._viewers.items()):
                if now - seen > VIEWER_TTL_SECONDS:
                    del self._viewers[user]
            viewers = [(u, chans) for u, (_, chans) in self._viewers.items() if channel in chans]
        for user, channels in viewers:
            self._pool.submit(self._refresh, user, channels)

    def watching(self, inner: EngineObserver) -> EngineObserver:
        """The reminder engine's observer, also noting the channels where the engine changed something."""
        return _EngineChanges(inner, self)

    def engine_changed(self, channel: str) -> None:
        with self._lock:
            self._engine_changed.add(channel)

    def refresh_engine_changes(self) -> None:
        """A reminder-engine tick hook. The engine records a pass's posts (and books what each post
        schedules next) after posting, and runs its hooks after that record, so the tab read here shows
        the new next reminder; refreshing at the post itself would show none booked. (Only a pass that
        posts without a pause for longer than a tick runs its hooks between a post and its record.)"""
        with self._lock:
            channels, self._engine_changed = self._engine_changed, set()
        for channel in sorted(channels):
            self.changed(channel)

    def _refresh(self, user: str, channels: frozenset[str]) -> None:
        try:
            self.publish(user, channels)
        except DeliveryError:
            pass  # counted and logged by the sender; the next change tries again
        except Exception:  # noqa: BLE001 - a background refresh must never take a thread down
            log.exception("home tab refresh failed")


class _EngineChanges(EngineObserver):
    """Passes every engine event on to `inner` (the metrics) and notes the channel of each post or failed
    post (a retry moves the next reminder) for `HomeTab.refresh_engine_changes`."""

    def __init__(self, inner: EngineObserver, home: HomeTab) -> None:
        self.inner, self.home = inner, home

    def posted(self, due: DueReminder, late_by: timedelta, reconciled: bool) -> None:
        self.inner.posted(due, late_by, reconciled)
        self.home.engine_changed(due.episode.channel_id)

    def escalated(self, due: DueReminder) -> None:
        self.inner.escalated(due)

    def failed(self, due: DueReminder, error: str, final: bool) -> None:
        self.inner.failed(due, error, final)
        self.home.engine_changed(due.episode.channel_id)

    def queue_depth(self, claimed: int) -> None:
        self.inner.queue_depth(claimed)


def channel_of(context: dict[str, Any]) -> str | None:
    """The channel an authorized request acted in (see bot.listeners.authorize)."""
    from bot.listeners.authorize import CALL

    call = context.get(CALL)
    return getattr(call, "channel", None) or None
