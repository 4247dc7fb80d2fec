"""The episode picture: one PNG of a CRS episode on aligned time axes, plus alt text saying the same in words.

Pure presentation: it takes an `EpisodeTimeline` (built from stored assessments by bot/episodes/timeline_data.py)
and draws with matplotlib's object API on the Agg canvas, never pyplot, so no global figure state is shared
between the listener threads that render at the same time.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from enum import StrEnum
from typing import TYPE_CHECKING

from grading.crs import FEVER_C
from messages.layout import PRODUCT_NAMES

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

# Pixels of the uploaded picture: readable on a phone when Slack scales it to the screen width.
WIDTH_IN, HEIGHT_IN, DPI = 8.0, 9.0, 100
SIZE_PX = (int(WIDTH_IN * DPI), int(HEIGHT_IN * DPI))
ALT_TEXT_LIMIT = 1000  # Slack refuses longer alt text (files.getUploadURLExternal: alt_txt_too_large)
TREATMENT_MARKS = {"tocilizumab": "toci", "corticosteroids": "steroid"}
GRADE_COLOUR, ICANS_COLOUR, EVENT_COLOUR, ESCALATION_COLOUR = "#c0392b", "#6c3483", "#2471a3", "#e67e22"


class Series(StrEnum):
    """Artist ids (`gid`) of what the picture plots, so a test can read the series back from the figure."""

    CRS_GRADE = "crs_grade"
    CRS_GRADE_HOLD = "crs_grade_hold"
    ICANS_GRADE = "icans_grade"
    TEMP = "temp_c"
    MASKED = "masked_fever"
    SBP = "sbp"
    PRESSORS = "pressors"
    O2_FLOW = "o2_flow"
    TREATMENT = "treatment"
    REMINDERS = "reminders"
    ESCALATIONS = "escalations"
    RESOLVED = "resolved"


class TickKind(StrEnum):
    REMINDER = "reminder"
    ESCALATION = "escalation"


@dataclass(frozen=True)
class Point:
    """One assessment as the picture needs it; `None` means the value was not stated (and is not drawn)."""

    at: datetime
    kind: str
    grade: int | None
    at_least: bool
    temp_c: float | None = None
    sbp: int | None = None
    pressors: int | None = None
    vasopressin: bool | None = None
    o2_flow: float | None = None
    device: str | None = None
    masked: bool = False
    masked_by: tuple[str, ...] = ()


@dataclass(frozen=True)
class Tick:
    at: datetime
    kind: TickKind


@dataclass(frozen=True)
class EpisodeTimeline:
    patient_label: str
    product: str
    opened_at: datetime
    resolved_at: datetime | None
    points: tuple[Point, ...]
    ticks: tuple[Tick, ...]
    until: datetime
    sbp_threshold: int = 90

    def crs(self) -> list[Point]:
        return [p for p in self.points if p.kind == "crs"]

    def icans(self) -> list[Point]:
        return [p for p in self.points if p.kind == "icans"]


@dataclass(frozen=True)
class Picture:
    png: bytes
    alt_text: str
    filename: str
    title: str


def _fmt(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%d %b %H:%M UTC")


def _hm(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%H:%M")


def _grade_label(p: Point) -> str:
    return "?" if p.grade is None else (f">={p.grade}" if p.at_least and p.grade else str(p.grade))


# ---------------------------------------------------------------------------------------------- drawing

def _panel(ax: Axes, ylabel: str) -> None:
    ax.set_ylabel(ylabel, fontsize=9)
    ax.grid(True, axis="both", alpha=0.25)
    ax.tick_params(labelsize=8)


def _stated(points: list[Point], attr: str) -> tuple[list[datetime], list[float]]:
    xs, ys = [], []
    for p in points:
        value = getattr(p, attr)
        if value is not None:
            xs.append(p.at)
            ys.append(float(value))
    return xs, ys


def _changes(points: list[Point], attr: str) -> list[Point]:
    """Points where a stated value differs from the last stated one: labels once per change, not per point."""
    kept, last = [], None
    for p in points:
        value = getattr(p, attr)
        if value is not None and value != last:
            kept.append(p)
        last = value if value is not None else last
    return kept


def _draw_grades(ax: Axes, tl: EpisodeTimeline) -> None:
    crs = [p for p in tl.crs() if p.grade is not None]
    if crs:
        xs, ys = [p.at for p in crs], [p.grade for p in crs]
        ax.step(xs, ys, where="post", color=GRADE_COLOUR, lw=2.2, label="CRS grade (ASTCT)", gid=Series.CRS_GRADE)
        ax.plot([crs[-1].at, tl.resolved_at or tl.until], [crs[-1].grade] * 2, color=GRADE_COLOUR, lw=2.2,
                alpha=0.4, gid=Series.CRS_GRADE_HOLD)
        exact = [p for p in crs if not (p.at_least and p.grade)]
        least = [p for p in crs if p.at_least and p.grade]
        ax.plot([p.at for p in exact], [p.grade for p in exact], "o", color=GRADE_COLOUR, ms=5)
        if least:
            ax.plot([p.at for p in least], [p.grade for p in least], "o", mfc="white", mec=GRADE_COLOUR, ms=7,
                    label="at least (inputs not all stated)")
    icans = [p for p in tl.icans() if p.grade is not None]
    if icans:
        ax.step([p.at for p in icans], [p.grade for p in icans], where="post", color=ICANS_COLOUR, lw=1.5,
                ls="--", marker="s", ms=4, label="ICANS grade", gid=Series.ICANS_GRADE)
    treated = [(p, mark) for p in tl.crs() for reason, mark in TREATMENT_MARKS.items() if reason in p.masked_by]
    if treated:
        ax.plot([p.at for p, _ in treated], [4.45] * len(treated), "v", color="#117a65", ms=7,
                label="tocilizumab / steroid given", gid=Series.TREATMENT)
        for p, mark in treated:
            ax.annotate(mark, (p.at, 4.45), xytext=(0, 5), textcoords="offset points", ha="center", fontsize=7,
                        color="#117a65")
    ax.set_ylim(-0.3, 5.2)
    ax.set_yticks(range(5))
    _panel(ax, "grade")


def _draw_temp(ax: Axes, tl: EpisodeTimeline) -> None:
    xs, ys = _stated(tl.crs(), "temp_c")
    ax.plot(xs, ys, "o-", color="#d35400", lw=1.5, ms=4, gid=Series.TEMP)
    ax.axhline(FEVER_C, color="#d35400", lw=0.8, ls=":")
    low = min(ys + [36.0]) - 0.8
    masked = [p for p in tl.crs() if p.masked]
    if masked:  # along the bottom, clear of the temperatures (a masked patient may be afebrile)
        ax.plot([p.at for p in masked], [low + 0.35] * len(masked), "D", mfc="white", mec="#7d3c98", ms=5,
                label="fever may be masked", gid=Series.MASKED)
    ax.set_ylim(low, max(ys + [FEVER_C + 1.0]) + 0.5)
    _panel(ax, "temp °C")


def _draw_sbp(ax: Axes, tl: EpisodeTimeline) -> None:
    xs, ys = _stated(tl.crs(), "sbp")
    ax.plot(xs, ys, "o-", color="#1f618d", lw=1.5, ms=4, gid=Series.SBP)
    ax.axhline(tl.sbp_threshold, color="#1f618d", lw=0.8, ls=":")
    ax.set_ylim(min(ys + [tl.sbp_threshold]) - 10, max(ys + [tl.sbp_threshold]) + 10)
    _panel(ax, "systolic mmHg")


def _draw_pressors(ax: Axes, tl: EpisodeTimeline) -> None:
    xs, ys = _stated(tl.crs(), "pressors")
    ax.step(xs, ys, "o-", where="post", color="#7b241c", lw=1.5, ms=4, gid=Series.PRESSORS)
    for p in _changes(tl.crs(), "vasopressin"):
        if p.vasopressin:
            ax.annotate("+vaso", (p.at, float(p.pressors or 0)), xytext=(0, 5), textcoords="offset points",
                        ha="center", fontsize=7)
    ax.set_ylim(-0.3, max(ys + [2.0]) + 0.6)
    ax.set_yticks(range(int(max(ys + [2.0])) + 1))
    _panel(ax, "vasopressors")


def _draw_oxygen(ax: Axes, tl: EpisodeTimeline) -> None:
    xs, ys = _stated(tl.crs(), "o2_flow")
    ax.plot(xs, ys, "o-", color="#148f77", lw=1.5, ms=4, gid=Series.O2_FLOW)
    for p in _changes(tl.crs(), "device"):
        if p.device:
            ax.annotate(p.device, (p.at, p.o2_flow or 0.0), xytext=(0, 5), textcoords="offset points",
                        ha="center", fontsize=7)
    ax.set_ylim(-0.5, max(ys + [6.0]) + 2)
    _panel(ax, "O2 L/min")


def _draw_events(ax: Axes, tl: EpisodeTimeline) -> None:
    for kind, gid, y, colour, label in ((TickKind.REMINDER, Series.REMINDERS, 1.0, EVENT_COLOUR, "reminder"),
                                        (TickKind.ESCALATION, Series.ESCALATIONS, 0.0, ESCALATION_COLOUR,
                                         "escalation")):
        times = [t.at for t in tl.ticks if t.kind == kind]
        ax.plot(times, [y] * len(times), "|", color=colour, ms=14, mew=2, gid=gid)
    ax.set_ylim(-0.6, 1.6)
    ax.set_yticks([0, 1], ["escalation", "reminder"], fontsize=8)
    ax.grid(True, axis="x", alpha=0.25)


def build_figure(tl: EpisodeTimeline) -> Figure:
    """The picture as a matplotlib Figure (tests read the plotted series back from it before it is saved)."""
    # Imported when a picture is drawn, not when the bot starts: matplotlib builds its font cache on import
    # (and asks fontconfig, which complains when HOME is not writable) and adds tens of MB to every process.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.dates import AutoDateLocator, DateFormatter
    from matplotlib.figure import Figure

    fig = Figure(figsize=(WIDTH_IN, HEIGHT_IN), dpi=DPI)
    FigureCanvasAgg(fig)
    fig.subplots_adjust(left=0.1, right=0.97, top=0.9, bottom=0.06, hspace=0.12)
    axes = fig.subplots(6, 1, sharex=True, height_ratios=[1.5, 1, 1, 0.8, 1, 0.55])
    _draw_grades(axes[0], tl)
    _draw_temp(axes[1], tl)
    _draw_sbp(axes[2], tl)
    _draw_pressors(axes[3], tl)
    _draw_oxygen(axes[4], tl)
    _draw_events(axes[5], tl)
    if tl.resolved_at is not None:
        for ax in axes:
            ax.axvline(tl.resolved_at, color="#27ae60", lw=1.5, ls="--",
                       gid=Series.RESOLVED if ax is axes[0] else None)
        axes[0].annotate(f"resolved {_hm(tl.resolved_at)}", (tl.resolved_at, 4.45), xytext=(-4, 0),
                         textcoords="offset points", ha="right", fontsize=8, color="#27ae60")
    start = min([tl.opened_at] + [p.at for p in tl.points])
    end = max([tl.until, tl.resolved_at or tl.until] + [p.at for p in tl.points] + [t.at for t in tl.ticks])
    pad = max((end - start) * 0.03, timedelta(minutes=5))
    axes[-1].set_xlim(start - pad, end + pad)
    locator = AutoDateLocator(minticks=4, maxticks=9, tz=timezone.utc)
    axes[-1].xaxis.set_major_locator(locator)
    long = end - start > timedelta(hours=20)
    axes[-1].xaxis.set_major_formatter(DateFormatter("%d %b %H:%M" if long else "%H:%M", tz=timezone.utc))
    axes[-1].set_xlabel("time (UTC)", fontsize=9)
    handles, labels = axes[0].get_legend_handles_labels()
    more = axes[1].get_legend_handles_labels()
    fig.legend(handles + more[0], labels + more[1], loc="upper center", bbox_to_anchor=(0.5, 0.965), ncols=3,
               fontsize=7.5, frameon=False)
    state = f"resolved {_fmt(tl.resolved_at)}" if tl.resolved_at else "open"
    fig.suptitle(f"CRS episode · patient {tl.patient_label} · {PRODUCT_NAMES.get(tl.product, tl.product)} · "
                 f"{state}", fontsize=11, y=0.99)
    return fig


def figure_png(fig: Figure) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI)
    return buffer.getvalue()


# ---------------------------------------------------------------------------------------------- words

def _span(values: list[float], unit: str) -> str:
    lo, hi = min(values), max(values)
    return f"{lo:g}{unit}" if lo == hi else f"{lo:g} to {hi:g}{unit}"


def alt_text(tl: EpisodeTimeline) -> str:
    """What the picture shows, in words, for screen readers (and for the plain-text history)."""
    crs = tl.crs()
    graded = [p for p in crs if p.grade is not None]
    parts = [f"Timeline of the CRS episode of patient {tl.patient_label} "
             f"({PRODUCT_NAMES.get(tl.product, tl.product)}) from {_fmt(tl.opened_at)} to "
             f"{_fmt(tl.resolved_at or tl.until)}: {len(crs)} CRS assessment(s)"
             + (f" and {len(tl.icans())} ICANS assessment(s)." if tl.icans() else ".")]
    if graded:
        worst = max(graded, key=lambda p: (p.grade or 0))
        steps = ", ".join(f"{_grade_label(p)} at {_hm(p.at)}" for p in graded[:12])
        more = f" and {len(graded) - 12} more" if len(graded) > 12 else ""
        parts.append(f"CRS grade over time: {steps}{more}; worst {_grade_label(worst)} at {_hm(worst.at)}.")
    for attr, name, unit in (("temp_c", "Temperature", " °C"), ("sbp", "Systolic pressure", " mmHg"),
                             ("pressors", "Vasopressors", ""), ("o2_flow", "Oxygen", " L/min")):
        _, values = _stated(crs, attr)
        if values:
            parts.append(f"{name} {_span(values, unit)}.")
    masked = [p for p in crs if p.masked]
    if masked:
        parts.append(f"Fever may be masked from {_hm(masked[0].at)}.")
    for reason, mark in TREATMENT_MARKS.items():
        given = [p for p in crs if reason in p.masked_by]
        if given:
            parts.append(f"{reason.capitalize()} noted at {', '.join(_hm(p.at) for p in given[:6])}.")
    reminders = sum(t.kind == TickKind.REMINDER for t in tl.ticks)
    escalations = sum(t.kind == TickKind.ESCALATION for t in tl.ticks)
    parts.append(f"{reminders} reminder(s) and {escalations} escalation(s) posted.")
    parts.append(f"Resolved at {_fmt(tl.resolved_at)}." if tl.resolved_at else "Still open.")
    text = " ".join(parts)
    return text if len(text) <= ALT_TEXT_LIMIT else text[: ALT_TEXT_LIMIT - 1] + "…"


def render_picture(tl: EpisodeTimeline) -> Picture:
    fig = build_figure(tl)
    stamp = (tl.resolved_at or tl.until).astimezone(timezone.utc).strftime("%Y%m%d-%H%M")
    return Picture(png=figure_png(fig), alt_text=alt_text(tl),
                   filename=f"crs-timeline-{tl.patient_label}-{stamp}.png",
                   title=f"CRS timeline · {tl.patient_label}")
