"""Gathers what the episode picture shows, from the database or from an audit export.

Both sources go through `point_of`, so a picture drawn from an export is the picture the bot would have posted.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from bot.storage.records import Assessment, Episode, Reminder
from bot.storage.store import Store
from grading.errors import InputError
from messages.timeline import EpisodeTimeline, Point, Tick, TickKind

TICK_KINDS = {"reassess": TickKind.REMINDER, "escalation": TickKind.ESCALATION}
POSTED = ("sent", "answered")


class NoTimelineError(InputError):
    """Nothing recorded for that patient (or episode) to draw."""

    def __init__(self, problem: str) -> None:
        super().__init__("patient", problem, "a patient label seen in this export, and an episode id of theirs",
                         "crsbot timeline --from-audit audit.jsonl --patient bed12 --out bed12.png")


def point_of(kind: str, at: datetime, grade: int | None, parsed: dict[str, Any] | None, at_least: bool) -> Point:
    """One stored assessment (its parsed inputs as recorded) as a point of the picture."""
    p = parsed or {}
    return Point(at=at, kind=kind, grade=grade, at_least=bool(at_least), temp_c=p.get("temp_c"), sbp=p.get("sbp"),
                 pressors=p.get("pressors"), vasopressin=p.get("vasopressin"), o2_flow=p.get("o2_flow"),
                 device=p.get("device"), masked=bool(p.get("masked")), masked_by=tuple(p.get("masked_by") or ()))


def _point(a: Assessment) -> Point:
    return point_of(a.kind, a.created_at, a.grade, a.inputs.get("parsed"), bool(a.result.get("at_least")))


def _ticks(reminders: Iterable[Reminder]) -> tuple[Tick, ...]:
    """Posted reminders and escalations; ones folded into another post were one message, so one tick."""
    return tuple(Tick(r.sent_at, TICK_KINDS[r.kind]) for r in reminders
                 if r.kind in TICK_KINDS and r.status in POSTED and r.sent_at and r.coalesced_into is None)


def timeline_for_episode(store: Store, episode: Episode, assessments: Iterable[Assessment], now: datetime,
                         sbp_threshold: int = 90) -> EpisodeTimeline:
    return EpisodeTimeline(patient_label=episode.patient_label, product=episode.product, opened_at=episode.opened_at,
                           resolved_at=episode.resolved_at, points=tuple(_point(a) for a in assessments),
                           ticks=_ticks(store.reminders(episode_id=episode.id)), until=now,
                           sbp_threshold=sbp_threshold)


def episode_timeline(store: Store, channel: str, label: str, now: datetime, *, episode_id: int | None = None,
                     sbp_threshold: int = 90) -> tuple[Episode, EpisodeTimeline] | None:
    """One episode of the patient in this channel: `episode_id`, else the open one, else the most recent."""
    history = store.episode_history(channel, label)
    if episode_id is not None:
        history = [h for h in history if h.episode.id == episode_id]
    if not history:
        return None
    item = next((h for h in reversed(history) if h.episode.is_open), history[-1])
    return item.episode, timeline_for_episode(store, item.episode, item.assessments, now, sbp_threshold)


def timeline_from_audit(lines: Iterable[str], patient: str, episode_id: int | None = None,
                        sbp_threshold: int = 90) -> EpisodeTimeline:
    """The picture of one episode from `crsbot audit export --format jsonl` (the patient's latest by default)."""
    rows = [json.loads(line) for line in lines if line.strip()]
    grades = [r for r in rows if r.get("action") == "grade" and r.get("patient_label") == patient
              and (r.get("detail") or {}).get("episode_id") is not None]
    if not grades:
        raise NoTimelineError(f"no assessments of patient {patient!r} in this audit export")
    wanted = episode_id if episode_id is not None else grades[-1]["detail"]["episode_id"]
    mine = [r for r in rows if (r.get("detail") or {}).get("episode_id") == wanted]
    points, ticks = [], []
    resolved_at: datetime | None = None
    product = "iv"
    for row in mine:
        at, detail, action = datetime.fromisoformat(row["at"]), row["detail"], row["action"]
        if action == "grade":
            product = detail.get("product", product)
            points.append(point_of(detail["kind"], at, detail.get("grade"), detail.get("inputs"),
                                   bool(detail.get("at_least"))))
        elif action in ("reminder_sent", "escalation") and detail.get("kind") in TICK_KINDS:
            ticks.append(Tick(at, TICK_KINDS[detail["kind"]]))
        elif action == "resolve":
            resolved_at = at
    if not points:
        raise NoTimelineError(f"episode {wanted} has no assessments in this audit export")
    end = max([p.at for p in points] + [t.at for t in ticks] + ([resolved_at] if resolved_at else []))
    return EpisodeTimeline(patient_label=patient, product=product, opened_at=points[0].at, resolved_at=resolved_at,
                           points=tuple(points), ticks=tuple(ticks), until=end, sbp_threshold=sbp_threshold)
