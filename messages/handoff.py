"""The shift handoff: one channel message summing up its CRS episodes for the team coming on.

Pure layout: bot/episodes/handoff.py gathers a `Handoff`; this renders it as Block Kit (one section per
patient, phone first) within Slack's limits however many episodes the channel has. Times are Slack date
tokens, so each reader sees their own local time.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from messages.blocks import MAX_BLOCKS, MAX_FALLBACK_CHARS, MAX_HEADER_CHARS, MAX_SECTION_CHARS, clip, mrkdwn_escape
from messages.episodes import human
from messages.home import slack_date
from messages.layout import JUDGMENT, PRODUCT_NAMES

RESERVED_BLOCKS = 5  # header, summary, next-dose notes, resolved list, context


@dataclass(frozen=True, eq=True)
class NextDoseLine:
    """One next-dose constraint, worded from the rulebook entry (or its 'not in rulebook' pointer)."""

    text: str
    source: str


@dataclass(frozen=True)
class PatientSummary:
    label: str
    product: str
    current_grade: int | None
    worst_grade: int | None
    icans_current: int | None
    icans_worst: int | None
    last_assessed: datetime | None
    overdue_since: datetime | None  # oldest reassessment reminder due (or posted) and not answered
    next_reminder: datetime | None  # next reassessment reminder within the horizon
    escalated_at: datetime | None  # an escalation was posted and is unanswered
    escalates_at: datetime | None  # an escalation is booked if the reminder stays unanswered
    next_dose: tuple[NextDoseLine, ...]


@dataclass(frozen=True)
class ResolvedBrief:
    label: str
    product: str
    worst_grade: int | None
    resolved_at: datetime
    not_before: datetime | None  # next dose not before (symptom-free interval end), if the rulebook has one
    symptom_free_hours: float | None = None


@dataclass(frozen=True)
class Handoff:
    at: datetime
    since: datetime | None  # the previous handoff in this channel
    patients: tuple[PatientSummary, ...]
    resolved: tuple[ResolvedBrief, ...]
    oncall: str | None
    horizon: timedelta
    scheduled: bool = False


def _grade(value: int | None) -> str:
    return "?" if value is None else str(value)


def _reminders(p: PatientSummary, horizon: timedelta) -> str:
    if p.overdue_since is not None:
        return f":alarm_clock: reassessment *overdue* since {slack_date(p.overdue_since, '{time}')}"
    if p.next_reminder is not None:
        return f"next reassessment {slack_date(p.next_reminder, '{time}')}"
    return f"no reminder in the next {horizon.total_seconds() / 3600:g} h"


def _escalation(p: PatientSummary) -> str | None:
    if p.escalated_at is not None:
        return f":rotating_light: escalated {slack_date(p.escalated_at, '{time}')}, unanswered"
    if p.escalates_at is not None:
        return f"escalates {slack_date(p.escalates_at, '{time}')} if unanswered"
    return None


def _line(line: NextDoseLine) -> str:
    return f"{mrkdwn_escape(line.text)} [{line.source}]"


def shared_lines(patients: tuple[PatientSummary, ...] | list[PatientSummary]) -> dict[NextDoseLine, int]:
    """Next-dose lines that several patients share, numbered: written once under the list, referred to by
    number, so five patients still fit a phone."""
    counts: dict[NextDoseLine, int] = {}
    for p in patients:
        for line in p.next_dose:
            counts[line] = counts.get(line, 0) + 1
    shared = [line for line, n in counts.items() if n > 1]
    return {line: i for i, line in enumerate(shared, 1)}


def patient_text(p: PatientSummary, at: datetime, horizon: timedelta, notes: dict[NextDoseLine, int]) -> str:
    icans = (f" · ICANS now {_grade(p.icans_current)}, worst {_grade(p.icans_worst)}"
             if p.icans_worst is not None or p.icans_current is not None else "")
    status = [f"assessed {human(at - p.last_assessed)} ago" if p.last_assessed else "not assessed",
              _reminders(p, horizon), _escalation(p)]
    lines = [f"*{mrkdwn_escape(p.label)}* · {PRODUCT_NAMES.get(p.product, p.product)} · CRS now "
             f"{_grade(p.current_grade)}, worst {_grade(p.worst_grade)}{icans}",
             " · ".join(s for s in status if s)]
    own = [_line(n) for n in p.next_dose if n not in notes]
    refs = [f"({i})" for i in sorted(notes[n] for n in p.next_dose if n in notes)]
    if own or refs:
        lines.append("Next dose: " + " ".join(["; ".join(own)] * bool(own) + (["see " + " ".join(refs)] if refs else [])))
    return clip("\n".join(lines), MAX_SECTION_CHARS)


def _resolved_text(r: ResolvedBrief) -> str:
    after = (f", next dose not before {slack_date(r.not_before)} ({r.symptom_free_hours:g} h symptom-free)"
             if r.not_before and r.symptom_free_hours else "")
    return (f"*{mrkdwn_escape(r.label)}* ({r.product.upper()}, worst {_grade(r.worst_grade)}) resolved "
            f"{slack_date(r.resolved_at)}{after}")


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": clip(text, MAX_SECTION_CHARS)}}


def _plain(text: str) -> str:
    """Mrkdwn with each date token replaced by its UTC fallback: for notifications and text-only clients."""
    return re.sub(r"<!date\^\d+\^[^|]*\|([^>]*)>", r"\1", text)


def _fallback(h: Handoff, sections: list[str]) -> str:
    head = f"CRS handoff: {len(h.patients)} open episode(s), {len(h.resolved)} resolved since the last handoff"
    return clip("\n\n".join([head, *(_plain(s) for s in sections)]), MAX_FALLBACK_CHARS)


def render_handoff(h: Handoff) -> dict[str, Any]:
    """A chat.postMessage payload. One section per open episode, most severe first; past Slack's block limit
    the remaining patients are listed by name in one last section rather than dropped."""
    blocks: list[dict[str, Any]] = [{"type": "header", "text": {"type": "plain_text", "text": clip(
        f"CRS handoff · {h.at.astimezone(timezone.utc):%d %b %H:%M} UTC", MAX_HEADER_CHARS)}}]
    since = f" since {slack_date(h.since)}" if h.since else ""
    summary = (f"{'Scheduled' if h.scheduled else 'Asked for'} {slack_date(h.at, '{time}')} · *{len(h.patients)}* "
               f"open · {len(h.resolved)} resolved{since} · on-call {h.oncall or 'not set (`/crs oncall @user`)'}")
    blocks.append(_section(summary if h.patients else summary + "\nNo open CRS episodes in this channel."))
    ordered = sorted(h.patients, key=lambda p: (-(p.current_grade or 0), -(p.worst_grade or 0), p.label))
    room = MAX_BLOCKS - RESERVED_BLOCKS - 1
    shown, rest = (ordered, []) if len(ordered) <= room + 1 else (ordered[:room], ordered[room:])
    notes = shared_lines(shown)
    blocks.extend(_section(patient_text(p, h.at, h.horizon, notes)) for p in shown)
    if rest:
        blocks.append(_section(f"…and {len(rest)} more open episode(s) (`/crs status` lists them): " +
                               ", ".join(f"*{mrkdwn_escape(p.label)}* CRS {_grade(p.current_grade)}" for p in rest)))
    if notes:
        blocks.append(_section("*Next-dose notes*\n" + "\n".join(f"({i}) {_line(n)}" for n, i in notes.items())))
    if h.resolved:
        blocks.append(_section("*Resolved" + since + ":*\n" + "\n".join(f"• {_resolved_text(r)}" for r in h.resolved)))
    blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": clip(
        f"Next-dose lines come from the rulebook only; times show in your time zone. {JUDGMENT}", 3000)}]})
    sections = [b["text"]["text"] for b in blocks[1:] if b["type"] == "section"]
    return {"text": _fallback(h, sections), "blocks": blocks}
