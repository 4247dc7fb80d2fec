"""The reminder rules, in one place: cadence, the escalation chain, snooze, the symptom-free notice.

Pure functions of time, grade and the channel's chain; nothing here touches the database or Slack.
Reassessment intervals and escalation delays are the team's settings (not clinical advice); the
symptom-free hours come from the product's rulebook only.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from bot.storage.kinds import ReminderKind
from bot.storage.records import Oncall

__all__ = ["SNOOZE", "Chain", "ChainStep", "ReminderPolicy"]

log = logging.getLogger(__name__)

SNOOZE = timedelta(minutes=15)
"""How far "Snooze" defers a reminder (at least; a later reminder is never pulled forward)."""


@dataclass(frozen=True)
class ChainStep:
    """Who one post of the chain notifies: a mention, or the channel (@here)."""

    mention: str
    step: int
    is_channel: bool


@dataclass(frozen=True)
class Chain:
    """A channel's escalation chain with the site defaults filled in.

    Reassess reminders notify `primary` (or, with no chain set, `fallback`: the clinician who ran
    the episode's latest assessment); unanswered, the secondary is notified after
    `secondary_after`, the channel (@here) `channel_after` later, and the channel again every
    `repeat` until someone answers or acknowledges.
    """

    primary: str | None
    secondary: str | None
    secondary_after: timedelta
    channel_after: timedelta
    repeat: timedelta
    fallback: str | None = None  # a user id

    @property
    def is_set(self) -> bool:
        return self.primary is not None

    def reminder_target(self) -> str | None:
        return self.primary or self.fallback

    def at_step(self, step: int) -> ChainStep:
        """Escalation step 1 is the secondary (if any), then the channel for every later step."""
        if step <= 1 and self.secondary:
            return ChainStep(self.secondary, step, False)
        return ChainStep("<!here>", step, True)

    def first_escalation(self) -> tuple[int, timedelta]:
        return (1, self.secondary_after) if self.secondary else (2, self.secondary_after)

    def waited(self, step: int) -> timedelta:
        """How long the reminder has gone unanswered when escalation `step` is posted."""
        if step <= 1:
            return self.secondary_after
        first = self.secondary_after + (self.channel_after if self.secondary else timedelta(0))
        return first + self.repeat * (step - 2)

    def delay_after(self, step: int) -> timedelta:
        """Wait after escalation `step` before the next one."""
        return self.channel_after if step <= 1 else self.repeat


class ReminderPolicy:
    def __init__(self, intervals: Mapping[int, timedelta], escalate_after: timedelta,
                 channel_after: timedelta | None = None, repeat_every: timedelta | None = None) -> None:
        if not intervals:
            raise ValueError("at least one reassessment interval is required")
        for grade, interval in intervals.items():
            if interval <= timedelta(0):
                raise ValueError(f"reassessment interval for grade {grade} must be positive, got {interval}")
        if escalate_after <= timedelta(0):
            raise ValueError(f"escalate_after must be positive, got {escalate_after}")
        self.intervals = dict(intervals)
        self.escalate_after = escalate_after
        self.channel_after = channel_after or escalate_after
        self.repeat_every = repeat_every or self.channel_after

    # ----------------------------------------------------------------- cadence

    def interval_for(self, grade: int | None) -> timedelta | None:
        """Reassessment interval for a CRS grade; None below grade 1.

        A grade missing from the configuration gets the shortest configured interval: reminding
        too often is safer than not reminding at all.
        """
        if grade is None or grade < 1:
            return None
        interval = self.intervals.get(grade)
        if interval is None:
            interval = min(self.intervals.values())
            log.warning("no reassessment interval configured for grade %s; using the shortest (%s)", grade, interval)
        return interval

    # --------------------------------------------------------------- the chain

    def chain(self, oncall: Oncall | None, fallback: str | None = None) -> Chain:
        def seconds(value: int | None, default: timedelta) -> timedelta:
            return timedelta(seconds=value) if value else default

        if oncall is None:
            return Chain(None, None, self.escalate_after, self.channel_after, self.repeat_every, fallback)
        return Chain(oncall.target, oncall.secondary,
                     seconds(oncall.secondary_after_seconds, self.escalate_after),
                     seconds(oncall.channel_after_seconds, self.channel_after),
                     seconds(oncall.repeat_seconds, self.repeat_every), fallback)

    def after_post(self, kind: ReminderKind, step: int, grade: int | None, chain: Chain,
                   now: datetime) -> list[tuple[ReminderKind, datetime, int]]:
        """What a post books next: (kind, due, step).

        A reassess post books the next reassess (from the grade now) and the chain's first escalation;
        an escalation books the next step of the chain. The symptom-free notice books nothing.
        """
        if kind == ReminderKind.REASSESS:
            interval = self.interval_for(grade)
            if interval is None:
                return []
            first_step, delay = chain.first_escalation()
            return [(ReminderKind.REASSESS, now + interval, 0), (ReminderKind.ESCALATION, now + delay, first_step)]
        if kind == ReminderKind.ESCALATION:
            return [(ReminderKind.ESCALATION, now + chain.delay_after(step), max(step, 1) + 1)]
        return []

    # ------------------------------------------------------------------ snooze

    @staticmethod
    def snooze_until(now: datetime) -> datetime:
        """Snooze asks again this much later. It only ever defers: reassess reminders due before
        then move to then; one booked for later stays where it is (never pulled forward)."""
        return now + SNOOZE

    # ----------------------------------------------------------- symptom-free

    @staticmethod
    def symptom_free_until(resolved_at: datetime, hours: float | None) -> datetime | None:
        """When the notice is due; None when the rulebook gives no interval for this episode."""
        return resolved_at + timedelta(hours=hours) if hours else None
