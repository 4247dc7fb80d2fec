"""Buttons on assessments and reminders. The middleware has already opened the value's seal and
loaded the episode it names (which belongs to the channel clicked in)."""

from __future__ import annotations

from bot.handlers.assess import open_form
from bot.handlers.deps import Call, Deps
from bot.handlers.episodes import resolve_episode, timeline
from grading.errors import InputError
from grading.parse import PATIENT_KEYS
from messages import refusals
from messages.episodes import (
    TIMELINE_NOTHING,
    note_already_resolved,
    note_new_assessment,
    note_reassessing,
    note_resolved,
    note_snoozed,
    note_timeline,
)
from messages.ids import ActionId

# What a "New assessment" form keeps from the message it was clicked on: who and which product.
_CARRIED_KEYS = (*PATIENT_KEYS, "product")


def click(deps: Deps, call: Call, action: str) -> str:
    """Handle one click; returns the note added to the message."""
    episode = call.episode
    if action == ActionId.REASSESSED:
        _answer(deps, call, "reassessed")
        open_form(deps, call, call.fields.get("t"))
        return note_reassessing(call.user)
    if action == ActionId.NEW_ASSESSMENT:
        kept = [p for p in str(call.fields.get("t") or "").split() if p.split("=")[0] in _CARRIED_KEYS]
        open_form(deps, call, " ".join(kept) or None)
        return note_new_assessment(call.user)
    if action == ActionId.SNOOZE:
        _answer(deps, call, "snooze")
        return note_snoozed(call.user, tracked=episode is not None)
    if action == ActionId.RESOLVED:
        if episode is None:
            return note_resolved(call.user, tracked=False)
        if not episode.is_open:
            return note_already_resolved(call.user)
        resolve_episode(deps, call, episode)
        return note_resolved(call.user, tracked=True)
    if action == ActionId.TIMELINE:
        if episode is None:
            return note_timeline(call.user, TIMELINE_NOTHING)
        return note_timeline(call.user, timeline(deps, call.channel, episode.patient_label, call.user,
                                                 episode_id=episode.id))
    raise InputError(None, refusals.UNKNOWN_BUTTON.format(action=action))


def _answer(deps: Deps, call: Call, action: str) -> None:
    if call.episode is None or deps.reminders is None:
        return
    deps.reminders.answer(user_id=call.user, action=action, episode_id=call.episode.id)
