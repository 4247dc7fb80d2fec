"""The episode picture: the plotted series are the stored assessments (golden data), the PNG decodes at the
promised size, an audit export redraws the same picture, and the alt text says what the picture shows."""

from __future__ import annotations

import io
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from matplotlib.figure import Figure
from PIL import Image

from bot.cli import main
from bot.clock import ManualClock
from bot.episodes.timeline_data import NoTimelineError, episode_timeline, timeline_from_audit
from bot.storage import Store, export_audit
from bot.storage.db import make_engine, upgrade
from bot.testing.timeline_cases import CHANNEL, record_script
from messages.timeline import ALT_TEXT_LIMIT, SIZE_PX, EpisodeTimeline, Series, build_figure, render_picture
from tests.db_fixtures import CLOCK_START

CH = CHANNEL
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(CLOCK_START)


@pytest.fixture
def store(tmp_path: Path, clock: ManualClock) -> Iterator[Store]:
    engine = make_engine(f"sqlite:///{tmp_path / 'picture.sqlite3'}")
    upgrade(engine)
    yield Store(engine, clock)
    engine.dispose()


def series(fig: Figure, gid: str) -> tuple[list[datetime], list[float]]:
    """The data of the one line with this id, as plotted (read before the figure is saved)."""
    found = [line for ax in fig.axes for line in ax.get_lines() if line.get_gid() == gid]
    assert len(found) == 1, f"expected one {gid} line, found {len(found)}"
    return list(found[0].get_xdata(orig=True)), [float(y) for y in found[0].get_ydata(orig=True)]


def stored_timeline(store: Store, clock: ManualClock) -> EpisodeTimeline:
    found = episode_timeline(store, CH, "bed12", clock.now())
    assert found is not None
    return found[1]


def test_plotted_series_are_the_stored_assessments(store: Store, clock: ManualClock) -> None:
    episode_id = record_script(store, clock)
    fig = build_figure(stored_timeline(store, clock))
    (history,) = store.episode_history(CH, "bed12")
    crs = [a for a in history.assessments if a.kind == "crs"]
    icans = [a for a in history.assessments if a.kind == "icans"]
    assert len(crs) == 5 and len(icans) == 1

    def stated(key: str) -> tuple[list[datetime], list[float]]:
        kept = [a for a in crs if a.inputs["parsed"].get(key) is not None]
        return [a.created_at for a in kept], [float(a.inputs["parsed"][key]) for a in kept]

    assert series(fig, Series.CRS_GRADE) == ([a.created_at for a in crs], [float(a.grade) for a in crs])  # type: ignore[arg-type]
    assert series(fig, Series.CRS_GRADE)[1] == [1.0, 2.0, 3.0, 3.0, 2.0]  # golden: the ASTCT grades of SCRIPT
    assert series(fig, Series.ICANS_GRADE) == ([icans[0].created_at], [1.0])
    assert series(fig, Series.TEMP) == stated("temp_c")
    assert series(fig, Series.TEMP)[1] == [39.2, 39.6, 37.4, 37.1, 36.9]
    assert series(fig, Series.SBP) == stated("sbp")  # the 4th assessment stated no pressure: no point drawn
    assert len(series(fig, Series.SBP)[0]) == 4
    assert series(fig, Series.PRESSORS) == stated("pressors")
    assert series(fig, Series.O2_FLOW) == stated("o2_flow")
    masked = [a.created_at for a in crs if a.inputs["parsed"]["masked"]]
    assert series(fig, Series.MASKED)[0] == masked and len(masked) == 3
    assert series(fig, Series.TREATMENT)[0] == [crs[2].created_at, crs[3].created_at]  # toci, then steroid

    sent = [r for r in store.reminders(episode_id=episode_id) if r.status in ("sent", "answered")]
    assert series(fig, Series.REMINDERS)[0] == [r.sent_at for r in sent if r.kind == "reassess"]
    assert series(fig, Series.ESCALATIONS)[0] == [r.sent_at for r in sent if r.kind == "escalation"]
    assert len(series(fig, Series.REMINDERS)[0]) == 1 and len(series(fig, Series.ESCALATIONS)[0]) == 1
    assert series(fig, Series.RESOLVED)[0][0] == history.episode.resolved_at


