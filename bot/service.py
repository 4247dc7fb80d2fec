"""What each `/crs` sub-command does, independent of how Slack delivered it.

Listeners and the console call these methods; the flow is always
parse -> grade -> decide -> record -> render -> send. Every user-caused failure is raised as a
`CrsbotError` and turned into a reply by the single error handler.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from bot.episodes.engine import DueReminder, ReminderEngine
from bot.slack.sender import Sender
from bot.settings import Settings
from bot.storage.records import Episode
from bot.storage.store import Store
from grading.crs import grade_crs
from grading.decide import decide_crs, decide_icans
from grading.errors import CrsbotError, InputError
from grading.models import CrsReport, Product
from grading.parse import parse_crs, parse_icans, read_patient
from grading.pipeline import Rulebooks, assess_delay, assess_premed
from messages.blocks import assessment_buttons, button_value, render_ephemeral, render_message
from messages.episodes import (
    escalation_message,
    history_message,
    hhmm,
    reminder_message,
    status_message,
    symptom_free_message,
)
from messages.form import build_form
from messages.help import help_message
from messages.ids import ActionId
from messages.layout import crs_layout, layout_for

log = logging.getLogger("crsbot.service")

Payload = dict[str, Any]


# Bare words a command may contain; the audit keeps these and marks any other word as refused.
SUBCOMMAND_WORDS = frozenset({"help", "?", "form", "icans", "delay", "premed", "status", "history", "resolve",
                              "oncall"})


def _is_assessment(sub: str) -> bool:
    """Grading commands: the store audits them with their inputs and grade."""
    return sub == "icans" or "=" in sub or ":" in sub


class ChannelNotAllowedError(CrsbotError):
    def __init__(self, channel: str) -> None:
        super().__init__(f"crsbot is not enabled in this channel ({channel}). Ask your Slack admin to add it to "
                         "CRSBOT_ALLOWED_CHANNELS.")


class NoEpisodeError(CrsbotError):
    def __init__(self, label: str) -> None:
        super().__init__(f"No open CRS episode for patient `{label}` in this channel. `/crs status` lists them.")


@dataclass(frozen=True)
class Invocation:
    channel_id: str
    user_id: str
    text: str
    trigger_id: str | None = None


class CrsService:
    def __init__(self, settings: Settings, rulebooks: Rulebooks, store: Store, sender: Sender) -> None:
        self.settings = settings
        self.rulebooks = rulebooks
        self.store = store
        self.sender = sender
        self.reminders: ReminderEngine | None = None

    # ------------------------------------------------------------------ routing

    def handle(self, inv: Invocation) -> Payload | None:
        """Run one `/crs` command; returns an ephemeral reply for the caller, if any."""
        self._check_channel(inv.channel_id)
        word, _, rest = inv.text.strip().partition(" ")
        sub = word.lower()
        if not _is_assessment(sub):
            self.store.audit("command", inv.channel_id, inv.user_id,
                             detail={"text": self.settings.redact(inv.text, SUBCOMMAND_WORDS)[:500]})
        if sub in ("", "help", "?"):
            return help_message()
        if sub == "form":
            self.open_form(inv.channel_id, inv.trigger_id, prefill=rest or None)
            return None
        if sub == "icans":
            self.icans(inv, rest)
            return None
        if sub in ("delay", "premed"):
            assess = assess_delay if sub == "delay" else assess_premed
            report = assess(rest, self.settings.site, self.rulebooks)
            return render_message(layout_for(report))
        if sub == "status":
            return self.status(inv.channel_id)
        if sub == "history":
            return self.history(inv.channel_id, self._patient_arg(rest, "history"))
        if sub == "resolve":
            return self.resolve(inv.channel_id, inv.user_id, self._patient_arg(rest, "resolve"))
        if sub == "oncall":
            return self.set_oncall(inv.channel_id, inv.user_id, rest)
        self.crs(inv.channel_id, inv.user_id, inv.text)
        return None

    def _check_channel(self, channel: str) -> None:
        allowed = self.settings.allowed_channels
        if allowed and channel not in allowed:
            raise ChannelNotAllowedError(channel)

    def _patient_arg(self, rest: str, command: str) -> str:
        match = re.fullmatch(r"\s*(?:patient|pt|bed)\s*[=:]\s*(\S+)\s*", rest, flags=re.IGNORECASE)
        if match is None:
            raise InputError("patient", f"`/crs {command}` needs the patient's bed or study label.",
                             "patient=<bed or study label>", f"/crs {command} patient=bed12")
        label = self.settings.check_patient_label(match.group(1))
        return read_patient("patient", label or "")

    # ---------------------------------------------------------------- assessing

    def _recurrence(self, channel: str, patient: str | None, product: Product, grade: int) -> Episode | None:
        """The previous episode that makes this grade recurrent: the patient's last resolved episode with
        the same product reached this same grade. `recurrent=yes` covers patients the bot has not seen."""
        if patient is None or grade < 1:
            return None
        previous = self.store.last_resolved_episode(channel, patient, product)
        return previous if previous is not None and previous.worst_grade == grade else None

    def crs(self, channel: str, user: str, text: str) -> CrsReport:
        inp = parse_crs(text)
        self.settings.check_patient_label(inp.patient)
        graded = grade_crs(inp, self.settings.site)
        product: Product = inp.product or self.settings.product
        rulebook = self.rulebooks[product]
        basis = graded.grade or graded.grade_if_fever_masked or 0
        previous = self._recurrence(channel, inp.patient, product, basis)
        report = decide_crs(inp, graded, rulebook, recurrent=bool(inp.recurrent) or previous is not None)
        recorded = self.store.record_assessment(
            channel, inp.patient, product, "crs", {"text": text, "parsed": inp.model_dump(mode="json")},
            report.model_dump(mode="json"), report.grade, rulebook.rulebook.id, rulebook.rulebook.version, user)
        episode = recorded.episode
        if episode and previous and episode.recurrent_of is None:
            episode = self.store.mark_recurrence(episode.id, previous.id)
        footer = None
        if episode and self.reminders is not None:
            due = self.reminders.schedule_after_assessment(episode.id, basis, user_id=user)
            footer = (f"Next reassessment reminder {hhmm(due.due_at)} (team setting)" if due
                      else "No reassessment reminder (grade 0)")
        elif not inp.patient:
            footer = "Add patient=<bed or study label> to track this episode and get reminders"
        value = button_value(t=text, a=recorded.assessment_id, e=episode.id if episode else None)
        payload = render_message(crs_layout(report), assessment_buttons(value), footer=footer)
        self._post_assessment(channel, episode, recorded.is_new_episode, recorded.assessment_id, payload)
        return report

    def _post_assessment(self, channel: str, episode: Episode | None, new: bool, assessment_id: int,
                         payload: Payload) -> None:
        """A new episode starts a thread; later assessments go in it and are also shown in the channel."""
        if episode and not new and episode.thread_ts:
            ts = self.sender.post(channel, {**payload, "reply_broadcast": True}, thread_ts=episode.thread_ts)
        else:
            ts = self.sender.post(channel, payload)
            if episode:
                self.store.set_episode_thread(episode.id, ts)
        self.store.set_assessment_message(assessment_id, ts)

    def icans(self, inv: Invocation, text: str) -> None:
        inp = parse_icans(text)
        self.settings.check_patient_label(inp.patient)
        product: Product = inp.product or self.settings.product
        rulebook = self.rulebooks[product]
        report = decide_icans(inp, rulebook)
        recorded = self.store.record_assessment(
            inv.channel_id, inp.patient, product, "icans", {"text": text, "parsed": inp.model_dump(mode="json")},
            report.model_dump(mode="json"), report.grade, rulebook.rulebook.id, rulebook.rulebook.version,
            inv.user_id)
        payload = render_message(layout_for(report))
        self._post_assessment(inv.channel_id, recorded.episode, recorded.is_new_episode, recorded.assessment_id,
                              payload)

    def open_form(self, channel: str, trigger_id: str | None, prefill: str | None = None) -> None:
        if not trigger_id:
            raise InputError(None, "the form needs Slack's trigger; type `/crs form` again.")
        self.sender.open_view(trigger_id, build_form(channel, prefill))

    # ----------------------------------------------------------------- episodes

    def status(self, channel: str) -> Payload:
        rows = []
        for ep in self.store.open_episodes(channel):
            pending = [r.due_at for r in self.store.reminders(episode_id=ep.id, status="pending")
                       if r.kind == "reassess"]
            rows.append((ep, min(pending, default=None)))
        oncall = self.store.get_oncall(channel)
        return status_message(rows, oncall.target if oncall else None)

    def history(self, channel: str, label: str) -> Payload:
        episodes = []
        for item in self.store.episode_history(channel, label):
            lines = [f"{hhmm(a.created_at)} {a.kind.upper()} grade {a.grade if a.grade is not None else '?'} "
                     f"by <@{a.user_id}> (rulebook {a.rulebook_version})" for a in item.assessments]
            state = "open" if item.episode.is_open else f"resolved {hhmm(item.episode.resolved_at)}"
            episodes.append((item.episode, state, lines))
        return history_message(label, episodes)

    def symptom_free_hours(self, episode: Episode) -> float | None:
        return self.rulebooks[episode.product].next_dose.hours_for(episode.worst_grade)  # type: ignore[index]

    def _no_notice_reason(self, episode: Episode) -> str:
        rules = self.rulebooks[episode.product].next_dose  # type: ignore[index]
        if rules.status == "not_available" or rules.symptom_free_hours is None:
            return f"The symptom-free interval before the next dose is not in this rulebook: see {rules.see}."
        covered = ", ".join(str(g) for g in rules.grades)
        return (f"This rulebook's {rules.symptom_free_hours:g}-hour symptom-free interval covers grade {covered} "
                f"episodes [{rules.source}]; this one reached grade {episode.worst_grade}, so no notice is "
                "booked: see the next-dose section of its grade reply.")

    def resolve(self, channel: str, user: str, label: str, episode_id: int | None = None) -> Payload:
        episode = (self.store.get_episode(episode_id) if episode_id is not None
                   else self.store.find_open_episode(channel, label))
        if episode is None or not episode.is_open:
            raise NoEpisodeError(label)
        hours = self.symptom_free_hours(episode)
        resolved = self.store.resolve_episode_by_id(episode.id, user, hours)
        when = (f"A notice will be posted when {hours:g} symptom-free hours have passed "
                f"({hhmm(resolved.symptom_free_until if resolved else None)})." if hours
                else self._no_notice_reason(episode))
        text = (f"CRS episode for *{episode.patient_label}* resolved by <@{user}>; its reminders are cancelled. "
                f"{when}")
        if episode.thread_ts:
            self.sender.post(channel, {"text": text}, thread_ts=episode.thread_ts)
        return render_ephemeral("Episode resolved", text)

    def set_oncall(self, channel: str, user: str, rest: str) -> Payload:
        target = rest.strip().split(" ")[0] if rest.strip() else ""
        if not re.fullmatch(r"<(@[UW][A-Z0-9]+|!subteam\^[A-Z0-9]+)(\|[^>]*)?>", target):
            raise InputError("oncall", f"`{target or '(nothing)'}` is not a Slack user or user group mention.",
                             "@user or @usergroup (pick it from Slack's autocomplete)", "/crs oncall @jane")
        mention = target.split("|")[0] + ">"
        self.store.set_oncall(channel, mention, user)
        return render_ephemeral("On-call target set", f"Reminders and escalations in this channel will mention "
                                f"{mention}.")

    # ---------------------------------------------------------------- buttons

    def button(self, action: str, value: str, channel: str, user: str, trigger_id: str | None,
               message_ts: str | None) -> str:
        """Handle a button on an assessment or reminder; returns the line added to the message."""
        data = json.loads(value or "{}")
        episode_id = data.get("e")
        if action == ActionId.REASSESSED:
            self._answer(episode_id, user, "reassessed")
            self.open_form(channel, trigger_id, prefill=data.get("t"))
            return f":stethoscope: <@{user}> is reassessing"
        if action == ActionId.NEW_ASSESSMENT:
            prefill = " ".join(p for p in (data.get("t") or "").split() if p.split("=")[0] in ("patient", "product"))
            self.open_form(channel, trigger_id, prefill=prefill or None)
            return f":memo: <@{user}> started a new assessment"
        if action == ActionId.SNOOZE:
            if episode_id is None:
                return f":zzz: <@{user}> snoozed (no patient label, so no reminder is tracked)"
            self._answer(episode_id, user, "snooze")
            return f":zzz: <@{user}> snoozed the reminder for 15 min"
        if action == ActionId.RESOLVED:
            if episode_id is None:
                return f":white_check_mark: <@{user}> marked this resolved (no patient label, nothing tracked)"
            episode = self.store.get_episode(episode_id)
            if episode is None or not episode.is_open:
                return f":information_source: <@{user}>: this episode was already resolved"
            self.resolve(channel, user, episode.patient_label, episode_id=episode_id)
            return f":white_check_mark: Resolved by <@{user}>"
        raise InputError(None, f"unknown button `{action}`.")

    def _answer(self, episode_id: int | None, user: str, action: str) -> None:
        if episode_id is None or self.reminders is None:
            return
        self.reminders.answer(user_id=user, action=action, episode_id=episode_id)

    # -------------------------------------------------------------- reminders

    def deliver(self, due: DueReminder) -> str | None:
        """The reminder engine's callback: post one (possibly coalesced) reminder in the episode thread."""
        ep = due.episode
        oncall_row = self.store.get_oncall(ep.channel_id)
        oncall = oncall_row.target if oncall_row else None
        value = button_value(e=ep.id, t=f"patient={ep.patient_label} product={ep.product}")
        if due.kind == "symptom_free":
            hours = self.symptom_free_hours(ep) or 0
            payload = symptom_free_message(ep, hours, self.rulebooks[ep.product].next_dose.source)  # type: ignore
        elif due.includes_escalation:
            # A reassessment merged with its overdue escalation has waited the escalation delay plus the outage.
            waited = self._escalation_wait() + (due.late_by if due.kind != "escalation" else timedelta(0))
            payload = escalation_message(ep, oncall, waited, value)
        else:
            payload = reminder_message(ep, oncall, value, due.late_by, due.coalesced)
        loud = due.kind == "escalation" or due.includes_escalation
        extra = {"reply_broadcast": True} if loud and ep.thread_ts else {}
        return self.sender.post(ep.channel_id, {**payload, **extra}, thread_ts=ep.thread_ts)

    def _escalation_wait(self) -> timedelta:
        return self.reminders.escalate_after if self.reminders else timedelta(0)
