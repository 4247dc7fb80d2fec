"""`/crs handoff` and the scheduled handoff: gather the channel's episodes, post one summary in the channel,
and log it (so the next handoff lists what was resolved since this one)."""

from __future__ import annotations

from typing import Any

from bot.episodes.handoff import gather
from bot.handlers.deps import Call, Deps
from bot.storage.handoffs import HandoffLog
from messages.handoff import render_handoff

LOCAL_REPLICA = "local"


def handoff_log(deps: Deps) -> HandoffLog:
    return HandoffLog(deps.store.engine, deps.store.clock)


def handoff_message(deps: Deps, channel: str, scheduled: bool) -> tuple[dict[str, Any], list[str]]:
    """The channel's handoff as of now, and the patients it lists."""
    summary = gather(deps.store, handoff_log(deps), deps.rulebooks, channel, deps.store.clock.now(),
                     scheduled=scheduled)
    return render_handoff(summary, deps.settings.zone), [p.label for p in summary.patients]


class SlackHandoffPoster:
    """The scheduled handoff's way to Slack (bot/episodes/handoff.py HandoffPoster)."""

    def __init__(self, deps: Deps) -> None:
        self.deps = deps

    def render(self, channel: str) -> tuple[dict[str, Any], list[str]]:
        return handoff_message(self.deps, channel, scheduled=True)

    def post(self, channel: str, message: dict[str, Any], metadata: dict[str, Any]) -> str:
        return self.deps.sender.post_once(channel, message, metadata=metadata)

    def posted(self, channel: str) -> list[tuple[str, dict[str, Any]]]:
        return self.deps.sender.thread_metadata(channel, None)


def handoff(deps: Deps, call: Call) -> None:
    log = handoff_log(deps)
    handoff_id = log.record_manual(call.channel, call.user,
                                   deps.reminders.replica_id if deps.reminders else LOCAL_REPLICA)
    message, patients = handoff_message(deps, call.channel, scheduled=False)
    log.posted(handoff_id, deps.sender.post(call.channel, message), patients)
