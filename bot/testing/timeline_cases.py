"""The scripted episode behind the episode picture: the golden-data test draws it (tests/test_timeline.py) and
scripts/readme-pictures draws the README's docs/episode-timeline.png from it, so the picture shown is the one
tested.

A grade 3 episode of bed12 over five hours, from 08:00 UTC on 2 March 2026: fever, then hypotension with
fluids and low-flow oxygen, tocilizumab with a vasopressor, an ICANS check, a steroid with vasopressin and
high-flow oxygen, then masked fever off pressors; one reminder and one escalation were posted; resolved at
13:00.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from bot.clock import ManualClock
from bot.episodes.repositories import Outcome, ReminderRepository
from bot.rulebooks import load_rulebooks
from bot.settings import load_settings
from bot.storage import Store
from bot.storage.kinds import ReminderStatus
from grading.parse import parse_crs, parse_icans
from grading.pipeline import assess_crs, assess_icans

START = datetime(2026, 3, 2, 8, 0, tzinfo=timezone.utc)
CHANNEL = "C0PICTURE1"
LABEL = "bed12"
SCRIPT: tuple[tuple[int, str], ...] = (  # minutes after the start, what was typed after /crs
    (0, "temp=39.2 sbp=118 patient=bed12"),
    (40, "temp=39.6 sbp=84 fluids=yes o2=2 device=nc patient=bed12"),
    (95, "temp=37.4 toci=yes sbp=86 pressor=1 o2=6 device=nc patient=bed12"),
    (110, "icans ice=8 patient=bed12"),
    (150, "temp=37.1 dex=yes pressor=1 vasopressin=yes o2=8 device=hfnc patient=bed12"),
    (240, "temp=36.9 masked=yes sbp=112 pressor=0 o2=2 device=nc patient=bed12"),
)
RESOLVED_AFTER = timedelta(minutes=300)


def record_script(store: Store, clock: ManualClock, start: datetime = START) -> int:
    """Record the scripted episode as the bot does (parse -> grade -> decide -> store), with a posted reminder
    and escalation, then resolve it; returns the episode id. Moves `clock` through the episode."""
    settings, rulebooks = load_settings().site, load_rulebooks(None)
    episode_id = 0
    for minutes, text in SCRIPT:
        clock.set(start + timedelta(minutes=minutes))
        if text.startswith("icans "):
            icans = assess_icans(text[6:], settings, rulebooks)
            parsed, result, kind, grade = parse_icans(text[6:]), icans.model_dump(mode="json"), "icans", icans.grade
        else:
            crs = assess_crs(text, settings, rulebooks)
            parsed, result, kind, grade = parse_crs(text), crs.model_dump(mode="json"), "crs", crs.grade
        recorded = store.record_assessment(CHANNEL, LABEL, "iv", kind, {"text": text, "parsed": parsed.model_dump(
            mode="json")}, result, grade, "lunsumio-iv", "test", "U0DOC")
        if recorded.episode is None:
            raise RuntimeError(f"the scripted assessment {text!r} opened no episode")
        episode_id = recorded.episode.id
        if minutes == 40:
            for kind_due, after in (("reassess", 30), ("escalation", 45)):
                store.schedule_reminder(episode_id, kind_due, clock.now() + timedelta(minutes=after))
            for after in (30, 45):
                clock.set(start + timedelta(minutes=40 + after))
                _post_due(store, clock, episode_id)
    clock.set(start + RESOLVED_AFTER)
    if store.resolve_episode(CHANNEL, LABEL, "U0DOC", 72) is None:
        raise RuntimeError("the scripted episode did not resolve")
    return episode_id


def _post_due(store: Store, clock: ManualClock, episode_id: int) -> None:
    """Mark the reminder due now as posted, as the reminder engine records a post."""
    delivery = ReminderRepository(store.engine)
    batch = delivery.claim_batch("replica-a", "token", clock.now(), clock.now() + timedelta(hours=1), 10)
    if batch is None:
        raise RuntimeError("no scripted reminder was due")
    ids = tuple(r.id for r in batch.reminders)
    first = batch.reminders[0]
    audit = {"action": "escalation" if first.kind == "escalation" else "reminder_sent", "channel_id": CHANNEL,
             "patient_label": LABEL, "reminder_id": first.id, "episode_id": episode_id, "kind": first.kind}
    delivery.complete("token", "replica-a", clock.now(), [Outcome(
        ids, ReminderStatus.SENT, primary_id=ids[0], message_ts="1.0", late_by=timedelta(0), audit=audit)], [])
