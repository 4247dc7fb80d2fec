"""Microseconds per `/crs` text through parse -> grade -> decide, against the irreducible cost of
validating the same fields with a bare pydantic v2 model (issue 2: aim for within 3x).

    .venv/bin/python bench/grading.py            # table + ratio
    .venv/bin/python bench/grading.py --json     # machine-readable
    .venv/bin/python bench/grading.py --profile  # cProfile of the pipeline, top functions

Method: rulebooks loaded once; for each text, `iterations` calls after a warm-up, timed with
time.perf_counter_ns; the median of `repeats` runs is reported. The bare model gets the values
already split out of the text (a dict of strings), so it measures only pydantic's validation of the
same typed fields; both figures come from the same run, so the ratio compares like with like.
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
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pydantic import BaseModel  # noqa: E402

from bot.rulebooks import default_rulebooks  # noqa: E402
from grading.models import Device, SiteSettings  # noqa: E402
from grading.pipeline import assess_crs  # noqa: E402

TEXTS = {
    "fever only": "temp=39",
    "pressor + low flow": "temp=39 sbp=85 pressor=1 o2=4 device=nc",
    "afebrile on pressor": "temp=37 pressor=1 vasopressin=yes o2=ra",
    "masked, cpap, weight": "temp=37.2 sbp=82 fluids=yes pressor=2 device=cpap masked=yes weight=80",
    "6 L/min, astct, velo": "temp=38.4 sbp=100 pressor=0 o2=6 device=nc o2rule=astct product=velo",
}

# Key as typed -> field of the bare model (the aliases the grammar would have resolved).
FIELD = {"temp": "temp_c", "pressor": "pressors", "o2": "o2_flow", "weight": "weight_kg"}


class BareCrs(BaseModel):
    """The same typed fields as `CrsInput`, with none of the grammar, grading or rulebook."""

    temp_c: float | None = None
    sbp: int | None = None
    fluids: bool | None = None
    pressors: int | None = None
    vasopressin: bool | None = None
    o2_flow: float | None = None
    device: Device | None = None
    o2rule: str | None = None
    masked: bool | None = None
    product: str | None = None
    weight_kg: float | None = None


def split(text: str) -> dict[str, str]:
    """The already-split dict handed to the bare model (not timed)."""
    pairs = (token.split("=", 1) for token in text.split())
    values = {FIELD.get(key, key): value for key, value in pairs}
    if values.get("o2_flow") == "ra":  # the grammar reads `o2=ra` as a device
        values["device"] = values.pop("o2_flow")
    return values


def per_call_us(fn: Any, arg: Any, iterations: int, repeats: int, warmup: int) -> float:
    for _ in range(warmup):
        fn(arg)
    runs = []
    for _ in range(repeats):
        start = time.perf_counter_ns()
        for _ in range(iterations):
            fn(arg)
        runs.append((time.perf_counter_ns() - start) / iterations / 1000)
    return statistics.median(runs)


def run(iterations: int, repeats: int, warmup: int) -> dict[str, Any]:
    books = default_rulebooks()
    site = SiteSettings()

    def pipeline(text: str) -> Any:
        return assess_crs(text, site, books)

    rows = []
    for name, text in TEXTS.items():
        fields = split(text)
        BareCrs.model_validate(fields)  # the split must be valid for the bare model too
        pipe = per_call_us(pipeline, text, iterations, repeats, warmup)
        bare = per_call_us(BareCrs.model_validate, fields, iterations, repeats, warmup)
        rows.append({"name": name, "text": text, "pipeline_us": round(pipe, 2), "bare_us": round(bare, 2),
                     "ratio": round(pipe / bare, 2)})
    pipe_mean = statistics.fmean(r["pipeline_us"] for r in rows)
    bare_mean = statistics.fmean(r["bare_us"] for r in rows)
    return {
        "iterations": iterations, "repeats": repeats, "statistic": "median of repeats",
        "python": sys.version.split()[0], "rows": rows,
        "pipeline_us": round(pipe_mean, 2), "bare_us": round(bare_mean, 2),
        "ratio": round(pipe_mean / bare_mean, 2), "aim": 3.0,
    }


def table(result: dict[str, Any]) -> str:
    width = max(len(r["name"]) for r in result["rows"])
    lines = [f"{'text':<{width}}  {'pipeline µs':>11}  {'bare µs':>8}  {'ratio':>6}"]
    for r in result["rows"]:
        lines.append(f"{r['name']:<{width}}  {r['pipeline_us']:>11.2f}  {r['bare_us']:>8.2f}  {r['ratio']:>5.2f}x")
    lines.append(f"{'mean':<{width}}  {result['pipeline_us']:>11.2f}  {result['bare_us']:>8.2f}  "
                 f"{result['ratio']:>5.2f}x")
    verdict = "within" if result["ratio"] <= result["aim"] else "OVER"
    lines.append(f"\nparse+grade+decide vs bare pydantic validation: {result['ratio']:.2f}x "
                 f"({verdict} the {result['aim']:g}x aim; {result['iterations']} iterations, "
                 f"{result['statistic']} of {result['repeats']})")
    return "\n".join(lines)


def profile(iterations: int) -> str:
    books, site = default_rulebooks(), SiteSettings()
    texts = list(TEXTS.values())
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(iterations // len(texts)):
        for text in texts:
            assess_crs(text, site, books)
    profiler.disable()
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(20)
    return out.getvalue()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.add_argument("--iterations", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=2_000)
    parser.add_argument("--profile", action="store_true", help="cProfile the pipeline instead")
    args = parser.parse_args(argv)
    if args.profile:
        print(profile(args.iterations))
        return 0
    result = run(args.iterations, args.repeats, args.warmup)
    print(json.dumps(result, indent=2) if args.json else table(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
