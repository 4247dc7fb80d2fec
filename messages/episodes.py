"""Words for episode tracking: reminders, escalations, the 72-hour notice, status and history."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Protocol

from messages.blocks import TIMELINE_BUTTON, button, clip, render_ephemeral
from messages.ids import ActionId
from messages.layout import JUDGMENT

TEAM_SETTING = "Reminder cadence is this team's setting, not a clinical recommendation."


class EpisodeLike(Protocol):
    id: int
    patient_label: str
    product: str
    current_grade: int | None
    worst_grade: int | None
    opened_at: datetime


def hhmm(moment: datetime | None) -> str:
    return moment.strftime("%a %d %b %H:%M UTC") if moment else "none"


def human(delta: timedelta) -> str:
    minutes = int(delta.total_seconds() // 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min" if hours else f"{minutes} min"


def _grades(ep: EpisodeLike) -> str:
    return f"current grade {ep.current_grade if ep.current_grade is not None else '?'}, " \
           f"worst {ep.worst_grade if ep.worst_grade is not None else '?'}"


def reminder_buttons(value: str) -> dict[str, Any]:
    return {"type": "actions", "block_id": "reminder_actions", "elements": [
        button("Reassessed", ActionId.REASSESSED, value, "primary"),
        button("Snooze 15 min", ActionId.SNOOZE, value),
        button("Resolved", ActionId.RESOLVED, value),
        button(TIMELINE_BUTTON, ActionId.TIMELINE, value),
    ]}


def _message(text: str, value: str | None, context: str) -> dict[str, Any]:
    blocks: list[dict[str, Any]] = [{"type": "section", "text": {"type": "mrkdwn", "text": clip(text, 3000)}}]
    if value:
        blocks.append(reminder_buttons(value))
    blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": context}]})
    return {"text": clip(text, 3900), "blocks": blocks}


def reminder_message(ep: EpisodeLike, oncall: str | None, value: str, late_by: timedelta, coalesced: int) -> \
        dict[str, Any]:
    who = oncall or "on-call team (no target set: `/crs oncall @user`)"
    text = f":alarm_clock: {who}: time to reassess patient *{ep.patient_label}* ({_grades(ep)})."
    if late_by >= timedelta(minutes=1):
        text += f" This reminder is LATE by {human(late_by)} (crsbot was unavailable)"
        text += f"; {coalesced + 1} missed reminders merged into this one." if coalesced else "."
    text += " Reply with a new `/crs ... patient=" + ep.patient_label + "` or a button."
    return _message(text, value, f"{TEAM_SETTING} {JUDGMENT}")


def escalation_message(ep: EpisodeLike, oncall: str | None, waited: timedelta, value: str) -> dict[str, Any]:
    who = oncall or "<!channel>"
    text = (f":rotating_light: *ESCALATION* {who}: nobody has answered the reassessment reminder for patient "
            f"*{ep.patient_label}* ({_grades(ep)}) for {human(waited)}. Please reassess now.")
    return _message(text, value, f"{TEAM_SETTING} {JUDGMENT}")


def symptom_free_message(ep: EpisodeLike, hours: float, source: str) -> dict[str, Any]:
    text = (f":white_check_mark: Patient *{ep.patient_label}*: {hours:g} hours have passed since this CRS episode "
            f"was marked resolved (worst grade {ep.worst_grade if ep.worst_grade is not None else '?'}). If still "
            f"free of CRS symptoms, the {hours:g}-hour condition for the next dose is met [{source}]. "
            "Check the other next-dose conditions in the episode's grade reply.")
    return _message(text, None, JUDGMENT)


def status_message(rows: list[tuple[EpisodeLike, datetime | None]], oncall: str | None) -> dict[str, Any]:
    if not rows:
        body = "No open CRS episodes in this channel."
    else:
        body = "\n".join(f"• *{ep.patient_label}* ({ep.product.upper()}): {_grades(ep)}; open since "
                         f"{hhmm(ep.opened_at)}; next reminder {hhmm(due)}" for ep, due in rows)
    body += f"\nOn-call target: {oncall or 'not set (`/crs oncall @user`)'}\n_{JUDGMENT}_"
    return render_ephemeral("Open CRS episodes", body)


def history_message(label: str, episodes: list[tuple[EpisodeLike, str, list[str]]], note: str | None = None) -> \
        dict[str, Any]:
    if not episodes:
        return render_ephemeral(f"History for {label}", "No episodes recorded in this channel.")
    lines = []
    for ep, state, assessments in episodes:
        lines.append(f"*Episode {ep.id}* ({ep.product.upper()}, {state}): worst grade "
                     f"{ep.worst_grade if ep.worst_grade is not None else '?'}")
        lines.extend(f"   {a}" for a in assessments)
    if note:
        lines.append(note)
    return render_ephemeral(f"History for {label}", "\n".join(lines) + f"\n_{JUDGMENT}_")


# ----------------------------------------------------------------- after an assessment


def reminder_footer(due_at: datetime | None) -> str:
    return f"Next reassessment reminder {hhmm(due_at)} (team setting)" if due_at else \
        "No reassessment reminder (grade 0)"


UNTRACKED_FOOTER = "Add patient=<bed or study label> to track this episode and get reminders"


def history_line(at: datetime, kind: str, grade: int | None, user: str, rulebook_version: str) -> str:
    return f"{hhmm(at)} {kind.upper()} grade {grade if grade is not None else '?'} by <@{user}> " \
           f"(rulebook {rulebook_version})"


def episode_state(is_open: bool, resolved_at: datetime | None) -> str:
    return "open" if is_open else f"resolved {hhmm(resolved_at)}"


# ---------------------------------------------------------------------- resolving


def notice_booked(hours: float, due_at: datetime | None) -> str:
    return f"A notice will be posted when {hours:g} symptom-free hours have passed ({hhmm(due_at)})."


def no_interval_in_rulebook(see: str) -> str:
    return f"The symptom-free interval before the next dose is not in this rulebook: see {see}."


def interval_not_for_grade(hours: float, grades: tuple[int, ...], source: str, worst: int | None) -> str:
    covered = ", ".join(str(g) for g in grades)
    return (f"This rulebook's {hours:g}-hour symptom-free interval covers grade {covered} episodes [{source}]; "
            f"this one reached grade {worst}, so no notice is booked: see the next-dose section of its grade reply.")


def resolved_text(label: str, user: str, when: str) -> str:
    return f"CRS episode for *{label}* resolved by <@{user}>; its reminders are cancelled. {when}"


def resolved_reply(text: str) -> dict[str, Any]:
    return render_ephemeral("Episode resolved", text)


def oncall_set_reply(mention: str) -> dict[str, Any]:
    return render_ephemeral("On-call target set", f"Reminders and escalations in this channel will mention {mention}.")


# ------------------------------------------------------------------------ buttons


def note_reassessing(user: str) -> str:
    return f":stethoscope: <@{user}> is reassessing"


def note_new_assessment(user: str) -> str:
    return f":memo: <@{user}> started a new assessment"


def note_snoozed(user: str, tracked: bool) -> str:
    return f":zzz: <@{user}> snoozed the reminder for 15 min" if tracked else \
        f":zzz: <@{user}> snoozed (no patient label, so no reminder is tracked)"


def note_resolved(user: str, tracked: bool) -> str:
    return f":white_check_mark: Resolved by <@{user}>" if tracked else \
        f":white_check_mark: <@{user}> marked this resolved (no patient label, nothing tracked)"


def note_already_resolved(user: str) -> str:
    return f":information_source: <@{user}>: this episode was already resolved"


def note_timeline(user: str, outcome: str) -> str:
    return f":chart_with_upwards_trend: <@{user}>: {outcome}"


TIMELINE_POSTED = "The timeline picture is posted in the episode's thread."
TIMELINE_NOTHING = "No episode to draw."


def timeline_failed(reason: str) -> str:
    return f"The timeline picture could not be uploaded ({reason})."


def timeline_comment(label: str, user: str) -> str:
    return f":chart_with_upwards_trend: Timeline of patient *{label}*'s CRS episode, asked for by <@{user}>. {JUDGMENT}"