def test_the_png_decodes_at_the_promised_size(store: Store, clock: ManualClock) -> None:
    record_script(store, clock)
    picture = render_picture(stored_timeline(store, clock))
    image = Image.open(io.BytesIO(picture.png))
    image.load()
    assert image.format == "PNG"
    assert image.size == SIZE_PX == (800, 900)
    assert picture.filename.endswith(".png") and "bed12" in picture.filename


def test_alt_text_says_what_the_picture_shows(store: Store, clock: ManualClock) -> None:
    record_script(store, clock)
    text = render_picture(stored_timeline(store, clock)).alt_text
    assert len(text) <= ALT_TEXT_LIMIT
    for expected in ("patient bed12", "5 CRS assessment(s) and 1 ICANS", "worst 3 at 09:35", "36.9 to 39.6 °C",
                     "84 to 118 mmHg", "Tocilizumab noted at 09:35", "Corticosteroids noted at 10:30",
                     "1 reminder(s) and 1 escalation(s)", "Resolved at 02 Mar 13:00 UTC"):
        assert expected in text, (expected, text)


def test_an_audit_export_redraws_the_same_episode(store: Store, clock: ManualClock) -> None:
    record_script(store, clock)
    out = io.StringIO()
    export_audit(store, "jsonl", out)
    from_store = stored_timeline(store, clock)
    from_audit = timeline_from_audit(out.getvalue().splitlines(), "bed12")
    assert from_audit.points == from_store.points
    assert sorted(from_audit.ticks, key=lambda t: t.at) == sorted(from_store.ticks, key=lambda t: t.at)
    assert from_audit.resolved_at == from_store.resolved_at
    with pytest.raises(NoTimelineError):
        timeline_from_audit(out.getvalue().splitlines(), "bed99")


def test_an_open_episode_with_unstated_vitals_still_draws() -> None:
    tl = EpisodeTimeline("bed7", "velo", CLOCK_START, None, (), (), CLOCK_START + timedelta(hours=1))
    picture = render_picture(tl)
    assert Image.open(io.BytesIO(picture.png)).size == SIZE_PX
    assert "Still open" in picture.alt_text and "0 CRS assessment(s)" in picture.alt_text


def test_cli_writes_the_picture_from_an_audit_export(store: Store, clock: ManualClock, tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    record_script(store, clock)
    export = tmp_path / "audit.jsonl"
    with export.open("w", encoding="utf-8") as out:
        export_audit(store, "jsonl", out)
    png = tmp_path / "bed12.png"
    assert main(["timeline", "--from-audit", str(export), "--patient", "bed12", "--out", str(png)]) == 0
    assert Image.open(png).size == SIZE_PX
    assert "patient bed12" in capsys.readouterr().out
    assert main(["timeline", "--from-audit", str(export), "--patient", "bed99", "--out", str(png)]) == 2
    assert "no assessments of patient 'bed99'" in capsys.readouterr().err
    assert main(["timeline", "--from-audit", str(tmp_path / "missing.jsonl"), "--patient", "bed12",
                 "--out", str(png)]) == 2
    assert "cannot read" in capsys.readouterr().err


def test_the_readme_picture_is_what_the_script_draws_now(tmp_path: Path) -> None:
    """docs/episode-timeline.png is scripts/readme-pictures' drawing of the scripted episode with today's
    code: a change to the picture that is not redrawn fails here."""
    done = subprocess.run([sys.executable, str(ROOT / "scripts" / "readme-pictures"), "--out", str(tmp_path)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"{tmp_path / 'episode-timeline.png'}: ") and "alt text: Timeline of" in done.stdout
    drawn, shown = (Image.open(path).convert("RGB") for path in (tmp_path / "episode-timeline.png",
                                                                  ROOT / "docs" / "episode-timeline.png"))
    assert drawn.size == shown.size == SIZE_PX
    assert drawn.tobytes() == shown.tobytes(), "the README picture is stale: run `make readme-pictures`"
