"""Words for episode tracking: reminders, the escalation chain, the symptom-free notice, status and history.

Every time shown in Slack is Slack's date token (`<!date^epoch^...|fallback>`), so each reader sees
it in their own time zone; the fallback (and the console) uses the site's zone.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, tzinfo
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


def site_time(moment: datetime, zone: tzinfo) -> str:
    """A time in the site's zone, for the CLI, the console and Slack's fallback text."""
    local = moment.astimezone(zone)
    return f"{local:%a %d %b %H:%M} {local.tzname() or ''}".rstrip()


DATE_FORMAT = "{date_short_pretty} {time}"
_DATE_TOKEN = re.compile(r"<!date\^\d+\^[^|>]*\|([^>]*)>")


def slack_time(moment: datetime | None, zone: tzinfo, fmt: str = DATE_FORMAT) -> str:
    """Slack's date formatting: each reader sees their own local time; clients that cannot show it
    fall back to `zone`'s time."""
    if moment is None:
        return "none"
    return f"<!date^{int(moment.timestamp())}^{fmt}|{site_time(moment, zone)}>"


def plain_dates(text: str) -> str:
    """Each Slack date token as its fallback text: what a terminal or a text-only client shows."""
    return _DATE_TOKEN.sub(r"\1", text)


def mention(target: str) -> str:
    """A stored target as Slack mention text: user ids become <@U...>; mentions stay as they are."""
    return target if target.startswith("<") else f"<@{target}>"


