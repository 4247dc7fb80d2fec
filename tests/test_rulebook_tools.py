"""`crsbot rulebook check | diff | sheet` and the review fields a site rulebook must carry, run as
a pharmacist or admin would run them: the real CLI on real files."""

from __future__ import annotations

import re
import subprocess
from html.parser import HTMLParser
from pathlib import Path

from bot.rulebooks import default_rulebooks, load_rulebook_text
from grading.rulebook_review import ChangeKind, diff
from tests.slack_support import clean_env, crsbot_command, run_crsbot
from tests.test_rulebook import IV_TEXT, SITE_IV, as_site, replace_once

DEFAULT_IV = default_rulebooks()["iv"]


def rulebook(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*crsbot_command(), "rulebook", *args], capture_output=True, text=True, timeout=60,
                          env=clean_env())


def write(tmp_path: Path, text: str, name: str = "site.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def drop_entry(text: str, table: str, entry_id: str) -> str:
    """The rulebook text without one entry (from its `[[table]]` header to the blank line after it)."""
    start = text.index(f'[[{table}]]\nid = "{entry_id}"\n')
    end = text.index("\n\n", start) + 2
    assert text.count(f'id = "{entry_id}"') == 1, f"fixture drift: {entry_id!r}"
    return text[:start] + text[end:]


DROPPED = "hlh-after-a-week"
# A draft that changes one entry's text, drops one entry, adds one, and fills the cycle 2 delay row.
EDITED = drop_entry(replace_once(
    replace_once(SITE_IV, 'text = "Infusion running: stop it and hold."', 'text = "Stop the infusion and hold it."'),
    '[[crs]]\nid = "other-causes"', '[[crs]]\nid = "site-call-icu"\nphase = "general"\nstatus = "site"\n'
    'source = "SITE"\ntext = "Site test entry: call the ICU outreach team."\n\n[[crs]]\nid = "other-causes"'),
    "crs", DROPPED)


def test_check_of_a_draft_with_an_error_names_the_entry(tmp_path: Path) -> None:
    draft = write(tmp_path, replace_once(SITE_IV, 'text = "Infusion running: stop it and hold."\n',
                                         'txt = "Infusion running: stop it and hold."\n'))
    done = rulebook("check", str(draft))
    assert done.returncode == 3, done
    assert done.stdout == ""
    assert "entry 'infusion-hold-g3'" in done.stderr and str(draft) in done.stderr
    assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1


def test_check_lists_every_entry_with_its_source_and_what_it_fills(tmp_path: Path) -> None:
    done = rulebook("check", str(write(tmp_path, SITE_IV)))
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "valid rulebook st-elsewhere-iv v3.1" in out
    assert "reviewed by J. Doe, PharmD (P&T) on 2026-11-30" in out
    book = load_rulebook_text(SITE_IV, "site")
    for entry in (*book.crs, *book.icans):
        assert re.search(rf"^  (crs|icans)/{re.escape(entry.id)} +\S.* {re.escape(entry.source)}$", out, re.M), entry.id
    fills = out.split("leaves not available:")[1].split("\n\n")[0]
    assert fills.strip().splitlines() == ["delay/c2d1-any: now site rule [SITE]"]


def test_check_warns_a_draft_is_not_yet_reviewed(tmp_path: Path) -> None:
    done = rulebook("check", str(write(tmp_path, IV_TEXT)))
    assert done.returncode == 0
    assert "needs reviewed_by and reviewed_on" in done.stdout


def test_diff_lists_exactly_the_changed_entries(tmp_path: Path) -> None:
    changes = diff(DEFAULT_IV, load_rulebook_text(EDITED, "edited"))
    assert {(c.key, c.kind) for c in changes} == {
        ("crs/infusion-hold-g3", ChangeKind.CHANGED),
        ("crs/site-call-icu", ChangeKind.ADDED),
        (f"crs/{DROPPED}", ChangeKind.REMOVED),
        ("delay/c2d1-any", ChangeKind.CHANGED),
        ("sources/SITE", ChangeKind.ADDED),
    }
    done = rulebook("diff", str(write(tmp_path, EDITED)))
    assert done.returncode == 0, done.stderr
    listed = re.findall(r"^[+~-] (\S+) \((added|removed|changed)", done.stdout, re.M)
    assert sorted(listed) == sorted((c.key, c.kind.value) for c in changes)
    assert "'Infusion running: stop it and hold.' -> 'Stop the infusion and hold it.'" in done.stdout
    assert re.search(rf"^- crs/{DROPPED} \(removed", done.stdout, re.M), done.stdout


def test_diff_of_the_default_against_itself_is_empty(tmp_path: Path) -> None:
    done = rulebook("diff", str(write(tmp_path, as_site(IV_TEXT))))
    assert "No entry differs from the shipped default." in done.stdout
    assert not re.search(r"^[+~-] ", done.stdout, re.M)


class _Tables(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.cells: list[str] = []
        self._in_cell = False

    def handle_starttag(self, tag: str, attrs: object) -> None:
        self._in_cell = tag in ("td", "th")
        if self._in_cell:
            self.cells.append("")

    def handle_endtag(self, tag: str) -> None:
        self._in_cell = False

    def handle_data(self, data: str) -> None:
        if self._in_cell:
            self.cells[-1] += data


def test_sheet_in_markdown_and_html_for_sign_off(tmp_path: Path) -> None:
    path = write(tmp_path, EDITED)
    md = rulebook("sheet", str(path))
    assert md.returncode == 0, md.stderr
    import hashlib

    fingerprint = hashlib.sha256(path.read_bytes()).hexdigest()
    for needle in ("# Rulebook review sheet", fingerprint, "reviewed by J. Doe, PharmD (P&T) on 2026-11-30",
                   "## Changes against the shipped default (5)", "| crs/site-call-icu | added |",
                   f"| crs/{DROPPED} | removed |",
                   "## Sign-off (pharmacy and therapeutics committee)", "does not replace it"):
        assert needle in md.stdout, needle
    out = tmp_path / "sheet.html"
    done = rulebook("sheet", "--format", "html", "--out", str(out), str(path))
    assert done.returncode == 0 and done.stdout == ""
    page = out.read_text(encoding="utf-8")
    assert page.startswith("<!doctype html>") and "PharmD (P&amp;T)" in page
    tables = _Tables()
    tables.feed(page)
    assert "Stop the infusion and hold it." in " ".join(tables.cells)
    assert "Signature" in tables.cells


def test_site_rulebook_without_review_fields_is_refused_at_start_up(tmp_path: Path) -> None:
    unreviewed = write(tmp_path, IV_TEXT)
    env = clean_env({"SLACK_BOT_TOKEN": "xoxb-x", "SLACK_SIGNING_SECRET": "s", "CRSBOT_RULEBOOK": str(unreviewed),
                     "CRSBOT_DATA_DIR": str(tmp_path / "data")})
    done = run_crsbot(env, "--port", "0")
    lines = done.stdout.strip().splitlines()
    assert done.returncode == 3, done.stdout
    assert len(lines) == 1 and str(unreviewed) in lines[0] and "reviewed_by and reviewed_on" in lines[0]
