"""The /crs grammar (issue 2): key=value pairs, case-insensitive, any order, `:` for `=`, and every
error naming the key, the accepted form and an example."""

from __future__ import annotations

import pytest

from grading.errors import InputError
from grading.models import Device
from grading.parse import parse_crs, parse_delay, parse_icans, parse_premed, tokenize


def error_for(parser, text: str) -> InputError:
    with pytest.raises(InputError) as err:
        parser(text)
    return err.value


# --- Tokens ------------------------------------------------------------------------------------

@pytest.mark.parametrize(
    "text",
    [
        pytest.param("temp=39 pressor=1", id="equals"),
        pytest.param("temp:39 pressor:1", id="colon"),
        pytest.param("TEMP=39 PRESSOR=1", id="upper-case"),
        pytest.param("Temp=39 Pressor=1", id="mixed-case"),
        pytest.param("temp = 39 pressor = 1", id="spaces-around-equals"),
        pytest.param("temp= 39 pressor =1", id="uneven-spaces"),
        pytest.param("temp : 39   pressor:1", id="spaces-around-colon"),
        pytest.param("pressor=1 temp=39", id="any-order"),
        pytest.param("\u201ctemp=39 pressor=1\u201d", id="smart-quotes-around"),
        pytest.param("  temp=39\tpressor=1\n", id="tabs-and-newlines"),
        pytest.param("t=39 pressors=1", id="aliases"),
    ],
)
def test_equivalent_spellings_parse_the_same(text: str) -> None:
    inp = parse_crs(text)
    assert inp.temp_c == 39.0
    assert inp.pressors == 1


def test_tokenize_keeps_value_after_first_separator() -> None:
    tokens = tokenize("bp=85/50 o2=4l/min")
    assert [(t.key, t.value) for t in tokens] == [("bp", "85/50"), ("o2", "4l/min")]


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("temp 39", id="bare-word"),
        pytest.param("39", id="bare-number"),
        pytest.param("temp=39 fever", id="trailing-bare-word"),
        pytest.param("=39", id="no-key"),
    ],
)
def test_bare_token_without_separator_is_refused(text: str) -> None:
    err = error_for(parse_crs, text)
    assert err.key is None
    assert "is not a `key=value` pair" in err.problem
    assert "Example:" in str(err)


def test_key_without_value_is_refused() -> None:
    err = error_for(parse_crs, "temp=")
    assert err.key == "temp"
    assert "no value" in err.problem


def test_empty_text_has_nothing_to_grade() -> None:
    err = error_for(parse_crs, "   ")
    assert "nothing to grade" in err.problem


# --- Unknown keys get "did you mean" -------------------------------------------------------------

@pytest.mark.parametrize(
    "text, key, suggestion",
    [
        pytest.param("tmp=39", "tmp", "temp", id="tmp->temp"),
        pytest.param("presor=1", "presor", "pressor", id="presor->pressor"),
        pytest.param("vasopresin=yes", "vasopresin", "vasopressin", id="vasopresin->vasopressin"),
        pytest.param("devise=nc", "devise", "device", id="devise->device"),
        pytest.param("maskd=yes", "maskd", "masked", id="maskd->masked"),
        pytest.param("Weigth=70", "weigth", "weight", id="case-insensitive-typo"),
    ],
)
def test_unknown_key_gets_did_you_mean(text: str, key: str, suggestion: str) -> None:
    err = error_for(parse_crs, text)
    assert err.key == key
    assert f"Did you mean `{suggestion}`?" in err.problem
    assert "temp, sbp" in err.accepted


def test_unknown_key_without_close_match_lists_the_keys() -> None:
    err = error_for(parse_crs, "zzzz=1")
    assert err.key == "zzzz"
    assert "Did you mean" not in err.problem
    assert "keys: temp, sbp, fluids, pressor, vasopressin, o2, device" in err.accepted