def human(delta: timedelta) -> str:
    minutes = int(delta.total_seconds() // 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min" if hours else f"{minutes} min"


def _grades(ep: EpisodeLike) -> str:
    return f"current grade {ep.current_grade if ep.current_grade is not None else '?'}, " \
           f"worst {ep.worst_grade if ep.worst_grade is not None else '?'}"


CHAIN_HELP = "`/crs oncall @primary @secondary secondary=15m`"


def reminder_buttons(value: str, snooze: timedelta) -> dict[str, Any]:
    return {"type": "actions", "block_id": "reminder_actions", "elements": [
        button("I'm on it", ActionId.ACK, value, "primary"),
        button("Reassessed", ActionId.REASSESSED, value),
        button(f"Snooze {human(snooze)}", ActionId.SNOOZE, value),
        button("Resolved", ActionId.RESOLVED, value),
        button(TIMELINE_BUTTON, ActionId.TIMELINE, value),
    ]}


def _message(text: str, buttons: dict[str, Any] | None, context: str) -> dict[str, Any]:
    blocks: list[dict[str, Any]] = [{"type": "section", "text": {"type": "mrkdwn", "text": clip(text, 3000)}}]
    if buttons:
        blocks.append(buttons)
    blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": context}]})
    return {"text": clip(text, 3900), "blocks": blocks}


def reminder_message(ep: EpisodeLike, target: str | None, chain_set: bool, value: str, late_by: timedelta,
                     coalesced: int, snooze: timedelta) -> dict[str, Any]:
    who = mention(target) if target else "<!here>"
    text = f":alarm_clock: {who}: time to reassess patient *{ep.patient_label}* ({_grades(ep)})."
    if late_by >= timedelta(minutes=1):
        text += f" This reminder is LATE by {human(late_by)} (crsbot was unavailable)"
        text += f"; {coalesced + 1} missed reminders merged into this one." if coalesced else "."
    text += " Reply with a new `/crs ... patient=" + ep.patient_label + "` or a button."
    if not chain_set:
        # The command stays outside the italics: inline code inside `_..._` shows its backticks on some clients.
        text += (f"\n_No on-call chain in this channel, so this reminds who ran the latest assessment._ "
                 f"Set one: {CHAIN_HELP}")
    return _message(text, reminder_buttons(value, snooze), f"{TEAM_SETTING} {JUDGMENT}")


def escalation_message(ep: EpisodeLike, target: str, to_channel: bool, waited: timedelta, value: str,
                       snooze: timedelta) -> dict[str, Any]:
    who = target if to_channel else mention(target)
    step = "to the channel" if to_channel else "to the secondary"
    text = (f":rotating_light: *ESCALATION* {step} {who}: nobody has answered the reassessment reminder for "
            f"patient *{ep.patient_label}* ({_grades(ep)}) for {human(waited)}. Press *I'm on it* to stop the "
            "escalation, then reassess.")
    return _message(text, reminder_buttons(value, snooze), f"{TEAM_SETTING} {JUDGMENT}")


def no_chain_prompt(user: str) -> str:
    """Shown in the channel at an episode's first assessment when nobody is set to be paged."""
    return (f":warning: No on-call chain is set in this channel: reminders for this patient will mention "
            f"<@{user}> (who ran this assessment), escalating to the channel. Set one: {CHAIN_HELP}")


def with_notice(payload: dict[str, Any], notice: str) -> dict[str, Any]:
    """A message payload with a notice line under its header, in the blocks and the notification text."""
    block = {"type": "section", "text": {"type": "mrkdwn", "text": clip(notice, 3000)}}
    return {**payload, "text": clip(f"{payload.get('text', '')}\n{notice}", 3900),
            "blocks": [*(payload.get("blocks") or []), block]}


def chain_text(primary: str | None, secondary: str | None, secondary_after: timedelta, channel_after: timedelta,
               repeat: timedelta) -> str:
    if primary is None:
        return "not set: reminders mention who ran the latest assessment (" + CHAIN_HELP + ")"
    steps = [f"{mention(primary)}"]
    if secondary:
        steps.append(f"{mention(secondary)} after {human(secondary_after)}")
        steps.append(f"the channel {human(channel_after)} later")
    else:
        steps.append(f"the channel after {human(secondary_after)}")
    return ", then ".join(steps) + f", repeating every {human(repeat)} until someone answers"


def chain_line(chain: str) -> str:
    """The chain as `/crs status` and App Home both show it (`chain` from `chain_text`)."""
    return f"On-call chain: {chain}"


def symptom_free_message(ep: EpisodeLike, hours: float, source: str) -> dict[str, Any]:
    text = (f":white_check_mark: Patient *{ep.patient_label}*: {hours:g} hours have passed since this CRS episode "
            f"was marked resolved (worst grade {ep.worst_grade if ep.worst_grade is not None else '?'}). If still "
            f"free of CRS symptoms, the {hours:g}-hour condition for the next dose is met [{source}]. "
            "Check the other next-dose conditions in the episode's grade reply.")
    return _message(text, None, JUDGMENT)


def status_message(rows: list[tuple[EpisodeLike, datetime | None]], chain: str, zone: tzinfo) -> dict[str, Any]:
    if not rows:
        body = "No open CRS episodes in this channel."
    else:
        body = "\n".join(f"• *{ep.patient_label}* ({ep.product.upper()}): {_grades(ep)}; open since "
                         f"{slack_time(ep.opened_at, zone)}; next reminder {slack_time(due, zone)}" for ep, due in rows)
    body += f"\n{chain_line(chain)}\n_{JUDGMENT}_"
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


def reminder_footer(interval: timedelta | None) -> str:
    """Relative on purpose: the footer is escaped plain text, where Slack's date token cannot render."""
    return f"Next reassessment reminder in {human(interval)} (team setting)" if interval else \
        "No reassessment reminder (grade 0)"


UNTRACKED_FOOTER = "Add patient=<bed or study label> to track this episode and get reminders"


def history_line(at: datetime, kind: str, grade: int | None, user: str, rulebook_version: str, zone: tzinfo) -> str:
    return f"{slack_time(at, zone)} {kind.upper()} grade {grade if grade is not None else '?'} by <@{user}> " \
           f"(rulebook {rulebook_version})"


def episode_state(is_open: bool, resolved_at: datetime | None, zone: tzinfo) -> str:
    return "open" if is_open else f"resolved {slack_time(resolved_at, zone)}"


# ---------------------------------------------------------------------- resolving


def notice_booked(hours: float, due_at: datetime | None, zone: tzinfo) -> str:
    return f"A notice will be posted when {hours:g} symptom-free hours have passed ({slack_time(due_at, zone)})."


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


def oncall_set_reply(chain: str) -> dict[str, Any]:
    return render_ephemeral("On-call chain set", f"Reminders in this channel: {chain}.")


# ------------------------------------------------------------------------ buttons


def note_reassessing(user: str) -> str:
    return f":stethoscope: <@{user}> is reassessing"


def note_new_assessment(user: str) -> str:
    return f":memo: <@{user}> started a new assessment"


def note_snoozed(user: str, until: datetime | None, zone: tzinfo) -> str:
    return f":zzz: <@{user}> snoozed this reminder (until {slack_time(until, zone)}); a later reminder keeps its time" \
        if until else f":zzz: <@{user}> snoozed (no patient label, so no reminder is tracked)"


def note_on_it(user: str) -> str:
    return f":raising_hand: <@{user}> is on it: escalation stopped"


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
