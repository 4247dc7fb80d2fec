"""The words of reminder posts: the engine's Slack notifier renders each due reminder with `render`."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

from bot.episodes.policy import SNOOZE
from bot.handlers.deps import Deps, Payload
from bot.handlers.episodes import symptom_free_hours
from bot.seal import button_scope
from bot.storage.kinds import ReminderKind
from messages.episodes import escalation_message, reminder_message, symptom_free_message

if TYPE_CHECKING:
    from bot.episodes.engine import DueReminder


def render(deps: Deps, due: DueReminder) -> Payload:
    """One (possibly coalesced) reminder: the reminder to the chain's primary (or the assessor), an
    escalation to its chain step, or the symptom-free notice."""
    ep = due.episode
    if due.kind == ReminderKind.SYMPTOM_FREE:
        hours = symptom_free_hours(deps, ep) or 0
        return symptom_free_message(ep, hours, deps.rulebooks[ep.product].next_dose.source)  # type: ignore
    chain = due.chain
    value = deps.sealer.seal(button_scope(ep.channel_id), e=ep.id, t=f"patient={ep.patient_label} product={ep.product}")
    step = due.escalation_step
    if step is not None:
        # A reassessment merged with its overdue escalation has waited the escalation delay plus the outage.
        waited = (chain.waited(step.step) if chain else timedelta(0)) + \
            (due.late_by if due.kind != ReminderKind.ESCALATION else timedelta(0))
        return escalation_message(ep, step.mention, step.is_channel, waited, value, SNOOZE)
    target = chain.reminder_target() if chain else None
    return reminder_message(ep, target, bool(chain and chain.is_set), value, due.late_by, due.coalesced, SNOOZE)