@pytest.mark.parametrize(
    "parser, text, key, suggestion",
    [
        pytest.param(parse_icans, "icee=5", "icee", "ice", id="icans-icee->ice"),
        pytest.param(parse_icans, "seizur=rapid", "seizur", "seizure", id="icans-seizur"),
        pytest.param(parse_delay, "lst=c1d1 since=10d", "lst", "last", id="delay-lst->last"),
        pytest.param(parse_premed, "cycel=3", "cycel", "cycle", id="premed-cycel->cycle"),
    ],
)
def test_other_commands_also_suggest(parser, text: str, key: str, suggestion: str) -> None:
    err = error_for(parser, text)
    assert err.key == key
    assert f"Did you mean `{suggestion}`?" in err.problem


# --- Impossible values refused, not clamped, naming the key ------------------------------------------

@pytest.mark.parametrize(
    "text, key, says",
    [
        pytest.param("temp=50", "temp", "neither", id="temp-50"),
        pytest.param("sbp=400", "sbp", "400", id="sbp-400"),
        pytest.param("sbp=20", "sbp", "20", id="sbp-20"),
        pytest.param("bp=120/130", "bp", "diastolic", id="diastolic-above-systolic"),
        pytest.param("bp=high", "bp", "not a blood pressure", id="bp-not-a-number"),
        pytest.param("o2=100", "o2", "100 L/min", id="o2-100"),
        pytest.param("o2=lots", "o2", "not an oxygen device", id="o2-not-a-device"),
        pytest.param("weight=0", "weight", "0 kg", id="weight-0"),
        pytest.param("weight=400", "weight", "400 kg", id="weight-400"),
        pytest.param("wt=heavy", "wt", "not a weight", id="weight-alias-named-as-typed"),
        pytest.param("spo2=120", "spo2", "120", id="spo2-120"),
        pytest.param("pressor=7", "pressor", "not a number of vasopressors", id="pressor-7"),
        pytest.param("pressor=-1", "pressor", "not a number", id="pressor-negative"),
        pytest.param("vaso=maybe", "vaso", "not yes or no", id="bad-boolean"),
        pytest.param("device=tent", "device", "not an oxygen device", id="unknown-device"),
        pytest.param("product=oral", "product", "not one of", id="unknown-product"),
        pytest.param("o2rule=nccn", "o2rule", "not one of", id="unknown-o2rule"),
        pytest.param("patient=bed#1", "patient", "not a bed or study label", id="bad-patient-label"),
    ],
)
def test_impossible_values_are_refused_naming_the_key(text: str, key: str, says: str) -> None:
    err = error_for(parse_crs, f"{text}")
    assert err.key == key
    assert says in err.problem
    message = str(err)
    assert message.startswith(f"`{key}`")
    assert "Accepted:" in message and "Example:" in message


def test_device_typo_gets_did_you_mean() -> None:
    err = error_for(parse_crs, "device=hfcn")
    assert "Did you mean `hfnc`?" in err.problem


# --- Duplicates and conflicts ---------------------------------------------------------------------

@pytest.mark.parametrize(
    "text, key, first",
    [
        pytest.param("temp=39 temp=38", "temp", "temp", id="same-key-twice"),
        pytest.param("temp=39 t=38", "t", "temp", id="alias-of-same-key"),
        pytest.param("pressor=1 pressors=2", "pressors", "pressor", id="pressor-aliases"),
        pytest.param("TEMP=39 temp=39", "temp", "temp", id="case-variant"),
        pytest.param("masked=yes masked=no", "masked", "masked", id="masked-twice-contradicting"),
        pytest.param("toci=yes tocilizumab=no", "tocilizumab", "toci", id="toci-aliases-twice"),
    ],
)
def test_duplicate_keys_are_refused(text: str, key: str, first: str) -> None:
    err = error_for(parse_crs, text)
    assert err.key == key
    assert f"given twice (also as `{first}`)" in err.problem


