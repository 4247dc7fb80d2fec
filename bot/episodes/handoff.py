"""Gathers a channel's handoff (open episodes, what is due, next-dose constraints from the rulebook, episodes
resolved since the last handoff) and posts it; also the scheduled handoff, ticked by the reminder engine.

Exactly once across replicas: each (channel, slot) is claimed by inserting a unique row (bot/storage/handoffs.py)
before posting, so two replicas ticking at the same moment post it once.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from bot.clock import Clock, as_utc
from bot.storage.handoffs import HandoffLog
from bot.storage.records import Episode, Reminder
from bot.storage.store import Store
from grading.decide import select
from grading.rulebook import Rulebook
from messages.handoff import Handoff, NextDoseLine, PatientSummary, ResolvedBrief

log = logging.getLogger("crsbot.handoff")

HORIZON = timedelta(hours=4)  # "due in the next hours": what the incoming shift meets first
LOOKBACK = timedelta(hours=24)  # resolved episodes listed when the channel had no handoff before
GRACE = timedelta(hours=1)  # a scheduled handoff missed by more than this (bot down) is not posted late


def _next_dose(rulebook: Rulebook, episode: Episode, icans_worst: int | None) -> tuple[NextDoseLine, ...]:
    """The rulebook's next-dose entries for the episode's worst grades, as worded there (with the label section
    to consult when the entry is not in the rulebook)."""
    actions = select(rulebook.crs, episode.worst_grade or 0, episode.recurrent_of is not None, ("next_dose",))
    if icans_worst:
        actions += select(rulebook.icans, icans_worst, False, ("next_dose",))
    see = {e.id: e.see for e in (*rulebook.crs, *rulebook.icans) if e.status == "not_available"}
    return tuple(NextDoseLine(a.text, a.source, see.get(a.id)) for a in actions)


def _overdue(reminders: list[Reminder], now: datetime) -> datetime | None:
    waiting = [r.first_due_at for r in reminders if r.kind == "reassess" and (
        r.status == "sent" or (r.status in ("pending", "claimed") and r.due_at <= now))]
    return min(waiting, default=None)


def summarize(store: Store, rulebooks: Mapping[str, Rulebook], episode: Episode, now: datetime) -> PatientSummary:
    items = [h for h in store.episode_history(episode.channel_id, episode.patient_label) if h.episode.id == episode.id]
    assessments = items[0].assessments if items else ()
    icans = [a.grade for a in assessments if a.kind == "icans" and a.grade is not None]
    reminders = store.reminders(episode_id=episode.id)
    upcoming = [r.due_at for r in reminders if r.kind == "reassess" and r.status == "pending"
                and now < r.due_at <= now + HORIZON]
    escalated = [r.sent_at for r in reminders if r.kind == "escalation" and r.status == "sent" and r.sent_at]
    booked = [r.due_at for r in reminders if r.kind == "escalation" and r.status == "pending"]
    return PatientSummary(
        label=episode.patient_label, product=episode.product, current_grade=episode.current_grade,
        worst_grade=episode.worst_grade, icans_current=icans[-1] if icans else None,
        icans_worst=max(icans) if icans else None,
        last_assessed=assessments[-1].created_at if assessments else None, overdue_since=_overdue(reminders, now),
        next_reminder=min(upcoming, default=None), escalated_at=max(escalated, default=None),
        escalates_at=min(booked, default=None),
        next_dose=_next_dose(rulebooks[episode.product], episode, max(icans) if icans else None))


def gather(store: Store, handoffs: HandoffLog, rulebooks: Mapping[str, Rulebook], channel: str, now: datetime,
           *, scheduled: bool = False) -> Handoff:
    since = handoffs.last_posted(channel)
    resolved = tuple(ResolvedBrief(e.patient_label, e.product, e.worst_grade, e.resolved_at, e.symptom_free_until,
                                   rulebooks[e.product].next_dose.hours_for(e.worst_grade))
                     for e in handoffs.resolved_since(channel, since or now - LOOKBACK) if e.resolved_at)
    oncall = store.get_oncall(channel)
    return Handoff(at=now, since=since, patients=tuple(summarize(store, rulebooks, e, now)
                                                       for e in store.open_episodes(channel)),
                   resolved=resolved, oncall=oncall.target if oncall else None, horizon=HORIZON, scheduled=scheduled)


# ------------------------------------------------------------------------------------------- schedule

@dataclass(frozen=True)
class HandoffSchedule:
    """Handoff times of day in the site's time zone (CRSBOT_HANDOFF_TIMES, CRSBOT_TIMEZONE)."""

    times: tuple[time, ...]
    zone: ZoneInfo
    grace: timedelta = GRACE

    def due_slots(self, now: datetime) -> list[datetime]:
        """Slots that have started and are still within the grace period (as aware UTC datetimes)."""
        local = now.astimezone(self.zone)
        slots = []
        for day in (local.date() - timedelta(days=1), local.date()):
            for at in self.times:
                slot = as_utc(datetime.combine(day, at, tzinfo=self.zone))
                if slot <= now < slot + self.grace:
                    slots.append(slot)
        return sorted(slots)


# Posts a handoff in a channel; returns the message ts and the patient labels it listed.
PostHandoff = Callable[[str, bool], tuple[str, list[str]]]


class HandoffScheduler:
    """Posts each channel's scheduled handoff once per slot, from the reminder engine's tick."""

    def __init__(self, schedule: HandoffSchedule, handoffs: HandoffLog, post: PostHandoff, clock: Clock,
                 replica_id: str) -> None:
        self.schedule = schedule
        self.handoffs = handoffs
        self.post = post
        self.clock = clock
        self.replica_id = replica_id
        self._done: set[tuple[str, str]] = set()  # (channel, slot) this replica saw claimed: no query again

    def tick(self) -> list[tuple[str, str]]:
        """Claim and post every due (channel, slot); returns what this replica posted."""
        now = as_utc(self.clock.now())
        posted = []
        for slot in self.schedule.due_slots(now):
            key = slot.isoformat()
            channels = [c for c in self.handoffs.active_channels(slot, slot - LOOKBACK) if (c, key) not in self._done]
            taken = self.handoffs.claimed_channels(key) if channels else set()
            for channel in channels:
                self._done.add((channel, key))
                if channel in taken:
                    continue
                handoff_id = self.handoffs.claim(channel, key, self.replica_id)
                if handoff_id is None:
                    continue
                try:
                    ts, patients = self.post(channel, True)
                except Exception:  # noqa: BLE001 - give the claim back; the next tick (any replica) retries
                    log.exception("scheduled handoff for %s at %s failed; will retry", channel, key)
                    self.handoffs.release(handoff_id)
                    self._done.discard((channel, key))
                    continue
                self.handoffs.posted(handoff_id, ts, patients)
                posted.append((channel, key))
        return posted
