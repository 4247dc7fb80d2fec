"""Episodes in a channel: list them, show one patient's history, resolve one, set who is paged."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import TYPE_CHECKING

from bot.episodes.picture import post_timeline
from bot.errors import NoEpisodeError
from bot.settings import parse_duration
from bot.storage.kinds import ReminderKind
from bot.slack.sender import DeliveryError
from bot.handlers.deps import Call, Deps, Payload
from grading.errors import InputError
from messages import refusals
from messages.episodes import (
    chain_text,
    TIMELINE_NOTHING,
    TIMELINE_POSTED,
    episode_state,
    history_line,
    history_message,
    interval_not_for_grade,
    no_interval_in_rulebook,
    notice_booked,
    oncall_set_reply,
    resolved_reply,
    resolved_text,
    status_message,
    timeline_failed,
)

if TYPE_CHECKING:
    from bot.storage.records import Episode, Oncall

CHAIN_DELAYS = ("secondary", "channel", "repeat")
MENTION = re.compile(r"<(@[UW][A-Z0-9]+|!subteam\^[A-Z0-9]+)(\|[^>]*)?>")


def patient_of(call: Call, command: str) -> str:
    if call.patient is None:
        raise InputError("patient", refusals.NEEDS_PATIENT.format(command=command), refusals.NEEDS_PATIENT_ACCEPTED,
                         refusals.NEEDS_PATIENT_EXAMPLE.format(command=command))
    return call.patient


def status(deps: Deps, call: Call) -> Payload:
    episodes = deps.store.open_episodes(call.channel)
    due = deps.store.next_due([ep.id for ep in episodes], ReminderKind.REASSESS)
    rows = [(ep, due.get(ep.id)) for ep in episodes]
    return status_message(rows, describe_chain(deps, deps.store.get_oncall(call.channel)), deps.settings.zone)


def describe_chain(deps: Deps, oncall: Oncall | None) -> str:
    if deps.reminders is None:
        return "reminders are off"
    chain = deps.reminders.policy.chain(oncall)
    return chain_text(chain.primary, chain.secondary, chain.secondary_after, chain.channel_after, chain.repeat)


def history(deps: Deps, call: Call) -> Payload:
    label = patient_of(call, "history")
    episodes = []
    for item in deps.store.episode_history(call.channel, label):
        zone = deps.settings.zone
        lines = [history_line(a.created_at, a.kind, a.grade, a.user_id, a.rulebook_version, zone)
                 for a in item.assessments]
        episodes.append((item.episode, episode_state(item.episode.is_open, item.episode.resolved_at, zone), lines))
    return history_message(label, episodes, timeline(deps, call.channel, label, call.user) if episodes else None)


def timeline(deps: Deps, channel: str, label: str, user: str, episode_id: int | None = None) -> str:
    """Upload the episode picture to its thread; says where it went (or why it did not)."""
    try:
        picture = post_timeline(deps.store, deps.sender, channel, label, user, episode_id=episode_id,
                                sbp_threshold=deps.settings.sbp_threshold)
    except DeliveryError as exc:
        return timeline_failed(exc.reason)
    return TIMELINE_POSTED if picture else TIMELINE_NOTHING


def symptom_free_hours(deps: Deps, episode: Episode) -> float | None:
    return deps.rulebooks[episode.product].next_dose.hours_for(episode.worst_grade)  # type: ignore[index]


def _no_notice_reason(deps: Deps, episode: Episode) -> str:
    rules = deps.rulebooks[episode.product].next_dose  # type: ignore[index]
    if rules.status == "not_available" or rules.symptom_free_hours is None:
        return no_interval_in_rulebook(rules.see)
    return interval_not_for_grade(rules.symptom_free_hours, tuple(rules.grades), rules.source, episode.worst_grade)


def resolve(deps: Deps, call: Call) -> Payload:
    label = patient_of(call, "resolve")
    episode = deps.store.find_open_episode(call.channel, label)
    if episode is None:
        raise NoEpisodeError(label)
    return resolve_episode(deps, call, episode)


def resolve_episode(deps: Deps, call: Call, episode: Episode) -> Payload:
    hours = symptom_free_hours(deps, episode)
    resolved = deps.store.resolve_episode_by_id(episode.id, call.user, hours)
    when = notice_booked(hours, resolved.symptom_free_until if resolved else None, deps.settings.zone) if hours else \
        _no_notice_reason(deps, episode)
    text = resolved_text(episode.patient_label, call.user, when)
    if episode.thread_ts:
        deps.sender.post(call.channel, {"text": text}, thread_ts=episode.thread_ts)
    return resolved_reply(text)


def oncall(deps: Deps, call: Call) -> Payload:
    """`/crs oncall @primary [@secondary] [secondary=15m] [channel=15m] [repeat=15m]`: the channel's chain."""
    mentions: list[str] = []
    delays: dict[str, timedelta] = {}
    for token in call.text.split():
        key, eq, value = token.partition("=")
        if eq:
            if key.lower() not in CHAIN_DELAYS:
                raise InputError("oncall", refusals.NOT_A_CHAIN_SETTING.format(key=key), refusals.CHAIN_ACCEPTED,
                                 refusals.CHAIN_EXAMPLE)
            try:
                delays[key.lower()] = parse_duration(value)
            except ValueError as exc:
                raise InputError("oncall", f"`{token}`: {exc}.", refusals.CHAIN_ACCEPTED,
                                 refusals.CHAIN_EXAMPLE) from None
            continue
        if not MENTION.fullmatch(token):
            raise InputError("oncall", refusals.NOT_A_MENTION.format(target=token), refusals.MENTION_ACCEPTED,
                             refusals.CHAIN_EXAMPLE)
        mentions.append(token.split("|")[0] + ">")
    if not mentions:
        raise InputError("oncall", refusals.NOT_A_MENTION.format(target="(nothing)"), refusals.MENTION_ACCEPTED,
                         refusals.CHAIN_EXAMPLE)
    if len(mentions) > 2:
        raise InputError("oncall", refusals.CHAIN_TOO_LONG.format(count=len(mentions)), refusals.CHAIN_ACCEPTED,
                         refusals.CHAIN_EXAMPLE)
    saved = deps.store.set_oncall(call.channel, mentions[0], call.user,
                                  secondary=mentions[1] if len(mentions) > 1 else None,
                                  secondary_after=delays.get("secondary"), channel_after=delays.get("channel"),
                                  repeat=delays.get("repeat"))
    return oncall_set_reply(describe_chain(deps, saved))
