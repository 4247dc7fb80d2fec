"""Assessments: grade what was typed (through grading.pipeline, the one path), record it, post it."""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from bot.clock import as_utc
from grading.pipeline import (
    CrsAssessment,
    IcansAssessment,
    assess_crs_case,
    assess_delay,
    assess_icans_case,
    assess_premed,
)
from bot.handlers.deps import Call, Deps, Payload
from bot.seal import button_scope, form_scope
from grading.errors import InputError
from grading.models import CrsReport, IcansReport
from messages.blocks import assessment_buttons, render_message
from messages.episodes import UNTRACKED_FOOTER, no_chain_prompt, reminder_footer, with_notice
from messages.form import build_form
from messages.layout import crs_layout, layout_for
from messages.refusals import FORM_NEEDS_TRIGGER

if TYPE_CHECKING:
    from bot.storage.records import Episode

# How long a follow-up waits for the episode's first reply to be posted: a post with slack_sdk's retries
# (a 429 or two) takes seconds at worst; the wait runs after the ack, on a listener thread.
FIRST_REPLY_WAIT = timedelta(seconds=5)


def grade(deps: Deps, call: Call) -> CrsAssessment:
    """The middleware loaded the patient's history with the request, so this is the pure pipeline."""
    return assess_crs_case(call.text, deps.settings.site, deps.rulebooks, call.history)


def crs(deps: Deps, call: Call) -> None:
    publish_crs(deps, call, grade(deps, call))


def publish_crs(deps: Deps, call: Call, case: CrsAssessment) -> None:
    """One write (assessment, episode, recurrence link, audit, next reminder), one post, one ts update."""
    report, rulebook = case.report, case.rulebook.rulebook
    tracked = report.input.patient is not None and deps.reminders is not None
    inputs, stored = _documents(call, report)
    recorded = deps.store.record_assessment(
        call.channel, report.input.patient, case.product, "crs", inputs, stored, report.grade, rulebook.id, rulebook.version, call.user, recurrent_of=case.recurrent_of,
        restart_cadence=tracked, next_reassess_at=_next_reassess_at(deps, case.basis) if tracked else None)
    episode = recorded.episode
    footer = None
    if episode and deps.reminders is not None:
        deps.reminders.wake()  # the next reassess was booked with the assessment: re-read the next due time
        footer = reminder_footer(deps.reminders.policy.interval_for(case.basis) if recorded.next_reminder else None)
    elif not report.input.patient:
        footer = UNTRACKED_FOOTER
    value = deps.sealer.seal(button_scope(call.channel), t=call.text, a=recorded.assessment_id,
                             e=episode.id if episode else None)
    payload = render_message(crs_layout(report), assessment_buttons(value, timeline=episode is not None),
                             footer=footer)
    if episode and recorded.is_new_episode and deps.reminders is not None \
            and deps.store.get_oncall(call.channel) is None:
        # In the channel post itself, so the whole team sees that nobody is set to be paged.
        payload = with_notice(payload, no_chain_prompt(call.user))
    post_assessment(deps, call.channel, episode, recorded.is_new_episode, recorded.assessment_id, payload)


def _documents(call: Call, report: CrsReport | IcansReport) -> tuple[dict[str, Any], dict[str, Any]]:
    """(inputs, report) as an assessment stores them: what was typed and read, and the whole report, which
    is dumped once (its `input` is what was read)."""
    stored = report.model_dump(mode="json")
    return {"text": call.text, "parsed": stored["input"]}, stored


def _next_reassess_at(deps: Deps, basis: int) -> datetime | None:
    """The team's cadence for this grade (the reminder engine's policy); None books nothing."""
    assert deps.reminders is not None
    interval = deps.reminders.policy.interval_for(basis)
    return as_utc(deps.reminders.clock.now()) + interval if interval is not None else None


def icans(deps: Deps, call: Call) -> None:
    case: IcansAssessment = assess_icans_case(call.text, deps.settings.site, deps.rulebooks, call.history)
    report, rulebook = case.report, case.rulebook.rulebook
    inputs, stored = _documents(call, report)
    recorded = deps.store.record_assessment(
        call.channel, report.input.patient, case.product, "icans", inputs, stored, report.grade, rulebook.id, rulebook.version, call.user)
    post_assessment(deps, call.channel, recorded.episode, recorded.is_new_episode, recorded.assessment_id,
                    render_message(layout_for(report)))


def post_assessment(deps: Deps, channel: str, episode: Episode | None, new: bool, assessment_id: int,
                    payload: Payload) -> None:
    """A new episode starts a thread; later assessments go in it and are also shown in the channel.

    Only a new episode's first reply is written back (its ts is the thread reminders reply in), so a
    follow-up or an untracked grade costs one write; every reply names its assessment id in its sealed
    button values, which links the Slack message to the audit trail."""
    thread = None
    if episode is not None and not new:
        thread = episode.thread_ts or _first_reply_thread(deps, episode.id)
    if thread:
        deps.sender.post(channel, {**payload, "reply_broadcast": True}, thread_ts=thread)
        return
    ts = deps.sender.post(channel, payload)
    if episode is not None:
        deps.store.set_message_ts(assessment_id, ts, episode.id)


def _first_reply_thread(deps: Deps, episode_id: int) -> str | None:
    """A follow-up typed while the episode's first reply is still being posted (Slack slow, or two people
    a moment apart) waits for that reply's ts, so it goes in the episode's thread rather than starting a
    second one. None after FIRST_REPLY_WAIT (the first post failed): this reply then starts the thread."""
    deadline = time.monotonic() + FIRST_REPLY_WAIT.total_seconds()
    while True:
        thread = deps.store.episode_thread(episode_id)
        if thread or time.monotonic() >= deadline:
            return thread
        time.sleep(0.05)


def delay(deps: Deps, call: Call) -> Payload:
    return render_message(layout_for(assess_delay(call.text, deps.settings.site, deps.rulebooks)))


def premed(deps: Deps, call: Call) -> Payload:
    return render_message(layout_for(assess_premed(call.text, deps.settings.site, deps.rulebooks)))


def form(deps: Deps, call: Call) -> None:
    open_form(deps, call, call.text or None)


def open_form(deps: Deps, call: Call, prefill: str | None) -> None:
    """The form is sealed to this channel and user; an open episode's product is prefilled."""
    if not call.trigger_id:
        raise InputError(None, FORM_NEEDS_TRIGGER)
    episode = call.episode if call.episode is not None and call.episode.is_open else None
    open_product = episode.product if episode is not None else call.history.open_product
    if open_product and "product=" not in (prefill or ""):
        prefill = f"{prefill or ''} product={open_product}".strip()
    view = build_form(call.channel, prefill)
    view["private_metadata"] = deps.sealer.seal(form_scope(call.channel), channel=call.channel)
    deps.sender.open_view(call.trigger_id, view)
