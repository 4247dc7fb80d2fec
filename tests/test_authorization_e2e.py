"""Authorization over real HTTP (issue 7) and episodes keeping their product (issue 9), against a real
`crsbot serve` with an allow-list of two wards, driven with requests signed as Slack signs them.

The attacker here holds a valid Slack signature (a workspace member clicking, or replaying a click with
edited fields): what the bot must not trust is what the body *says*: button values and form metadata.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from typing import Any

import pytest

from bot.seal import Sealer, button_scope, form_scope
from bot.storage.db import default_database_url, make_engine
from bot.storage.store import Store
from bot.testing.slack_fake import RecordedCall
from messages.ids import ActionId
from tests.slack_support import RESPONSE_URL_METHOD, Served, served

WARD_A, WARD_B, OUTSIDE = "C0WARDA01", "C0WARDB01", "C0OUTSIDE1"
wards = served("wards", env={"CRSBOT_ALLOWED_CHANNELS": f"{WARD_A},{WARD_B}"})
GRADE_3 = "temp=39 sbp=85 pressor=1"


def store_of(served_: Served) -> Iterator[Store]:
    """The server's own SQLite database, read beside it (WAL allows a second reader)."""
    engine = make_engine(default_database_url(served_.data_dir))
    yield Store(engine)
    engine.dispose()


@pytest.fixture(scope="module")
def store(wards: Served) -> Iterator[Store]:
    yield from store_of(wards)


def post_graded(served_: Served, channel: str, text: str) -> dict[str, Any]:
    mark = served_.mark()
    assert served_.slash(text, channel=channel).status == 200

    def posted(call: RecordedCall) -> bool:
        return call.ok and call.method == "chat.postMessage" and call.params.get("channel") == channel
    call = served_.wait_for(posted, after=mark)
    return next(m for m in served_.fake.messages(channel) if m["ts"] == call.response["ts"])


def refusal_to(served_: Served, channel: str, mark: int) -> str:
    """The ephemeral refusal the clicking/typing user got through the response URL."""
    def told(call: RecordedCall) -> bool:
        return call.method == RESPONSE_URL_METHOD and call.response.get("channel") == channel
    return str(served_.wait_for(told, after=mark).params["text"])


def with_value(message: dict[str, Any], action_id: str, value: str) -> dict[str, Any]:
    """`message` with the value of button `action_id` replaced (what an attacker edits)."""
    edited = copy.deepcopy(message)
    for holder in [edited, *(edited.get("attachments") or [])]:
        for block in holder.get("blocks") or []:
            for element in block.get("elements") or []:
                if element.get("action_id") == action_id:
                    element["value"] = value
    return edited


def button_value(message: dict[str, Any], action_id: str) -> dict[str, Any]:
    for holder in [message, *(message.get("attachments") or [])]:
        for block in holder.get("blocks") or []:
            for element in block.get("elements") or []:
                if element.get("action_id") == action_id:
                    return dict(json.loads(element["value"]))
    raise AssertionError(f"no {action_id} button")


def changed_nothing(served_: Served, mark: int, channel: str) -> None:
    """No message posted or edited in `channel` since `mark`."""
    acted = [c.method for c in served_.calls_since(mark, "chat.postMessage", "chat.update", "views.open")
             if c.params.get("channel") == channel or c.method == "views.open"]
    assert acted == [], acted


def refusals(store: Store) -> list[Any]:
    return [e for e in store.iter_audit() if e.action == "refused"]


# --------------------------------------------------------------------------- buttons across channels


