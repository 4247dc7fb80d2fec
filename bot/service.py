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
from bot.episodes.policy import SNOOZE
from bot.slack.sender import Sender
from bot.settings import Settings, parse_duration
from bot.storage.records import Episode
from bot.storage.kinds import AnswerAction, ReminderKind, ReminderStatus
from bot.storage.store import AnswerOutcome, Store
from grading.crs import grade_crs
from grading.decide import decide_crs, decide_icans
from grading.errors import CrsbotError, InputError
from grading.models import CrsReport, Product
from grading.parse import parse_crs, parse_icans, read_patient
from grading.pipeline import Rulebooks, assess_delay, assess_premed
from grading.privacy import check_patient_label
from messages.blocks import assessment_buttons, button_value, render_ephemeral, render_message
from messages.episodes import (
    chain_text,
    escalation_message,
    human,
    history_message,
    no_chain_prompt,
    reminder_message,
    slack_time,
    status_message,
    symptom_free_message,
)
from messages.form import build_form
from messages.help import help_message
from messages.ids import ActionId
from messages.layout import crs_layout, layout_for

log = logging.getLogger("crsbot.service")

Payload = dict[str, Any]


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
            self.store.audit("command", inv.channel_id, inv.user_id, detail={"text": inv.text[:500]})
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
        label = read_patient("patient", match.group(1).lower())
        check_patient_label(label, self.settings.patient_deny_pattern)
        return label

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
        check_patient_label(inp.patient, self.settings.patient_deny_pattern)
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
            # Relative on purpose: this footer is escaped plain text, where Slack's date token cannot render.
            interval = self.reminders.policy.interval_for(basis)
            footer = (f"Next reassessment reminder in {human(interval)} (team setting)" if due and interval
                      else "No reassessment reminder (grade 0)")
        elif not inp.patient:
            footer = "Add patient=<bed or study label> to track this episode and get reminders"
        value = button_value(t=text, a=recorded.assessment_id, e=episode.id if episode else None)
        payload = render_message(crs_layout(report), assessment_buttons(value), footer=footer)
        self._post_assessment(channel, episode, recorded.is_new_episode, recorded.assessment_id, payload)
        if episode and recorded.is_new_episode and self.reminders is not None \
                and self.store.get_oncall(channel) is None:
            # Shown to everyone (in the thread and the channel), so the team sees nobody is set to be paged.
            thread = self.store.get_episode(episode.id)
            self.sender.post(channel, {"text": no_chain_prompt(user), "reply_broadcast": True},
                             thread_ts=thread.thread_ts if thread else None)
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
        check_patient_label(inp.patient, self.settings.patient_deny_pattern)
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
            pending = [r.due_at for r in self.store.reminders(episode_id=ep.id, status=ReminderStatus.PENDING)
                       if r.kind == ReminderKind.REASSESS]
            rows.append((ep, min(pending, default=None)))
        chain = self.reminders.policy.chain(self.store.get_oncall(channel)) if self.reminders else None
        described = (chain_text(chain.primary, chain.secondary, chain.secondary_after, chain.channel_after,
                                chain.repeat) if chain else "reminders are off")
        return status_message(rows, described, self.settings.zone)

    def history(self, channel: str, label: str) -> Payload:
        episodes = []
        for item in self.store.episode_history(channel, label):
            lines = [f"{slack_time(a.created_at, self.settings.zone)} {a.kind.upper()} grade {a.grade if a.grade is not None else '?'} "
                     f"by <@{a.user_id}> (rulebook {a.rulebook_version})" for a in item.assessments]
            state = "open" if item.episode.is_open else \
                f"resolved {slack_time(item.episode.resolved_at, self.settings.zone)}"
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
                f"({slack_time(resolved.symptom_free_until if resolved else None, self.settings.zone)})." if hours
                else self._no_notice_reason(episode))
        text = (f"CRS episode for *{episode.patient_label}* resolved by <@{user}>; its reminders are cancelled. "
                f"{when}")
        if episode.thread_ts:
            self.sender.post(channel, {"text": text}, thread_ts=episode.thread_ts)
        return render_ephemeral("Episode resolved", text)

    def set_oncall(self, channel: str, user: str, rest: str) -> Payload:
        """`/crs oncall @primary [@secondary] [secondary=15m] [channel=15m] [repeat=15m]`: the channel's chain."""
        example = "/crs oncall @jane @omar secondary=10m channel=15m"
        mentions: list[str] = []
        delays: dict[str, timedelta] = {}
        for token in rest.split():
            key, eq, value = token.partition("=")
            if eq:
                if key.lower() not in ("secondary", "channel", "repeat"):
                    raise InputError("oncall", f"`{key}` is not a chain setting.",
                                     "secondary=, channel= or repeat= followed by a duration", example)
                try:
                    delays[key.lower()] = parse_duration(value)
                except ValueError as exc:
                    raise InputError("oncall", f"`{token}`: {exc}.", "a duration like 10m or 1h", example) from None
                continue
            if not re.fullmatch(r"<(@[UW][A-Z0-9]+|!subteam\^[A-Z0-9]+)(\|[^>]*)?>", token):
                raise InputError("oncall", f"`{token}` is not a Slack user or user group mention.",
                                 "@user or @usergroup (pick it from Slack's autocomplete)", example)
            mentions.append(token.split("|")[0] + ">")
        if not 1 <= len(mentions) <= 2:
            raise InputError("oncall", "name the primary on-call and, optionally, a secondary "
                             f"({len(mentions)} mentions given).", "@primary [@secondary] [secondary=15m]", example)
        oncall = self.store.set_oncall(channel, mentions[0], user, secondary=mentions[1] if len(mentions) > 1 else None,
                                       secondary_after=delays.get("secondary"), channel_after=delays.get("channel"),
                                       repeat=delays.get("repeat"))
        if self.reminders is None:
            return render_ephemeral("On-call chain set", f"Reminders in this channel will mention {mentions[0]}.")
        chain = self.reminders.policy.chain(oncall)
        return render_ephemeral("On-call chain set", "Reminders in this channel: " + chain_text(
            chain.primary, chain.secondary, chain.secondary_after, chain.channel_after, chain.repeat) + ".")

    # ---------------------------------------------------------------- buttons

    def button(self, action: str, value: str, channel: str, user: str, trigger_id: str | None,
               message_ts: str | None) -> str:
        """Handle a button on an assessment or reminder; returns the line added to the message."""
        data = json.loads(value or "{}")
        episode_id = data.get("e")
        if action == ActionId.REASSESSED:
            self._answer(episode_id, user, AnswerAction.REASSESSED)
            self.open_form(channel, trigger_id, prefill=data.get("t"))
            return f":stethoscope: <@{user}> is reassessing"
        if action == ActionId.NEW_ASSESSMENT:
            prefill = " ".join(p for p in (data.get("t") or "").split() if p.split("=")[0] in ("patient", "product"))
            self.open_form(channel, trigger_id, prefill=prefill or None)
            return f":memo: <@{user}> started a new assessment"
        if action == ActionId.SNOOZE:
            if episode_id is None:
                return f":zzz: <@{user}> snoozed (no patient label, so no reminder is tracked)"
            outcome = self._answer(episode_id, user, AnswerAction.SNOOZE)
            until = f" (until {slack_time(outcome.snoozed_until, self.settings.zone)})" if outcome else ""
            return f":zzz: <@{user}> snoozed this reminder{until}; a later reminder keeps its time"
        if action == ActionId.ACK:
            if episode_id is not None:
                self._answer(episode_id, user, AnswerAction.ACK)
            return f":raising_hand: <@{user}> is on it: escalation stopped"
        if action == ActionId.RESOLVED:
            if episode_id is None:
                return f":white_check_mark: <@{user}> marked this resolved (no patient label, nothing tracked)"
            episode = self.store.get_episode(episode_id)
            if episode is None or not episode.is_open:
                return f":information_source: <@{user}>: this episode was already resolved"
            self.resolve(channel, user, episode.patient_label, episode_id=episode_id)
            return f":white_check_mark: Resolved by <@{user}>"
        raise InputError(None, f"unknown button `{action}`.")

    def _answer(self, episode_id: int | None, user: str, action: str) -> AnswerOutcome | None:
        if episode_id is None or self.reminders is None:
            return None
        return self.reminders.answer(user_id=user, action=action, episode_id=episode_id)

    # -------------------------------------------------------------- reminders

    def render_reminder(self, due: DueReminder) -> Payload:
        """The words of one (possibly coalesced) reminder post; the engine's notifier posts it."""
        ep = due.episode
        chain = due.chain
        target = chain.reminder_target() if chain else None
        value = button_value(e=ep.id, t=f"patient={ep.patient_label} product={ep.product}")
        if due.kind == ReminderKind.SYMPTOM_FREE:
            hours = self.symptom_free_hours(ep) or 0
            return symptom_free_message(ep, hours, self.rulebooks[ep.product].next_dose.source)  # type: ignore
        step = due.escalation_step
        if step is not None:
            # A reassessment merged with its overdue escalation has waited the escalation delay plus the outage.
            waited = (chain.waited(step.step) if chain else timedelta(0)) + \
                (due.late_by if due.kind != ReminderKind.ESCALATION else timedelta(0))
            return escalation_message(ep, step.mention, step.is_channel, waited, value, SNOOZE)
        return reminder_message(ep, target, bool(chain and chain.is_set), value, due.late_by, due.coalesced, SNOOZE)
