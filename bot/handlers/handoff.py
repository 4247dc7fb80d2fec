"""`/crs handoff` and the scheduled handoff: gather the channel's episodes, post one summary in the channel,
and log it (so the next handoff lists what was resolved since this one)."""

from __future__ import annotations

from bot.episodes.handoff import gather
from bot.handlers.deps import Call, Deps
from bot.storage.handoffs import HandoffLog
from messages.handoff import render_handoff

LOCAL_REPLICA = "local"


def handoff_log(deps: Deps) -> HandoffLog:
    return HandoffLog(deps.store.engine, deps.store.clock)


def post_handoff(deps: Deps, channel: str, scheduled: bool) -> tuple[str, list[str]]:
    """Post the channel's handoff now; returns the message ts and the patients it listed."""
    summary = gather(deps.store, handoff_log(deps), deps.rulebooks, channel, deps.store.clock.now(),
                     scheduled=scheduled)
    ts = deps.sender.post(channel, render_handoff(summary))
    return ts, [p.label for p in summary.patients]


def handoff(deps: Deps, call: Call) -> None:
    log = handoff_log(deps)
    handoff_id = log.record_manual(call.channel, call.user,
                                   deps.reminders.replica_id if deps.reminders else LOCAL_REPLICA)
    ts, patients = post_handoff(deps, call.channel, scheduled=False)
    log.posted(handoff_id, ts, patients)