def test_a_click_in_ward_a_on_ward_b_s_button_changes_nothing_in_b(wards: Served, store: Store) -> None:
    message = post_graded(wards, WARD_B, f"{GRADE_3} patient=bed71")
    before = store.find_open_episode(WARD_B, "bed71")
    assert before is not None
    seen = len(refusals(store))

    mark = wards.mark()
    assert wards.click(message, ActionId.RESOLVED.value, channel=WARD_A).status == 200
    text = refusal_to(wards, WARD_A, mark)
    assert "nothing was changed" in text
    changed_nothing(wards, mark, WARD_B)
    changed_nothing(wards, mark, WARD_A)
    after = store.find_open_episode(WARD_B, "bed71")
    assert after is not None and after.status == "open", "B's episode must stay open"
    assert not store.reminders(episode_id=before.id, status="answered")
    audited = refusals(store)[seen:]
    assert [e.channel_id for e in audited] == [WARD_A]
    assert audited[0].detail["reason"] == "unsealed_value"
    assert "bed71" not in json.dumps([e.detail for e in audited]) and audited[0].patient_label is None


def test_a_forged_value_naming_b_s_episode_is_refused(wards: Served, store: Store) -> None:
    victim = post_graded(wards, WARD_B, f"{GRADE_3} patient=bed72")
    episode = store.find_open_episode(WARD_B, "bed72")
    assert episode is not None
    own = post_graded(wards, WARD_A, GRADE_3)
    for value in (json.dumps({"e": episode.id}),  # unsealed
                  json.dumps({**button_value(victim, ActionId.RESOLVED.value), "e": episode.id}),  # B's seal, in A
                  json.dumps({**button_value(own, ActionId.RESOLVED.value), "e": episode.id})):  # A's seal, edited
        mark = wards.mark()
        forged = with_value(own, ActionId.RESOLVED.value, value)
        assert wards.click(forged, ActionId.RESOLVED.value, channel=WARD_A).status == 200
        assert "nothing was changed" in refusal_to(wards, WARD_A, mark)
        changed_nothing(wards, mark, WARD_B)
    assert store.get_episode(episode.id).status == "open"  # type: ignore[union-attr]
    assert not [r for r in store.reminders(episode_id=episode.id) if r.answered_by]


def test_even_a_correctly_sealed_value_must_name_an_episode_of_this_channel(wards: Served, store: Store) -> None:
    """Belt and braces: should a value ever be sealed for the wrong channel, the database check refuses it."""
    post_graded(wards, WARD_B, f"{GRADE_3} patient=bed73")
    episode = store.find_open_episode(WARD_B, "bed73")
    assert episode is not None
    own = post_graded(wards, WARD_A, GRADE_3)
    sealed = Sealer(wards.secret).seal(button_scope(WARD_A), e=episode.id, t="patient=bed73")
    mark = wards.mark()
    assert wards.click(with_value(own, ActionId.RESOLVED.value, sealed), ActionId.RESOLVED.value,
                       channel=WARD_A).status == 200
    assert "another channel" in refusal_to(wards, WARD_A, mark)
    changed_nothing(wards, mark, WARD_B)
    assert store.get_episode(episode.id).status == "open"  # type: ignore[union-attr]
    assert refusals(store)[-1].detail["reason"] == "episode_in_other_channel"


def test_a_click_outside_the_allow_list_is_refused(wards: Served, store: Store) -> None:
    message = post_graded(wards, WARD_B, f"{GRADE_3} patient=bed74")
    mark = wards.mark()
    assert wards.click(message, ActionId.RESOLVED.value, channel=OUTSIDE).status == 200
    assert "not enabled in this channel" in refusal_to(wards, OUTSIDE, mark)
    changed_nothing(wards, mark, WARD_B)
    changed_nothing(wards, mark, OUTSIDE)
    assert store.find_open_episode(WARD_B, "bed74") is not None
    assert refusals(store)[-1].detail["reason"] == "channel_not_allowed"


def test_the_same_click_in_its_own_channel_works(wards: Served, store: Store) -> None:
    """The refusals above are about the channel, not the button: this one is allowed."""
    message = post_graded(wards, WARD_B, f"{GRADE_3} patient=bed75")
    mark = wards.mark()
    assert wards.click(message, ActionId.RESOLVED.value, channel=WARD_B).status == 200

    def edited(call: RecordedCall) -> bool:
        return call.ok and call.method == "chat.update" and call.params.get("channel") == WARD_B
    wards.wait_for(edited, after=mark)
    assert store.find_open_episode(WARD_B, "bed75") is None


