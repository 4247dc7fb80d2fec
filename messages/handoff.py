"""The shift handoff: one channel message summing up its CRS episodes for the team coming on.

Pure layout: bot/episodes/handoff.py gathers a `Handoff`; this renders it as Block Kit (one section per
patient, phone first) within Slack's limits however many episodes the channel has. Times are Slack date
tokens, so each reader sees their own local time; the notification text shows the site's.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo
from string import ascii_lowercase
from typing import Any

from grading.decide import NOT_IN_RULEBOOK
from messages.blocks import MAX_BLOCKS, MAX_FALLBACK_CHARS, MAX_SECTION_CHARS, clip, mrkdwn_escape
from messages.episodes import human, plain_dates, slack_time
from messages.layout import JUDGMENT

RESERVED_BLOCKS = 4  # header, summary, resolved list, next-dose key with the footer
MAX_CONTEXT_CHARS = 3000  # one mrkdwn element of a context block
NBSP = "\u00a0"


@dataclass(frozen=True, eq=True)
class NextDoseLine:
    """One next-dose constraint: the rulebook entry's wording, or, for an entry the rulebook lacks, where the
    label has it (`see`)."""

    text: str
    source: str
    see: str | None = None


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


def _product(product: str) -> str:
    """The product as a handoff row names it: short, since every row is LUNSUMIO (IV or VELO)."""
    return product.upper()


def _nb(text: str) -> str:
    """Words that belong together, held together on one line (no-break spaces): a narrow phone wraps the row
    between its parts, never inside "assessed 1 h 10 min ago" or "CRS 3, worst 3". Never used around mrkdwn
    markers or emoji, which Slack only recognises next to ordinary spaces."""
    return text.replace(" ", NBSP)


def _reminders(p: PatientSummary, zone: tzinfo) -> str | None:
    """Only what the incoming shift has to act on; the footer says how far ahead this looks."""
    if p.overdue_since is not None:
        return f":alarm_clock: reassessment *overdue* {_nb('since ')}{slack_time(p.overdue_since, zone, '{time}')}"
    if p.next_reminder is not None:
        return _nb("next reassessment ") + slack_time(p.next_reminder, zone, '{time}')
    return None


def _escalation(p: PatientSummary, zone: tzinfo) -> str | None:
    if p.escalated_at is not None:
        return f":rotating_light: {_nb('escalated ')}{slack_time(p.escalated_at, zone, '{time}')},{NBSP}unanswered"
    if p.escalates_at is not None:
        return f"{_nb('escalates ')}{slack_time(p.escalates_at, zone, '{time}')}{_nb(' if unanswered')}"
    return None


def _line(line: NextDoseLine) -> str:
    """The rulebook's wording; an entry it lacks is named by where to look, as the clinical reference words it
    ("not in this rulebook; see LUNSUMIO VELO USPI section 2")."""
    return mrkdwn_escape(f"{NOT_IN_RULEBOOK}: see {line.see}." if line.see else line.text)


def note_keys(patients: tuple[PatientSummary, ...] | list[PatientSummary]) -> dict[NextDoseLine, str]:
    """Each distinct next-dose line, lettered: written once in the key under the list (grouped by source) and
    referred to by letter from each row, so five patients fit one phone screen."""
    lines = list(dict.fromkeys(line for p in patients for line in p.next_dose))
    sources = list(dict.fromkeys(line.source for line in lines))
    lines.sort(key=lambda line: sources.index(line.source))
    return {line: _letter(i) for i, line in enumerate(lines)}


def _letter(n: int) -> str:
    """a..z, then aa, ab...: a channel at Slack's block limit still gets a distinct key for every line."""
    letters = ascii_lowercase
    return letters[n] if n < len(letters) else letters[n // len(letters) - 1] + letters[n % len(letters)]


def _key_text(keys: dict[NextDoseLine, str]) -> str:
    by_source: dict[str, list[str]] = {}
    for line, key in keys.items():
        by_source.setdefault(line.source, []).append(f"*({key})* {_line(line)}")
    return " ".join(" ".join(items) + f" [{source}]" for source, items in by_source.items())


def patient_text(p: PatientSummary, at: datetime, keys: dict[NextDoseLine, str], zone: tzinfo) -> str:
    """One row: who, how bad (now and worst), when last assessed, what is due, and which next-dose lines of the key
    apply; each part kept whole, so the row wraps between parts."""
    refs = ", ".join(sorted({keys[n] for n in p.next_dose}, key=lambda k: (len(k), k)))
    parts = [_product(p.product), _nb(f"CRS {_grade(p.current_grade)}, worst {_grade(p.worst_grade)}"),
             _nb(f"ICANS {_grade(p.icans_current)}, worst {_grade(p.icans_worst)}")
             if p.icans_worst is not None or p.icans_current is not None else None,
             _nb(f"assessed {human(at - p.last_assessed)} ago") if p.last_assessed else "not assessed",
             _reminders(p, zone), _escalation(p, zone), _nb(f"next dose ({refs})") if refs else None]
    return clip(f"*{mrkdwn_escape(p.label)}* · " + " · ".join(part for part in parts if part), MAX_SECTION_CHARS)


def _resolved_text(r: ResolvedBrief, zone: tzinfo) -> str:
    after = (f", next dose not before {slack_time(r.not_before, zone)} ({r.symptom_free_hours:g} h symptom-free)"
             if r.not_before and r.symptom_free_hours else "")
    return (f"*{mrkdwn_escape(r.label)}* ({_product(r.product)}, worst {_grade(r.worst_grade)}) resolved "
            f"{slack_time(r.resolved_at, zone)}{after}")


def _packed(rows: list[str]) -> list[list[int]]:
    """Rows one under the other in as few sections as Slack's section size allows (each gap between sections
    costs height on a phone): the row indexes of each section."""
    packed: list[list[int]] = []
    size = 0
    for i, row in enumerate(rows):
        if packed and size + 1 + len(row) <= MAX_SECTION_CHARS:
            packed[-1].append(i)
            size += 1 + len(row)
        else:
            packed.append([i])
            size = len(row)
    return packed


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": clip(text, MAX_SECTION_CHARS)}}


def _plain(text: str) -> str:
    """Mrkdwn with each date token replaced by its fallback (the site's time): for notifications and text-only
    clients."""
    return plain_dates(text).replace(NBSP, " ")


def _fallback(h: Handoff, sections: list[str]) -> str:
    head = f"CRS handoff: {len(h.patients)} open episode(s), {len(h.resolved)} resolved since the last handoff"
    return clip("\n\n".join([head, *(_plain(s) for s in sections)]), MAX_FALLBACK_CHARS)


def render_handoff(h: Handoff, zone: tzinfo) -> dict[str, Any]:
    """A chat.postMessage payload: one row per open episode, most severe first, each referring by letter to the
    next-dose key under the list (the small print of a context block, as footnotes are), so a 5-patient channel
    fits one phone screen. Past Slack's block limit the remaining patients are named in one last section
    rather than dropped. `zone` is the site's: the time a notification or a text-only client shows."""
    blocks: list[dict[str, Any]] = [{"type": "header", "text": {"type": "plain_text", "text": "CRS handoff"}}]
    since = f" since {slack_time(h.since, zone)}" if h.since else ""
    asked = "Scheduled" if h.scheduled else "Asked for"
    summary = (f"{asked} {slack_time(h.at, zone, '{time}')} · *{len(h.patients)}* "
               f"open · {len(h.resolved)} resolved{since} · on-call {h.oncall or 'not set (`/crs oncall @user`)'}")
    blocks.append(_section(summary if h.patients else summary + "\nNo open CRS episodes in this channel."))
    ordered = sorted(h.patients, key=lambda p: (-(p.current_grade or 0), -(p.worst_grade or 0), p.label))
    room = MAX_BLOCKS - RESERVED_BLOCKS - 1
    groups = _packed([patient_text(p, h.at, note_keys(ordered), zone) for p in ordered])
    if len(groups) > room + 1:  # hundreds of episodes: the first ones in full, the others by name
        cut = groups[room - 1][-1] + 1
        shown, rest = ordered[:cut], ordered[cut:]
    else:
        shown, rest = ordered, []
    keys = note_keys(shown)
    rows = [patient_text(p, h.at, keys, zone) for p in shown]
    blocks.extend(_section("\n".join(rows[i] for i in group)) for group in _packed(rows))
    if rest:
        blocks.append(_section(f"…and {len(rest)} more open episode(s) (`/crs status` lists them): " +
                               ", ".join(f"*{mrkdwn_escape(p.label)}* CRS {_grade(p.current_grade)}" for p in rest)))
    if h.resolved:
        resolved = "\n".join(f"• {_resolved_text(r, zone)}" for r in h.resolved)
        blocks.append(_section("*Resolved" + since + ":*\n" + resolved))
    hours = f"{h.horizon.total_seconds() / 3600:g}"
    key = f"*Next dose (rulebook):* {_key_text(keys)} " if keys else ""
    footer = f"Reminders shown: overdue or due within {hours} h. {JUDGMENT}"
    blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": clip(key + footer, MAX_CONTEXT_CHARS)}]})
    texts = [b["text"]["text"] if b["type"] == "section" else b["elements"][0]["text"] for b in blocks[1:]]
    return {"text": _fallback(h, texts), "blocks": blocks}