def test_different_masking_keys_combine() -> None:
    inp = parse_crs("toci=yes steroids=yes antipyretic=no")
    assert inp.masked is True
    assert inp.masked_by == ("tocilizumab", "corticosteroids")


@pytest.mark.parametrize(
    "text, key",
    [
        pytest.param("o2=nc device=hfnc", "device", id="device-vs-o2-device"),
        pytest.param("o2=nc dev=hfnc", "dev", id="conflict-names-key-as-typed"),
        pytest.param("o2=4 device=ra", "o2", id="flow-on-room-air"),
        pytest.param("flow=4 dev=ra", "flow", id="flow-alias-on-room-air"),
    ],
)
def test_oxygen_conflicts_name_the_key_as_typed(text: str, key: str) -> None:
    err = error_for(parse_crs, text)
    assert err.key == key
    assert key in text


# --- Values ----------------------------------------------------------------------------------

@pytest.mark.parametrize("word, value", [(w, True) for w in ("yes", "y", "true", "1", "YES", "True")]
                         + [(w, False) for w in ("no", "n", "false", "0", "No")])
def test_booleans(word: str, value: bool) -> None:
    assert parse_crs(f"vasopressin={word}").vasopressin is value


@pytest.mark.parametrize(
    "o2, flow, device",
    [
        pytest.param("o2=4", 4.0, None, id="flow"),
        pytest.param("o2=4l", 4.0, None, id="flow-l"),
        pytest.param("o2=4lpm", 4.0, None, id="flow-lpm"),
        pytest.param("o2=4l/min", 4.0, None, id="flow-l-per-min"),
        pytest.param("o2=2.5 device=nc", 2.5, Device.NASAL_CANNULA, id="decimal-flow-with-device"),
        pytest.param("oxygen=hfnc", None, Device.HIGH_FLOW_NC, id="device-in-oxygen"),
        pytest.param("device=NIV", None, Device.BIPAP, id="niv-is-bipap"),
        pytest.param("o2=ra", None, Device.ROOM_AIR, id="room-air"),
    ],
)
def test_oxygen_values(o2: str, flow: float | None, device: Device | None) -> None:
    inp = parse_crs(o2)
    assert inp.o2_flow == flow
    assert inp.device == device


def test_blood_pressure_pair() -> None:
    inp = parse_crs("bp=85/50")
    assert (inp.sbp, inp.dbp) == (85, 50)


def test_pressor_yes_counts_one_and_says_so() -> None:
    inp = parse_crs("pressor=yes")
    assert inp.pressors == 1
    assert any("counted as one vasopressor" in n for n in inp.notes)


def test_weight_in_pounds_is_converted_with_a_note() -> None:
    inp = parse_crs("weight=154lb")
    assert inp.weight_kg == pytest.approx(69.9, abs=0.1)
    assert any("154 lb" in n for n in inp.notes)


def test_everything_at_once() -> None:
    inp = parse_crs("temp=101.3f bp=85/50 fluids=yes pressor=1 vaso=yes o2=8 device=nc o2comfort=no spo2=91% "
                    "o2rule=astct masked=yes product=velo patient=bed12 weight=72 recurrent=yes")
    assert inp.model_dump(exclude={"notes", "temp_c"}) == {
        "sbp": 85, "dbp": 50, "fluids": True, "pressors": 1, "vasopressin": True, "o2_flow": 8.0,
        "device": Device.NASAL_CANNULA, "o2_comfort": False, "spo2": 91, "o2rule": "astct", "masked": True,
        "masked_by": ("stated as masked",), "product": "velo", "patient": "bed12", "weight_kg": 72.0,
        "recurrent": True,
    }
    assert inp.temp_c == pytest.approx(38.5)


# --- ICANS, delay, premed grammars ----------------------------------------------------------------

