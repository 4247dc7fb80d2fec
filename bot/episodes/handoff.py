"""Gathers a channel's handoff (open episodes, what is due, next-dose constraints from the rulebook, episodes
resolved since the last handoff) and posts it; also the scheduled handoff, ticked by the reminder engine.

Exactly once across replicas: each (channel, slot) is claimed by inserting a unique row (bot/storage/handoffs.py)
before posting, so two replicas ticking at the same moment post it once. The claim is a lease, as a reminder's
is (bot/episodes/engine.py): if its holder dies before recording the post, another replica (or the restarted
one) takes it over once the lease has run out, first looking in the channel for the post (it carries the claim
in its metadata) so that a handoff that did go out is recorded, not posted twice.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from enum import Enum
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from bot.clock import Clock, as_utc
from bot.storage.handoffs import HandoffClaim, HandoffLog
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


HANDOFF_EVENT = "crsbot_handoff"  # the metadata event type of a scheduled handoff's post


def handoff_metadata(claim: HandoffClaim) -> dict[str, Any]:
    """What the post carries so that a replica taking the claim over can find it in the channel."""
    return {"event_type": HANDOFF_EVENT, "event_payload": {"handoff_id": str(claim.id), "slot": claim.slot}}


class HandoffPoster(Protocol):
    """Slack, as the scheduler needs it (bot/handlers/handoff.py)."""

    def render(self, channel: str) -> tuple[dict[str, Any], list[str]]:
        """The channel's scheduled handoff as of now (the message, and the patient labels it lists)."""

    def post(self, channel: str, message: dict[str, Any], metadata: dict[str, Any]) -> str:
        """Post it in one attempt (no retry that could post it twice), carrying `metadata`; its ts."""

    def posted(self, channel: str) -> Iterable[tuple[str, dict[str, Any]]]:
        """(ts, metadata) of the latest messages in the channel that carry metadata."""


class Delivery(Enum):
    POSTED = "posted"
    FOUND = "found"  # an earlier holder's post was in the channel: recorded, not posted again
    LEFT = "left"  # not done on this tick: failed (handed back), or the claim was taken over


class HandoffScheduler:
    """Posts each channel's scheduled handoff once per slot, from the reminder engine's tick."""

    def __init__(self, schedule: HandoffSchedule, handoffs: HandoffLog, poster: HandoffPoster, clock: Clock,
                 replica_id: str, *, lease: timedelta = timedelta(minutes=2),
                 post_timeout: timedelta = timedelta(seconds=10)) -> None:
        if lease <= post_timeout:
            raise ValueError(f"the claim lease ({lease}) must be longer than one post may take ({post_timeout})")
        self.schedule = schedule
        self.handoffs = handoffs
        self.poster = poster
        self.clock = clock
        self.replica_id = replica_id
        self.lease = lease
        self.post_timeout = post_timeout
        self._done: set[tuple[str, str]] = set()  # (channel, slot) this replica saw posted: no query again

    def tick(self) -> list[tuple[str, str]]:
        """Claim (or take over) and post every due (channel, slot); returns what this replica posted."""
        now = as_utc(self.clock.now())
        posted = []
        for slot in self.schedule.due_slots(now):
            key = slot.isoformat()
            channels = [c for c in self.handoffs.active_channels(slot, slot - LOOKBACK) if (c, key) not in self._done]
            claims = self.handoffs.claims(key) if channels else {}
            for channel in channels:
                claim, maybe_posted = claims.get(channel), True
                if claim is not None and claim.posted_at is not None:
                    self._done.add((channel, key))
                    continue
                if claim is None:
                    claim, maybe_posted = self.handoffs.claim(channel, key, self.replica_id), False
                elif claim.claimed_at + self.lease <= now:  # its holder died, or gave it back after a failed post
                    log.warning("handoff claim for %s at %s by %s ran out; taking it over", channel, key,
                                claim.claimed_by)
                    claim = self.handoffs.reclaim(claim, self.replica_id, now)
                else:
                    continue  # held within its lease: looked at again on the next tick
                if claim is None:
                    continue  # another replica was first
                delivery = self._deliver(claim, maybe_posted)
                if delivery is not Delivery.LEFT:
                    self._done.add((channel, key))
                if delivery is Delivery.POSTED:
                    posted.append((channel, key))
        return posted

    def _deliver(self, claim: HandoffClaim, maybe_posted: bool) -> Delivery:
        if maybe_posted:
            try:
                found = next((ts for ts, metadata in self.poster.posted(claim.channel_id)
                              if metadata == handoff_metadata(claim)), None)
            except Exception:  # noqa: BLE001 - cannot tell whether it went out: hand it back, ask again later
                log.exception("could not read %s to look for the handoff at %s", claim.channel_id, claim.slot)
                self._hand_back(claim)
                return Delivery.LEFT
            if found is not None:
                log.info("handoff %s at %s was already posted (%s): recorded, not posted again", claim.channel_id,
                         claim.slot, found)
                self.handoffs.posted(claim.id, found, [], reconciled=True)
                return Delivery.FOUND
        try:
            message, patients = self.poster.render(claim.channel_id)
            now = as_utc(self.clock.now())
            if claim.claimed_at + self.lease < now + self.post_timeout + timedelta(seconds=1):
                renewed = self.handoffs.reclaim(claim, self.replica_id, now)  # the post must end within the lease
                if renewed is None:
                    log.warning("handoff claim for %s at %s was taken over; leaving it", claim.channel_id, claim.slot)
                    return Delivery.LEFT
                claim = renewed
            ts = self.poster.post(claim.channel_id, message, handoff_metadata(claim))
        except Exception:  # noqa: BLE001 - it may have gone out: hand it back; the taker looks before posting
            log.exception("scheduled handoff for %s at %s failed; will retry", claim.channel_id, claim.slot)
            self._hand_back(claim)
            return Delivery.LEFT
        self.handoffs.posted(claim.id, ts, patients)
        return Delivery.POSTED

    def _hand_back(self, claim: HandoffClaim) -> None:
        """End the lease now, so the next tick of any replica takes the claim over."""
        self.handoffs.reclaim(claim, self.replica_id, as_utc(self.clock.now()) - self.lease)