# --------------------------------------------------------------------------- reminder buttons across channels

# A second server whose reminders fall due in seconds, so ward B's reminder (with its Snooze and "I'm on
# it" buttons) is a real post. Reminders repeat in B throughout; what must not happen is an answer.
REMINDER_SECONDS = 2
reminding = served("reminding", env={
    "CRSBOT_ALLOWED_CHANNELS": f"{WARD_A},{WARD_B}",
    "CRSBOT_REASSESS_INTERVALS": ",".join(f"{g}={REMINDER_SECONDS}s" for g in (1, 2, 3, 4)),
    "CRSBOT_TICK_SECONDS": "0.2",
})


@pytest.fixture(scope="module")
def reminding_store(reminding: Served) -> Iterator[Store]:
    yield from store_of(reminding)


def posted_reminder(served_: Served, channel: str, patient: str) -> dict[str, Any]:
    """The first reminder posted in `channel` for `patient` after grading them there."""
    mark = served_.mark()
    assert served_.slash(f"{GRADE_3} patient={patient}", channel=channel).status == 200

    def reminder(call: RecordedCall) -> bool:
        return (call.ok and call.method == "chat.postMessage" and call.params.get("channel") == channel
                and str(call.params.get("text", "")).startswith(":alarm_clock:")
                and f"*{patient}*" in str(call.params.get("text")))
    call = served_.wait_for(reminder, after=mark, timeout=REMINDER_SECONDS + 15)
    return next(m for m in served_.fake.messages(channel) if m["ts"] == call.response["ts"])


def answers(store: Store, episode_id: int) -> list[Any]:
    """What a Snooze or "I'm on it" leaves: answer audits, answered reminders, a cancelled reassess."""
    audited = [e for e in store.iter_audit()
               if e.action == "reminder_answered" and (e.detail or {}).get("episode_id") == episode_id]
    marked = [r for r in store.reminders(episode_id=episode_id) if r.answered_by or r.status == "cancelled"]
    return [*audited, *marked]


@pytest.mark.parametrize(("action", "patient"), [(ActionId.SNOOZE, "bed81"), (ActionId.ACK, "bed82")],
                         ids=["snooze", "on-it"])
def test_a_reminder_button_from_ward_b_clicked_in_ward_a_changes_nothing(
        reminding: Served, reminding_store: Store, action: ActionId, patient: str) -> None:
    reminder = posted_reminder(reminding, WARD_B, patient)
    episode = reminding_store.find_open_episode(WARD_B, patient)
    assert episode is not None
    seen = len(refusals(reminding_store))

    mark = reminding.mark()
    assert reminding.click(reminder, action.value, channel=WARD_A).status == 200
    assert "nothing was changed" in refusal_to(reminding, WARD_A, mark)
    changed_nothing(reminding, mark, WARD_A)
    assert reminding.calls_since(mark, "chat.update") == []  # no note on B's reminder, nor anywhere
    assert answers(reminding_store, episode.id) == []
    audited = refusals(reminding_store)[seen:]
    assert [(e.channel_id, e.detail["reason"]) for e in audited] == [(WARD_A, "unsealed_value")]
    assert patient not in json.dumps([e.detail for e in audited]) and audited[0].patient_label is None

    # The same button where it was posted works: the refusal above is about the channel.
    mark = reminding.mark()
    assert reminding.click(reminder, action.value, channel=WARD_B).status == 200
    reminding.wait_for(lambda c: c.ok and c.method == "chat.update" and c.params.get("channel") == WARD_B
                       and c.params.get("ts") == reminder["ts"], after=mark)
    assert answers(reminding_store, episode.id)


# --------------------------------------------------------------------------- forms across channels


def open_form(served_: Served, channel: str, text: str = "form") -> dict[str, Any]:
    mark = served_.mark()
    assert served_.slash(text, channel=channel).status == 200
    return served_.wait_for("views.open", after=mark).response["view"]


