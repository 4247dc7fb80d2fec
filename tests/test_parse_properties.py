"""Property tests for the /crs grammar: any text gives a result or an `InputError`; an error about
a specific key names a key that is in the text; nothing else escapes. Fully valid texts also keep
the grading invariants of reference.md section 2."""

from __future__ import annotations

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from bot.rulebooks import default_rulebooks
from grading.errors import InputError
from grading.models import SiteSettings
from grading.parse import CRS_KEYS, DELAY_KEYS, ICANS_KEYS, PREMED_KEYS, parse_crs, parse_delay, parse_icans, parse_premed
from grading.pipeline import assess_crs, assess_delay, assess_icans, assess_premed

BOOKS = default_rulebooks()
SITE = SiteSettings()
FAST = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

COMMANDS = {
    "crs": (CRS_KEYS, parse_crs, assess_crs),
    "icans": (ICANS_KEYS, parse_icans, assess_icans),
    "delay": (DELAY_KEYS, parse_delay, assess_delay),
    "premed": (PREMED_KEYS, parse_premed, assess_premed),
}
ALL_NAMES = sorted({name for keys, _, _ in COMMANDS.values() for spec in keys for name in spec.names})


def check(text: str) -> None:
    """Every parser and pipeline: a result, or an InputError whose key (if any) was typed."""
    for _, parse, assess in COMMANDS.values():
        for call in (lambda: parse(text), lambda: assess(text, SITE, BOOKS)):
            try:
                result = call()
            except InputError as err:
                assert str(err), "an InputError must carry a message"
                if err.key is not None:
                    # casefold: str.lower() is context-sensitive (final sigma), casefold is not.
                    assert err.key.casefold() in text.casefold(), (err.key, text)
                    assert f"`{err.key}`" in err.user_message()
            else:
                assert result is not None


@FAST
@given(st.text())
@example("")
@example("=")
@example("temp=")
@example("\u201ctemp=39\u201d")
@example("te\u201cmp=39")
@example("a\u03a3:b=1")
@example("ice=" + "9" * 5000)
@example("dev=nc o2=hfnc")
@example("flow=4 dev=ra")
def test_arbitrary_text_never_escapes(text: str) -> None:
    check(text)


# Near-valid: real key names (random case), real-looking values, with `=`, `:` or spaced separators.
VALUES = st.one_of(
    st.sampled_from(["yes", "no", "y", "n", "true", "0", "1", "nc", "hfnc", "cpap", "ra", "mask", "venturi",
                     "label", "astct", "iv", "velo", "sc", "voice", "unarousable", "rapid", "prolonged", "focal",
                     "diffuse", "weakness", "none", "c1d1", "c1d8", "c1d15", "c2d1", "c3d1", "c18d1", "10d",
                     "3w", "2w3d", "14.5d", "85/50", "120/130", "101.3f", "38.5c", "39", "6", "5.9", "6.1",
                     "150lb", "91%", "bed12", "", "-1", "1e9", "nan", "inf", "∞", "٣٩", "𝟑𝟗"]),
    st.integers(min_value=-10, max_value=10_000).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(str),
    st.from_regex(r"\d{1,6}(\.\d{1,4})?[a-z%/]{0,4}", fullmatch=True),
    st.integers(min_value=1, max_value=6000).map(lambda n: "9" * n),
    st.text(max_size=12),
)


@st.composite
def near_valid(draw: st.DrawFn) -> str:
    pairs = draw(st.lists(st.tuples(st.sampled_from(ALL_NAMES), VALUES), min_size=0, max_size=8))
    parts = []
    for key, value in pairs:
        key = "".join(c.upper() if draw(st.booleans()) else c for c in key)
        parts.append(f"{key}{draw(st.sampled_from(['=', ':', ' = ', '= ', ' :']))}{value}")
    return draw(st.sampled_from([" ", "  ", "\t"])).join(parts)


@FAST
@given(near_valid())
def test_near_valid_text_never_escapes(text: str) -> None:
    check(text)


# --- Fully valid /crs texts keep the grading invariants ---------------------------------------------

OPTIONAL = {
    "temp": st.sampled_from(["36.5", "37.9", "38", "39.4", "98.6", "100.4", "102f", "38.2c"]),
    "sbp": st.integers(min_value=60, max_value=160).map(str),
    "fluids": st.sampled_from(["yes", "no"]),
    "pressor": st.integers(min_value=0, max_value=6).map(str),
    "vasopressin": st.sampled_from(["yes", "no"]),
    "o2": st.sampled_from(["0", "1", "2", "5.9", "6", "6.1", "15", "hfnc", "cpap", "nrb"]),
    "o2rule": st.sampled_from(["label", "astct"]),
    "masked": st.sampled_from(["yes", "no"]),
    "product": st.sampled_from(["iv", "velo"]),
    "weight": st.sampled_from(["50", "72", "140"]),
    "recurrent": st.sampled_from(["yes", "no"]),
}


@st.composite
def valid_crs(draw: st.DrawFn) -> str:
    chosen = draw(st.dictionaries(st.sampled_from(sorted(OPTIONAL)), st.just(None), min_size=1))
    parts = [f"{k}={draw(OPTIONAL[k])}" for k in chosen]
    return " ".join(draw(st.permutations(parts)))


@FAST
@given(valid_crs())
def test_valid_crs_text_grades_consistently(text: str) -> None:
    report = assess_crs(text, SITE, BOOKS)
    organ = max((f.level for f in report.findings if f.domain != "fever"), default=0)
    fever = any(f.domain == "fever" for f in report.findings)
    assert report.grade in (None, 0, 1, 2, 3, 4)
    assert "o2rule" in [c.key for c in report.conventions]
    if report.fever_masked:
        assert report.grade == max(organ, 1 if fever else 0)
    elif fever:
        assert report.grade == max(organ, 1)
    elif report.input.temp_c is None:
        assert report.grade is None and report.unstated[0] == "temperature"
        assert report.grade_if_fever_masked == (organ or None)
    else:
        assert report.grade == 0
        assert report.grade_if_fever_masked == (organ or None)
    # Vasopressin never makes "multiple": grade 4 from hypotension needs two other vasopressors.
    hypo = next((f.level for f in report.findings if f.domain == "hypotension"), 0)
    if hypo == 4:
        assert (report.input.pressors or 0) >= 2
    # Every action is sourced from the rulebook that answered.
    book = BOOKS[report.product]
    for action in (*report.management, *report.next_dose, *report.supportive):
        assert all(k.strip() in book.sources for k in action.source.split(";"))
    # The masked grade, when there is one, drives the actions shown.
    if report.grade == 0 and report.grade_if_fever_masked:
        assert report.management
