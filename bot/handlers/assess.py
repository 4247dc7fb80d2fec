"""Assessments: grade what was typed (through grading.pipeline, the one path), record it, post it."""

from __future__ import annotations

from grading.models import Product
from grading.pipeline import (
    NO_HISTORY,
    CrsAssessment,
    IcansAssessment,
    PatientHistory,
    PriorEpisode,
    assess_crs_case,
    assess_delay,
    assess_icans_case,
    assess_premed,
)
from bot.handlers.deps import Call, Deps, Payload
from bot.seal import button_scope, form_scope
from grading.errors import InputError
from messages.blocks import assessment_buttons, render_message
from messages.episodes import UNTRACKED_FOOTER, reminder_footer
from messages.form import build_form
from messages.layout import crs_layout, layout_for
from messages.refusals import FORM_NEEDS_TRIGGER

PRODUCTS: tuple[Product, ...] = ("iv", "velo")


def history(deps: Deps, channel: str, patient: str | None) -> PatientHistory:
    """The records the pipeline needs about this patient in this channel."""
    if patient is None:
        return NO_HISTORY
    found = deps.store.find_open_episode(channel, patient)
    prior = {}
    for product in PRODUCTS:
        episode = deps.store.last_resolved_episode(channel, patient, product)
        if episode is not None:
            prior[product] = PriorEpisode(episode.id, episode.worst_grade)
    return PatientHistory(found.product if found else None, prior)  # type: ignore[arg-type]


def grade(deps: Deps, call: Call) -> CrsAssessment:
    return assess_crs_case(call.text, deps.settings.site, deps.rulebooks, history(deps, call.channel, call.patient))


def crs(deps: Deps, call: Call) -> None:
    publish_crs(deps, call, grade(deps, call))


def publish_crs(deps: Deps, call: Call, case: CrsAssessment) -> None:
    report, rulebook = case.report, case.rulebook.rulebook
    recorded = deps.store.record_assessment(
        call.channel, report.input.patient, case.product, "crs",
        {"text": call.text, "parsed": report.input.model_dump(mode="json")}, report.model_dump(mode="json"),
        report.grade, rulebook.id, rulebook.version, call.user)
    episode = recorded.episode
    if episode and case.recurrent_of is not None and episode.recurrent_of is None:
        episode = deps.store.mark_recurrence(episode.id, case.recurrent_of)
    footer = None
    if episode and deps.reminders is not None:
        due = deps.reminders.schedule_after_assessment(episode.id, case.basis, user_id=call.user)
        footer = reminder_footer(due.due_at if due else None)
    elif not report.input.patient:
        footer = UNTRACKED_FOOTER
    value = deps.sealer.seal(button_scope(call.channel), t=call.text, a=recorded.assessment_id,
                             e=episode.id if episode else None)
    payload = render_message(crs_layout(report), assessment_buttons(value), footer=footer)
    post_assessment(deps, call.channel, episode, recorded.is_new_episode, recorded.assessment_id, payload)


def icans(deps: Deps, call: Call) -> None:
    case: IcansAssessment = assess_icans_case(call.text, deps.settings.site, deps.rulebooks,
                                              history(deps, call.channel, call.patient))
    report, rulebook = case.report, case.rulebook.rulebook
    recorded = deps.store.record_assessment(
        call.channel, report.input.patient, case.product, "icans",
        {"text": call.text, "parsed": report.input.model_dump(mode="json")}, report.model_dump(mode="json"),
        report.grade, rulebook.id, rulebook.version, call.user)
    post_assessment(deps, call.channel, recorded.episode, recorded.is_new_episode, recorded.assessment_id,
                    render_message(layout_for(report)))


def post_assessment(deps: Deps, channel: str, episode: object, new: bool, assessment_id: int,
                    payload: Payload) -> None:
    """A new episode starts a thread; later assessments go in it and are also shown in the channel."""
    thread_ts = getattr(episode, "thread_ts", None)
    if episode is not None and not new and thread_ts:
        ts = deps.sender.post(channel, {**payload, "reply_broadcast": True}, thread_ts=thread_ts)
    else:
        ts = deps.sender.post(channel, payload)
        if episode is not None:
            deps.store.set_episode_thread(episode.id, ts)  # type: ignore[attr-defined]
    deps.store.set_assessment_message(assessment_id, ts)


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
    open_product = history(deps, call.channel, call.patient).open_product if call.patient else None
    if open_product and "product=" not in (prefill or ""):
        prefill = f"{prefill or ''} product={open_product}".strip()
    view = build_form(call.channel, prefill)
    view["private_metadata"] = deps.sealer.seal(form_scope(call.channel), channel=call.channel)
    deps.sender.open_view(call.trigger_id, view)