@pytest.mark.parametrize("target", [WARD_B, OUTSIDE])
def test_a_form_from_ward_a_cannot_post_or_record_elsewhere(wards: Served, store: Store, target: str) -> None:
    view = open_form(wards, WARD_A)
    metadata = json.loads(view["private_metadata"])
    forged_views = [
        {**view, "private_metadata": json.dumps({**metadata, "channel": target})},  # A's seal, edited
        {**view, "private_metadata": json.dumps({"channel": target})},  # unsealed
    ]
    for forged in forged_views:
        mark = wards.mark()
        response = wards.submit(forged, {"temp": "39", "sbp": "85", "pressor": "1", "patient": "bed76"})
        assert response.status == 200
        answer = response.json()
        assert answer["response_action"] == "errors"
        assert "nothing was changed" in answer["errors"]["patient"]
        changed_nothing(wards, mark, target)
    assert store.find_open_episode(target, "bed76") is None
    assert refusals(store)[-1].detail == {"reason": "unsealed_value", "entry": "view_submission"}


def test_a_form_sealed_for_a_channel_outside_the_allow_list_is_refused(wards: Served, store: Store) -> None:
    view = open_form(wards, WARD_A)
    sealed = Sealer(wards.secret).seal(form_scope(OUTSIDE), channel=OUTSIDE)
    mark = wards.mark()
    answer = wards.submit({**view, "private_metadata": sealed}, {"temp": "39", "patient": "bed77"}).json()
    assert "not enabled in this channel" in answer["errors"]["patient"]
    changed_nothing(wards, mark, OUTSIDE)
    assert store.find_open_episode(OUTSIDE, "bed77") is None


# --------------------------------------------------------------------------- episodes keep their product


def test_a_follow_up_uses_the_open_episode_s_product(wards: Served, store: Store) -> None:
    post_graded(wards, WARD_A, f"{GRADE_3} product=velo patient=bed21")
    post_graded(wards, WARD_A, "temp=38.2 o2=2 patient=bed21")
    (item,) = store.episode_history(WARD_A, "bed21")
    assert item.episode.product == "velo"
    assert [a.rulebook_id for a in item.assessments] == ["crsbot-default-lunsumio-velo"] * 2
    assert [a.result["product"] for a in item.assessments] == ["velo", "velo"]


def test_a_conflicting_product_is_refused_with_a_clear_message(wards: Served, store: Store) -> None:
    post_graded(wards, WARD_A, f"{GRADE_3} product=velo patient=bed22")
    mark = wards.mark()
    assert wards.slash("temp=38.2 product=iv patient=bed22", channel=WARD_A).status == 200
    text = refusal_to(wards, WARD_A, mark)
    assert "`product`" in text and "VELO" in text and "keeps its product" in text
    changed_nothing(wards, mark, WARD_A)
    (item,) = store.episode_history(WARD_A, "bed22")
    assert len(item.assessments) == 1


def test_the_form_prefill_carries_the_episode_s_product(wards: Served) -> None:
    message = post_graded(wards, WARD_A, f"{GRADE_3} product=velo patient=bed23")
    for view in (open_form(wards, WARD_A, "form patient=bed23"),):
        chosen = {b["block_id"]: (b["element"].get("initial_option") or {}).get("value")
                  for b in view["blocks"] if b["type"] == "input"}
        assert chosen["product"] == "velo"
    follow_up = post_graded(wards, WARD_A, "temp=38.2 patient=bed23")  # no product= typed
    for source in (message, follow_up):
        mark = wards.mark()
        assert wards.click(source, ActionId.NEW_ASSESSMENT.value, channel=WARD_A).status == 200
        view = wards.wait_for("views.open", after=mark).params["view"]
        chosen = {b["block_id"]: (b["element"].get("initial_option") or {}).get("value")
                  for b in view["blocks"] if b["type"] == "input"}
        assert chosen["product"] == "velo"
