"""The engine's one way out: a `Notifier` posts a due reminder and can say what it already posted.

The contract that makes "exactly once" possible: `post` carries the metadata the engine gives it
(the reminder's identity) and raises `RateLimited` or `Refused` when it knows nothing was posted;
any other exception means the outcome is unknown. `posted` lists (ts, metadata) of posts already
in the reminder's thread, so an unknown outcome is reconciled instead of posted again.

`SlackNotifier` is the Slack implementation: it renders each kind with the renderer registered for
it (a new kind of scheduled post plugs in here) and posts through the shared `Sender`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, Protocol

from bot.slack.sender import PostRateLimited, PostRefused, Sender
from bot.storage.kinds import ReminderKind

if TYPE_CHECKING:
    from bot.episodes.engine import DueReminder

__all__ = ["Notifier", "RateLimited", "Refused", "Render", "SlackNotifier"]

Render = Callable[["DueReminder"], dict[str, Any]]


# A notifier's known outcomes are the sender's: nothing was posted, and Slack said when to try again
# (`retry_after`) or refused for good. One pair of types, not a second pair translated from the first.
RateLimited = PostRateLimited
Refused = PostRefused


class Notifier(Protocol):
    def post(self, due: DueReminder, metadata: dict[str, Any]) -> str:
        """Post; returns the message id (Slack ts)."""

    def posted(self, due: DueReminder) -> Iterable[tuple[str, dict[str, Any]]]:
        """(ts, metadata) of what is already in the reminder's thread (or channel)."""


class SlackNotifier:
    """Posts reminders in the episode's thread; loud ones (escalations) are also shown in the channel."""

    def __init__(self, sender: Sender, renderers: Mapping[ReminderKind, Render]) -> None:
        self.sender = sender
        self.renderers = dict(renderers)

    def post(self, due: DueReminder, metadata: dict[str, Any]) -> str:
        render = self.renderers.get(due.kind)
        if render is None:
            raise Refused(f"no renderer for reminder kind {due.kind!r}")
        payload = render(due)
        thread_ts = due.episode.thread_ts
        if due.includes_escalation and thread_ts:
            payload = {**payload, "reply_broadcast": True}
        return self.sender.post_once(due.episode.channel_id, payload, thread_ts=thread_ts, metadata=metadata)

    def posted(self, due: DueReminder) -> Iterable[tuple[str, dict[str, Any]]]:
        return self.sender.thread_metadata(due.episode.channel_id, due.episode.thread_ts)
