"""Rulebook files: the shipped defaults are valid and sourced; a bad file is refused with a message
naming the file and the entry; a site file replaces the default for its product only."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import pytest

from bot.rulebooks import default_rulebooks, load_rulebook_text, load_rulebooks
from grading.errors import RulebookError
from grading.models import SiteSettings
from grading.pipeline import assess_crs, assess_delay, assess_icans

IV_TEXT = (resources.files("grading") / "rulebooks" / "lunsumio-iv.toml").read_text(encoding="utf-8")
VELO_TEXT = (resources.files("grading") / "rulebooks" / "lunsumio-velo.toml").read_text(encoding="utf-8")
BOOKS = default_rulebooks()


def replace_once(text: str, old: str, new: str) -> str:
    assert text.count(old) == 1, f"fixture drift: {old!r} occurs {text.count(old)} times"
    return text.replace(old, new)


REVIEW = 'reviewed_by = "J. Doe, PharmD (P&T)"\nreviewed_on = 2026-11-30\n'


def as_site(text: str) -> str:
    """A site rulebook must say who reviewed it and when (test content)."""
    head, sep, rest = text.partition("\nreviewed = ")
    line, newline, tail = rest.partition("\n")
    return head + sep + line + newline + REVIEW + tail


# --- The shipped defaults --------------------------------------------------------------------

def test_defaults_load_for_both_products() -> None:
    assert set(BOOKS) == {"iv", "velo"}
    assert BOOKS["iv"].ref.id == "crsbot-default-lunsumio-iv"
    assert BOOKS["velo"].ref.id == "crsbot-default-lunsumio-velo"
    for product, book in BOOKS.items():
        assert book.rulebook.product == product
        assert book.ref.version


@pytest.mark.parametrize("product", ["iv", "velo"])
def test_every_entry_source_is_listed_and_every_gap_points_somewhere(product: str) -> None:
    book = BOOKS[product]
    items = [*book.crs, *book.icans, *book.delay.rows, book.next_dose, book.delay, book.premed]
    if book.tocilizumab:
        items.append(book.tocilizumab)
    for item in items:
        for key in item.source.split(";"):
            assert key.strip() in book.sources, (product, getattr(item, "id", item), key)
        if item.status == "not_available":
            assert item.see and "USPI" in item.see, (product, getattr(item, "id", item))


def test_default_sources_are_the_reference_keys() -> None:
    reference_keys = {"ASTCT", "USPI-IV", "USPI-VELO", "NCCN-ENGAGE", "NCCN-CART", "ASH-BsAb"}
    assert set(BOOKS["iv"].sources) <= reference_keys
    assert set(BOOKS["velo"].sources) <= reference_keys
    assert "USPI-IV" not in BOOKS["velo"].sources, "the VELO rulebook must not lean on the IV label"


def test_defaults_ship_no_site_content() -> None:
    for book in BOOKS.values():
        statuses = {e.status for e in (*book.crs, *book.icans, *book.delay.rows)}
        assert "site" not in statuses


@pytest.mark.parametrize(
    "grade_text, recurrent",
    [(t, r) for t in ("temp=39", "temp=39 sbp=85", "temp=39 pressor=1", "temp=39 device=cpap",
                      "temp=37 pressor=1", "pressor=2")
     for r in (False, True)],
)
@pytest.mark.parametrize("product", ["iv", "velo"])
def test_every_management_action_has_a_listed_source(grade_text: str, recurrent: bool, product: str) -> None:
    text = f"{grade_text} product={product}" + (" recurrent=yes masked=yes" if recurrent else "")
    report = assess_crs(text, SiteSettings(), BOOKS)
    actions = [*report.management, *report.next_dose, *report.supportive]
    assert actions
    for action in actions:
        for key in action.source.split(";"):
            assert key.strip() in BOOKS[product].sources, (action.id, action.source)
    # The conventions a reply states cite that product's own label too (a VELO reply never cites USPI-IV).
    for convention in report.conventions:
        for key in convention.source.split(";"):
            assert key.strip() in BOOKS[product].sources, (convention.key, convention.source)


@pytest.mark.parametrize("product", ["iv", "velo"])
@pytest.mark.parametrize("ice", [8, 5, 1])
def test_every_icans_action_has_a_listed_source(product: str, ice: int) -> None:
    report = assess_icans(f"ice={ice} product={product}", SiteSettings(), BOOKS)
    assert report.management
    assert all(a.source in BOOKS[product].sources for a in report.management)


# --- Bad files are refused with the file and the entry named -------------------------------------

BAD_FILES = [
    pytest.param(
        lambda t: replace_once(t, 'id = "infusion-hold-g3"\nphase = "current_dose"\ngrades = [3]\nstatus = "consensus"\n'
                                  'source = "NCCN-ENGAGE"',
                               'id = "infusion-hold-g3"\nphase = "current_dose"\ngrades = [3]\nstatus = "consensus"\n'
                               'source = "NCCN-ENGAGE-9"'),
        ["infusion-hold-g3", "NCCN-ENGAGE-9", "not listed in [sources]"], id="unknown-source-key"),
    pytest.param(
        lambda t: replace_once(t, 'see = "USPI section 2.4, CRS management table, grade 4 row"\n', ""),
        ["label-row-grade-4", "not_available", "see"], id="not-available-without-see"),
    pytest.param(
        lambda t: replace_once(t, 'text = "Infusion running: stop it and hold."\n', ""),
        ["infusion-hold-g3", "text", "Field required"], id="missing-text"),
    pytest.param(
        lambda t: replace_once(t, 'id = "steroids-g3"\nphase = "supportive"\ngrades = [3]',
                               'id = "steroids-g3"\nphase = "supportive"\ngrades = [7]'),
        ["steroids-g3", "grades must be 1-4"], id="grade-7"),
    pytest.param(
        lambda t: replace_once(t, 'id = "grade1-return"', 'id = "grade1-home"'),
        ["grade1-home", "id used twice"], id="duplicate-id"),
    pytest.param(
        lambda t: replace_once(t, 'id = "discontinue-g4"\nphase = "next_dose"\ngrades = [4]\nstatus = "consensus"',
                               'id = "discontinue-g4"\nphase = "next_dose"\ngrades = [4]\nstatus = "lable"'),
        ["discontinue-g4", "status"], id="unknown-status"),
    pytest.param(
        lambda t: replace_once(t, 'id = "discontinue-g4"\nphase = "next_dose"',
                               'id = "discontinue-g4"\nphase = "later"'),
        ["discontinue-g4", "phase"], id="unknown-phase"),
    pytest.param(
        lambda t: replace_once(t, 'text = "Infusion running: stop it and hold."',
                               'txt = "Infusion running: stop it and hold."'),
        ["infusion-hold-g3", "txt"], id="misspelt-field"),
    pytest.param(
        lambda t: replace_once(t, 'next = [{ mg = 60, label = "C2D1" }]\n', ""),
        ["c1d15-1-6w", "next"], id="delay-row-without-doses"),
    pytest.param(
        lambda t: replace_once(t, 'last = "C1D15"\nmin_days = 42', 'last = "C1D16"\nmin_days = 42'),
        ["c1d15-6w-plus", "last"], id="delay-row-unknown-dose"),
    pytest.param(
        lambda t: replace_once(t, '[rulebook]\nid = "crsbot-default-lunsumio-iv"\nversion = "2026.12.1"\n',
                               '[rulebook]\nid = "crsbot-default-lunsumio-iv"\n'),
        ["rulebook", "version", "Field required"], id="missing-version"),
    pytest.param(
        lambda t: replace_once(t, 'product = "iv"', 'product = "oral"'),
        ["rulebook", "product"], id="unknown-product"),
    pytest.param(
        lambda t: t.replace('[sources]\n', '[sources\n', 1),
        ["not valid TOML"], id="bad-toml"),
    pytest.param(
        lambda t: replace_once(t, 'max_mg = 800', 'max_mg = 8000'),
        ["tocilizumab", "max_mg"], id="tocilizumab-cap-out-of-range"),
]


@pytest.mark.parametrize("mutate, expected", BAD_FILES)
def test_bad_rulebook_file_is_refused_naming_file_and_entry(tmp_path: Path, mutate, expected: list[str]) -> None:
    path = tmp_path / "site-iv.toml"
    path.write_text(mutate(IV_TEXT), encoding="utf-8")
    with pytest.raises(RulebookError) as err:
        load_rulebooks(path)
    message = str(err.value)
    assert message.startswith(f"Rulebook {path}")
    assert err.value.path == str(path)
    for fragment in expected:
        assert fragment in message, (fragment, message)


def test_bad_file_in_a_site_folder_is_named(tmp_path: Path) -> None:
    (tmp_path / "a-velo.toml").write_text(as_site(VELO_TEXT), encoding="utf-8")
    bad = tmp_path / "b-iv.toml"
    bad.write_text(replace_once(as_site(IV_TEXT), 'text = "Infusion running: stop it and hold."\n', ""), encoding="utf-8")
    with pytest.raises(RulebookError) as err:
        load_rulebooks(tmp_path)
    assert str(bad) in str(err.value)
    assert "infusion-hold-g3" in str(err.value)


def test_missing_file_and_empty_folder_are_refused(tmp_path: Path) -> None:
    with pytest.raises(RulebookError) as err:
        load_rulebooks(tmp_path / "nope.toml")
    assert "nope.toml" in str(err.value) and "cannot be read" in str(err.value)
    with pytest.raises(RulebookError) as err:
        load_rulebooks(tmp_path)
    assert "no .toml rulebook" in str(err.value)


def test_load_rulebook_text_names_its_origin() -> None:
    with pytest.raises(RulebookError) as err:
        load_rulebook_text("this is = = not toml", "pasted-by-pharmacist")
    assert "pasted-by-pharmacist" in str(err.value)
    assert "not valid TOML" in str(err.value)


# --- A site rulebook overrides the default for its product only -----------------------------------

SITE_IV = as_site(
    replace_once(
        replace_once(IV_TEXT, 'id = "crsbot-default-lunsumio-iv"\nversion = "2026.12.1"',
                     'id = "st-elsewhere-iv"\nversion = "3.1"'),
        # The site's pharmacists fill the cycle 2 row (test content, not clinical content).
        'id = "c2d1-any"\nlast = "C2D1"\nstatus = "not_available"\nsource = "USPI-IV"\n',
        'id = "c2d1-any"\nlast = "C2D1"\nstatus = "site"\nsource = "SITE"\nnext = [{ mg = 99, label = "TEST" }]\n'
        'then = "site test row"\n',
    ).replace('[sources]\n', '[sources]\nSITE = "St Elsewhere P&T committee, test fixture"\n', 1)
)


def test_site_file_for_iv_replaces_iv_only(tmp_path: Path) -> None:
    path = tmp_path / "site.toml"
    path.write_text(SITE_IV, encoding="utf-8")
    books = load_rulebooks(path)
    assert books["iv"].ref.id == "st-elsewhere-iv"
    assert books["iv"].ref.version == "3.1"
    assert books["velo"].ref == BOOKS["velo"].ref
    report = assess_delay("last=c2d1 since=3w", SiteSettings(), books)
    assert report.available is True
    assert [(d.mg, d.label) for d in report.next_doses] == [(99, "TEST")]
    assert report.status == "site"
    assert report.rulebook.id == "st-elsewhere-iv"
    # The default is untouched.
    assert assess_delay("last=c2d1 since=3w", SiteSettings(), BOOKS).available is False


def test_site_file_for_velo_replaces_velo_only(tmp_path: Path) -> None:
    path = tmp_path / "velo.toml"
    path.write_text(as_site(replace_once(VELO_TEXT, 'version = "2026.12.1"', 'version = "site-7"')), encoding="utf-8")
    books = load_rulebooks(path)
    assert books["velo"].ref.version == "site-7"
    assert books["iv"].ref == BOOKS["iv"].ref


def test_site_folder_loads_every_file(tmp_path: Path) -> None:
    (tmp_path / "iv.toml").write_text(SITE_IV, encoding="utf-8")
    (tmp_path / "velo.toml").write_text(as_site(replace_once(VELO_TEXT, 'version = "2026.12.1"', 'version = "v9"')),
                                        encoding="utf-8")
    books = load_rulebooks(tmp_path)
    assert (books["iv"].ref.version, books["velo"].ref.version) == ("3.1", "v9")


def test_no_site_path_means_defaults() -> None:
    assert {p: b.ref for p, b in load_rulebooks(None).items()} == {p: b.ref for p, b in BOOKS.items()}


@pytest.mark.parametrize("product, worst, hours", [
    ("iv", 1, 72), ("iv", 2, 72),
    ("iv", 3, None),  # ENGAGE-7: admit for the next dose, no 72-hour rule stated
    ("iv", 4, None),  # ENGAGE-7: stop permanently
    ("iv", None, None), ("velo", 1, None), ("velo", 2, None),
])
def test_symptom_free_interval_only_for_the_grades_the_rulebook_names(
        product: str, worst: int | None, hours: float | None) -> None:
    assert BOOKS[product].next_dose.hours_for(worst) == hours


def test_site_rulebook_without_review_fields_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "site.toml"
    path.write_text(IV_TEXT, encoding="utf-8")
    with pytest.raises(RulebookError) as err:
        load_rulebooks(path)
    assert str(path) in str(err.value) and "reviewed_by and reviewed_on" in str(err.value)
    half = as_site(IV_TEXT).replace("reviewed_on = 2026-11-30\n", "")
    path.write_text(half, encoding="utf-8")
    with pytest.raises(RulebookError, match="needs reviewed_on in"):
        load_rulebooks(path)


def test_review_fields_reach_the_reply_footer(tmp_path: Path) -> None:
    from messages.layout import layout_for

    path = tmp_path / "site.toml"
    path.write_text(SITE_IV, encoding="utf-8")
    books = load_rulebooks(path)
    layout = layout_for(assess_crs("temp=39 sbp=85 pressor=1", SiteSettings(), books))
    assert "Rulebook v3.1, reviewed by J. Doe, PharmD (P&T) on 2026-11-30" in layout.context
    default = layout_for(assess_crs("temp=39 sbp=85 pressor=1", SiteSettings(), BOOKS))
    assert "reviewed by" not in default.context


# --- Data changes bump the version; every reply's first screen has a next-dose line ---------------

VERSIONS = Path(__file__).parent / "fixtures" / "rulebook-versions.json"


@pytest.mark.parametrize("name", ["lunsumio-iv.toml", "lunsumio-velo.toml"])
def test_a_rulebook_data_change_bumps_its_version(name: str) -> None:
    """The version is shown in every reply, so it must change whenever what the rulebook says changes.
    After a reviewed change: bump `version` in the file, then record it in tests/fixtures/rulebook-versions.json."""
    import hashlib
    import json
    import tomllib

    data = tomllib.loads((resources.files("grading") / "rulebooks" / name).read_text(encoding="utf-8"))
    version = data["rulebook"].pop("version")
    digest = hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()
    recorded = json.loads(VERSIONS.read_text(encoding="utf-8"))[name]
    assert version == recorded["version"], f"{name} is now v{version}: record it and its content hash in {VERSIONS}"
    assert digest == recorded["content_sha256"], f"{name} changed without a version bump (still v{version})"


@pytest.mark.parametrize("product", ["iv", "velo"])
@pytest.mark.parametrize("recurrent", [False, True])
@pytest.mark.parametrize("text", ["temp=38.5 sbp=120 pressor=0 o2=ra", "temp=39 sbp=85 pressor=0 o2=ra",
                                  "temp=39 pressor=1 o2=ra", "temp=39 pressor=2 o2=ra"])
def test_every_grade_shows_now_actions_and_the_next_dose_on_the_first_screen(product: str, recurrent: bool,
                                                                          text: str) -> None:
    report = assess_crs(f"{text} product={product}" + (" recurrent=yes" if recurrent else ""), SiteSettings(), BOOKS)
    phases = [a.phase for a in report.first]
    assert 2 <= len(phases) <= 3
    assert phases[-1] == "next_dose" and "next_dose" not in phases[:-1]
