"""What handlers work with, and the authorized request they act on."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bot.episodes.engine import ReminderEngine
    from bot.seal import Sealer
    from bot.settings import Settings
    from bot.slack.sender import Sender
    from bot.storage.records import Episode
    from bot.storage.store import Store
    from grading.pipeline import Rulebooks

from grading.pipeline import NO_HISTORY, PatientHistory

Payload = dict[str, Any]


@dataclass
class Deps:
    settings: Settings
    rulebooks: Rulebooks
    store: Store
    sender: Sender
    sealer: Sealer
    reminders: ReminderEngine | None = None


@dataclass(frozen=True)
class Call:
    """One authorized request: the channel is allowed, the patient label passed the guard, and any
    episode named by a button belongs to `channel`."""

    channel: str
    user: str
    text: str = ""  # what follows `/crs` (or the form's fields as `/crs` text)
    trigger_id: str | None = None
    patient: str | None = None
    fields: dict[str, Any] = field(default_factory=dict)  # a button's opened seal
    episode: Episode | None = None  # the episode a button acts on, from the database
    history: PatientHistory = NO_HISTORY  # the named patient's episodes in this channel, from the database


def with_history(deps: Deps, call: Call) -> Call:
    """The call with the named patient's episodes in this channel (the only ones a command may act on).

    Read after Slack's ack for slash commands (bot/commands.py): the read waits its turn for the
    database behind other commands' writes, and Slack allows 3 s for the ack."""
    if call.patient is None or call.episode is not None or call.history is not NO_HISTORY:
        return call
    return replace(call, history=deps.store.patient_history(call.channel, call.patient))