def test_icans_grammar() -> None:
    inp = parse_icans("ICE=6 loc:voice seizure = none motor=no edema=local product=velo")
    assert (inp.ice, inp.loc, inp.seizure, inp.motor, inp.edema, inp.product) == (
        6, "voice", "none", "none", "focal", "velo")


@pytest.mark.parametrize(
    "text, last, days",
    [
        pytest.param("last=c1d1 since=10d", "C1D1", 10, id="days"),
        pytest.param("last=C1D8 since=3w", "C1D8", 21, id="weeks-upper-case"),
        pytest.param("last=c1d15 since=2w3d", "C1D15", 17, id="weeks-and-days"),
        pytest.param("last=c1d1 since=14.5d", "C1D1", 14.5, id="fractional-days"),
        pytest.param("last=c2d1 since=1w", "C2D1", 7, id="c2d1"),
        pytest.param("last=c3d1 since=1w", "C3+D1", 7, id="cycle-3"),
        pytest.param("last=c17d1 ago=5w", "C3+D1", 35, id="cycle-17-alias-ago"),
        pytest.param("lastdose:c1d8 since:6w", "C1D8", 42, id="colon-and-alias"),
    ],
)
def test_delay_grammar(text: str, last: str, days: float) -> None:
    inp = parse_delay(text)
    assert (inp.last, inp.since_days) == (last, days)


@pytest.mark.parametrize(
    "text, key, says",
    [
        pytest.param("last=c1d2 since=10d", "last", "not a dose in the LUNSUMIO schedule", id="c1d2-not-a-dose"),
        pytest.param("last=c2d8 since=10d", "last", "not a dose in the LUNSUMIO schedule", id="c2d8-not-a-dose"),
        pytest.param("last=c18d1 since=10d", "last", "not a dose in the LUNSUMIO schedule", id="cycle-18"),
        pytest.param("last=day1 since=10d", "last", "not a dose position", id="bad-label"),
        pytest.param("last=c1d1 since=10", "since", "a unit is required", id="since-without-unit"),
        pytest.param("last=c1d1 since=600w", "since", "more than ten years", id="since-absurd"),
        pytest.param("last=c1d1 since=10d since=2w", "since", "given twice", id="since-twice"),
    ],
)
def test_delay_errors(text: str, key: str, says: str) -> None:
    err = error_for(parse_delay, text)
    assert err.key == key
    assert says in err.problem


@pytest.mark.parametrize(
    "parser, text, missing",
    [
        pytest.param(parse_delay, "since=10d", "last", id="delay-missing-last"),
        pytest.param(parse_delay, "last=c1d1", "since", id="delay-missing-since"),
        pytest.param(parse_premed, "priorcrs=yes", "cycle", id="premed-missing-cycle"),
    ],
)
def test_missing_required_key_is_named_in_the_message(parser, text: str, missing: str) -> None:
    err = error_for(parser, text)
    # The missing key is named in the message; `key` is reserved for a key that was typed.
    assert err.key is None
    assert f"`{missing}` is required" in str(err)
    assert "Example:" in str(err)


@pytest.mark.parametrize(
    "text, cycle, prior",
    [
        pytest.param("cycle=1", 1, None, id="cycle-1"),
        pytest.param("c=3 priorcrs=yes", 3, True, id="alias-c"),
        pytest.param("CYCLE=17 crs=no", 17, False, id="cycle-17"),
    ],
)
def test_premed_grammar(text: str, cycle: int, prior: bool | None) -> None:
    inp = parse_premed(text)
    assert (inp.cycle, inp.priorcrs) == (cycle, prior)


@pytest.mark.parametrize("cycle", ["0", "18", "2.5", "three", "9" * 5000])
def test_premed_cycle_out_of_range(cycle: str) -> None:
    err = error_for(parse_premed, f"cycle={cycle}")
    assert err.key == "cycle"
    assert "1 to 17" in err.accepted or "1-17" in err.accepted
