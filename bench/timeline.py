"""Milliseconds per episode picture of 50 assessments (issue 11), against a same-run floor: saving an empty
matplotlib Figure of the same size as PNG, the cost no picture can avoid.

    .venv/bin/python bench/timeline.py            # table + ratio
    .venv/bin/python bench/timeline.py --json     # machine-readable
    .venv/bin/python bench/timeline.py --profile  # cProfile of one picture, top functions

Method: one warm-up of each (fonts, caches); then `repeats` timed runs of each, interleaved so machine load
falls on both alike; the median is reported. "build" is drawing the figure, "png" saving it; "picture" is the
whole `render_picture` (figure, PNG and alt text), which is what an upload costs before it reaches Slack.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import pstats
import statistics
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from messages.timeline import (  # noqa: E402
    DPI,
    HEIGHT_IN,
    WIDTH_IN,
    EpisodeTimeline,
    Point,
    Tick,
    TickKind,
    build_figure,
    figure_png,
    render_picture,
)

START = datetime(2026, 12, 1, 6, 0, tzinfo=timezone.utc)


def episode(n: int = 50) -> EpisodeTimeline:
    """A 25-hour episode: an assessment every 30 min rising to grade 3 and back, with treatment marks, an ICANS
    check every tenth assessment, a reminder after each and an escalation every fifth."""
    points, ticks = [], []
    for i in range(n):
        at = START + timedelta(minutes=30 * i)
        grade = min(3, 1 + i // 8) if i < n * 0.7 else 1
        if i % 10 == 9:
            points.append(Point(at, "icans", 1, False))
            continue
        points.append(Point(at, "crs", grade, i % 7 == 3, temp_c=38.0 + (i % 5) * 0.4, sbp=80 + (i * 7) % 40,
                            pressors=1 if grade == 3 else 0, vasopressin=i % 11 == 0 or None,
                            o2_flow=float(2 * (grade - 1)) or None, device="nc" if grade > 1 else None,
                            masked=i > 12, masked_by=("tocilizumab",) if i == 13 else ()))
        ticks.append(Tick(at + timedelta(minutes=25), TickKind.REMINDER))
        if i % 5 == 4:
            ticks.append(Tick(at + timedelta(minutes=28), TickKind.ESCALATION))
    end = START + timedelta(minutes=30 * n)
    return EpisodeTimeline("bed12", "iv", START, end, tuple(points), tuple(ticks), end)


def floor_png() -> bytes:
    fig = Figure(figsize=(WIDTH_IN, HEIGHT_IN), dpi=DPI)
    FigureCanvasAgg(fig)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI)
    return buffer.getvalue()


def timed_ms(fn: object) -> float:
    started = time.perf_counter_ns()
    fn()  # type: ignore[operator]
    return (time.perf_counter_ns() - started) / 1e6


def measure(repeats: int) -> dict[str, float | int]:
    tl = episode()
    render_picture(tl), floor_png()  # warm-up
    floor, build, png, picture = [], [], [], []
    for _ in range(repeats):
        floor.append(timed_ms(floor_png))
        started = time.perf_counter_ns()
        fig = build_figure(tl)
        built = time.perf_counter_ns()
        figure_png(fig)
        build.append((built - started) / 1e6)
        png.append((time.perf_counter_ns() - built) / 1e6)
        picture.append(timed_ms(lambda: render_picture(tl)))
    med = statistics.median
    return {"assessments": len(tl.points), "repeats": repeats, "floor_ms": med(floor), "build_ms": med(build),
            "png_ms": med(png), "picture_ms": med(picture), "ratio": med(picture) / med(floor),
            "png_bytes": len(render_picture(tl).png)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    if args.profile:
        tl = episode()
        render_picture(tl)
        profile = cProfile.Profile()
        profile.runcall(render_picture, tl)
        pstats.Stats(profile).sort_stats("cumulative").print_stats(20)
        return 0
    result = measure(args.repeats)
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(f"episode picture, {result['assessments']} assessments, median of {result['repeats']} runs")
    print(f"  floor (empty figure saved as PNG)   {result['floor_ms']:8.1f} ms")
    print(f"  draw the figure                     {result['build_ms']:8.1f} ms")
    print(f"  save it as PNG                      {result['png_ms']:8.1f} ms")
    print(f"  whole picture (figure, PNG, alt)    {result['picture_ms']:8.1f} ms"
          f"   = {result['ratio']:.1f}x the floor, {result['png_bytes'] / 1024:.0f} KiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
