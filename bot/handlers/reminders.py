"""The reminder engine's notifier: post one (possibly coalesced) reminder in the episode's thread."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

from bot.handlers.deps import Deps
from bot.handlers.episodes import symptom_free_hours
from bot.seal import button_scope
from messages.episodes import escalation_message, reminder_message, symptom_free_message

if TYPE_CHECKING:
    from bot.episodes.engine import DueReminder


def deliver(deps: Deps, due: DueReminder) -> str | None:
    ep = due.episode
    oncall_row = deps.store.get_oncall(ep.channel_id)
    oncall = oncall_row.target if oncall_row else None
    value = deps.sealer.seal(button_scope(ep.channel_id), e=ep.id, t=f"patient={ep.patient_label} product={ep.product}")
    if due.kind == "symptom_free":
        hours = symptom_free_hours(deps, ep) or 0
        payload = symptom_free_message(ep, hours, deps.rulebooks[ep.product].next_dose.source)  # type: ignore
    elif due.includes_escalation:
        # A reassessment merged with its overdue escalation has waited the escalation delay plus the outage.
        waited = _escalation_wait(deps) + (due.late_by if due.kind != "escalation" else timedelta(0))
        payload = escalation_message(ep, oncall, waited, value)
    else:
        payload = reminder_message(ep, oncall, value, due.late_by, due.coalesced)
    loud = due.kind == "escalation" or due.includes_escalation
    extra = {"reply_broadcast": True} if loud and ep.thread_ts else {}
    return deps.sender.post(ep.channel_id, {**payload, **extra}, thread_ts=ep.thread_ts)


def _escalation_wait(deps: Deps) -> timedelta:
    return deps.reminders.escalate_after if deps.reminders else timedelta(0)
