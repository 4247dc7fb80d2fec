"""How a Block Kit message or modal looks on a phone: an HTML rendering for headless chromium (screenshots)
and a pure-Python layout estimate of the same page (block positions in px), used by the suite.

This approximates Slack's mobile client; it is not Slack. What it models, and how:
- a 390 px wide screen; a message row with a 36 px avatar, so content starts 60 px from the left and is
  314 px wide (16 px right margin); a legacy attachment adds its 4 px bar and 12 px padding;
- fonts: DejaVu Sans (shipped with matplotlib, so measurable without a browser) at Slack's mobile sizes
  (body 15/22 px, header 18/24 px bold, context 12/17 px, buttons 14 px bold, 32 px tall). DejaVu Sans is
  wider than Slack's Lato/SF, so text wraps a little earlier than in Slack: heights err on the tall side;
- greedy word wrapping as browsers do (`overflow-wrap: anywhere`), mrkdwn *bold*, _italic_, `code`,
  emoji shortcodes as one 1.25 em glyph, buttons that wrap onto new rows;
- modals: a 56 px title bar, inputs with a bold label, a 44 px field and a hint.
The estimate and the HTML share these numbers (`STYLE`), and `calibrate()` compares them with
chromium's own layout of the HTML when chromium is installed.
"""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import matplotlib
from matplotlib.ft2font import FT2Font

from messages.episodes import plain_dates

WIDTH = 390
FOLD = 650  # the first screen: what a phone shows of a message without scrolling

FONT_DIR = Path(matplotlib.__file__).parent / "mpl-data" / "fonts" / "ttf"
FONTS = {"regular": "DejaVuSans.ttf", "bold": "DejaVuSans-Bold.ttf", "italic": "DejaVuSans-Oblique.ttf",
         "mono": "DejaVuSansMono.ttf"}


@dataclass(frozen=True)
class Style:
    """Every size the estimate and the HTML both use (px)."""

    page_top: int = 12
    left: int = 60  # 16 margin + 36 avatar + 8 gap
    right: int = 16
    name_line: int = 22  # "crsbot  APP  3:02 AM"
    body_size: int = 15
    body_line: int = 22
    header_size: int = 18
    header_line: int = 24
    context_size: int = 12
    context_line: int = 17
    code_size: int = 13
    block_gap: int = 8
    button_size: int = 14
    button_height: int = 32
    button_pad: int = 12
    button_gap: int = 8
    attachment_indent: int = 16  # 4 px bar + 12 px padding
    attachment_gap: int = 8
    divider: int = 17
    modal_bar: int = 56
    modal_pad: int = 16
    label_line: int = 22
    field_height: int = 44
    hint_size: int = 13
    hint_line: int = 18
    input_gap: int = 20

    @property
    def content(self) -> int:
        return WIDTH - self.left - self.right


STYLE = Style()


# ----------------------------------------------------------------------------------------- text runs

@dataclass(frozen=True)
class Run:
    text: str
    face: str = "regular"  # regular, bold, italic, mono
    emoji: bool = False


_MRKDWN = re.compile(r"(\*[^*\n]+\*|_[^_\n]+_|`[^`\n]+`|:[a-z0-9_+\-]+:)")


_MENTION = re.compile(r"<([@#!])([^|>]+)(?:\|([^>]*))?>")


def as_shown(text: str) -> str:
    """What Slack's client shows for its tokens: a date in the reader's own time (its fallback here, about
    as long), a user or channel mention as @name or #name, <!here> as @here."""
    def entity(found: re.Match[str]) -> str:
        sigil, ident, label = found.groups()
        return f"#{label or ident}" if sigil == "#" else f"@{label or ident}"
    return _MENTION.sub(entity, plain_dates(text))


def mrkdwn_runs(text: str, face: str = "regular") -> list[Run]:
    """Slack mrkdwn (the subset the bot writes) as styled runs; tokens as Slack shows them, entities unescaped."""
    runs: list[Run] = []
    for part in _MRKDWN.split(as_shown(text)):
        if not part:
            continue
        if part.startswith(":") and part.endswith(":") and len(part) > 2:
            runs.append(Run(part, face, emoji=True))
        elif part.startswith("*") and part.endswith("*") and len(part) > 2:
            runs.append(Run(html.unescape(part[1:-1]), "bold"))
        elif part.startswith("_") and part.endswith("_") and len(part) > 2:
            runs.append(Run(html.unescape(part[1:-1]), "italic"))
        elif part.startswith("`") and part.endswith("`") and len(part) > 2:
            runs.append(Run(html.unescape(part[1:-1]), "mono"))
        else:
            runs.append(Run(html.unescape(part), face))
    return runs


def plain_runs(text: str, face: str = "regular") -> list[Run]:
    """plain_text with emoji: shortcodes become glyphs, nothing else is markup."""
    return [Run(p, face, emoji=p.startswith(":") and p.endswith(":") and len(p) > 2)
            for p in re.split(r"(:[a-z0-9_+\-]+:)", text) if p]


@lru_cache(maxsize=8)
def _font(face: str) -> FT2Font:
    return FT2Font(str(FONT_DIR / FONTS[face]))


@lru_cache(maxsize=20000)
def _advance(face: str, char: str) -> float:
    """Advance width of one character at 1 px font size (scaled by the caller)."""
    font = _font(face)
    font.set_size(100, 72)
    glyph = font.load_char(ord(char))
    return glyph.linearHoriAdvance / 65536 / 100


def text_width(text: str, face: str, size: float) -> float:
    return sum(_advance(face, c) for c in text) * size


def _pieces(runs: list[Run], size: float, code_size: float) -> list[tuple[str, float]]:
    """(word or space, width) in order; newlines kept as their own pieces."""
    out: list[tuple[str, float]] = []
    for run in runs:
        if run.emoji:
            out.append((run.text, 1.25 * size))
            continue
        px = code_size if run.face == "mono" else size
        for token in re.split(r"(\n| )", run.text):
            if token:
                out.append((token, 0.0 if token == "\n" else text_width(token, run.face, px)))
    return out


def wrap_lines(runs: list[Run], width: float, size: float, code_size: float = STYLE.code_size) -> int:
    """Lines a paragraph takes when wrapped greedily at spaces (long words broken anywhere)."""
    lines, x = 1, 0.0
    for token, w in _pieces(runs, size, code_size):
        if token == "\n":
            lines, x = lines + 1, 0.0
        elif token == " ":
            x += w
        elif x + w <= width or x == 0 and w <= width:
            x += w
        elif w > width:  # a word wider than the line breaks anywhere
            if x > 0:
                lines += 1
            extra, x = divmod(w, width)
            lines += int(extra)
        else:
            lines, x = lines + 1, w
    return lines


# -------------------------------------------------------------------------------------- the estimate

@dataclass(frozen=True)
class Box:
    """Where one block sits on the page (px from the top of the screen)."""

    index: int
    kind: str
    top: float
    bottom: float
    rows: tuple[tuple[float, float], ...] = ()  # actions: each button's (top, bottom)


@dataclass(frozen=True)
class Page:
    boxes: tuple[Box, ...]
    height: float

    def first(self, kind: str) -> Box:
        return next(b for b in self.boxes if b.kind == kind)

    def first_button_bottom(self) -> float:
        return self.first("actions").rows[0][1]


def _buttons(elements: list[dict[str, Any]], width: float, s: Style) -> list[tuple[float, float]]:
    """Each button's (row top offset, row bottom offset) as they wrap onto rows."""
    rows: list[tuple[float, float]] = []
    x, row = 0.0, 0
    for element in elements:
        w = text_width(element["text"]["text"], "bold", s.button_size) + 2 * s.button_pad + 2
        if x > 0 and x + w > width:
            row, x = row + 1, 0.0
        top = row * (s.button_height + s.button_gap)
        rows.append((top, top + s.button_height))
        x += w + s.button_gap
    return rows


def _block_height(block: dict[str, Any], width: float, s: Style) -> tuple[float, tuple[tuple[float, float], ...]]:
    kind = block["type"]
    if kind == "header":
        return wrap_lines(plain_runs(block["text"]["text"], "bold"), width, s.header_size) * s.header_line, ()
    if kind == "section":
        text = block["text"]
        runs = mrkdwn_runs(text["text"]) if text["type"] == "mrkdwn" else plain_runs(text["text"])
        return wrap_lines(runs, width, s.body_size) * s.body_line, ()
    if kind == "context":
        runs = [r for e in block["elements"] for r in mrkdwn_runs(e.get("text", "")) + [Run(" ")]]
        return wrap_lines(runs, width, s.context_size) * s.context_line, ()
    if kind == "actions":
        rows = tuple(_buttons(block["elements"], width, s))
        return (rows[-1][1] if rows else 0), rows
    if kind == "divider":
        return s.divider, ()
    return s.body_line, ()


def _stack(blocks: list[dict[str, Any]], top: float, width: float, s: Style, first_index: int = 0,
           kind_prefix: str = "") -> tuple[list[Box], float]:
    boxes: list[Box] = []
    y = top
    for i, block in enumerate(blocks):
        height, rows = _block_height(block, width, s)
        boxes.append(Box(first_index + i, kind_prefix + block["type"], y, y + height,
                         tuple((y + a, y + b) for a, b in rows)))
        y += height + s.block_gap
    return boxes, y - (s.block_gap if blocks else 0)


def measure_message(message: dict[str, Any], s: Style = STYLE) -> Page:
    """Block positions of a chat message (blocks, then legacy attachments) on a 390 px phone."""
    y = s.page_top + s.name_line + 4
    boxes, y = _stack(list(message.get("blocks") or []), y, s.content, s)
    for attachment in message.get("attachments") or []:
        inner, y = _stack(attachment.get("blocks") or [], y + s.attachment_gap, s.content - s.attachment_indent, s,
                          first_index=len(boxes))
        boxes += inner
    return Page(tuple(boxes), y + s.page_top)


def measure_modal(view: dict[str, Any], s: Style = STYLE) -> Page:
    """Block positions of a modal (full screen on a phone): title bar, then each block."""
    width = WIDTH - 2 * s.modal_pad
    y = s.modal_bar + s.modal_pad
    boxes: list[Box] = []
    for i, block in enumerate(view.get("blocks") or []):
        if block["type"] == "input":
            height = wrap_lines(plain_runs(block["label"]["text"], "bold"), width, s.body_size) * s.label_line
            height += 4 + s.field_height
            if block.get("hint"):
                height += 4 + wrap_lines(plain_runs(block["hint"]["text"]), width, s.hint_size) * s.hint_line
            boxes.append(Box(i, "input", y, y + height))
            y += height + s.input_gap
            continue
        height, rows = _block_height(block, width, s)
        boxes.append(Box(i, block["type"], y, y + height, tuple((y + a, y + b) for a, b in rows)))
        y += height + s.block_gap
    return Page(tuple(boxes), y + s.modal_pad)


# ------------------------------------------------------------------------------------------- the HTML

_EMOJI_COLOURS = {"red_circle": "#dd2e44", "large_orange_circle": "#f4900c", "large_yellow_circle": "#fdcb58",
                  "white_circle": "#e6e7e8", "rotating_light": "#dd2e44", "grey_question": "#99aab5"}


def _runs_html(runs: list[Run]) -> str:
    out = []
    for run in runs:
        if run.emoji:
            colour = _EMOJI_COLOURS.get(run.text.strip(":"), "#99aab5")
            out.append(f'<span class="emoji" title="{html.escape(run.text)}" style="background:{colour}"></span>')
            continue
        text = html.escape(run.text).replace("\n", "<br>")
        tag = {"bold": "b", "italic": "i", "mono": "code"}.get(run.face)
        out.append(f"<{tag}>{text}</{tag}>" if tag else text)
    return "".join(out)


def _block_html(block: dict[str, Any]) -> str:
    kind = block["type"]
    if kind == "header":
        return f'<div class="blk header">{_runs_html(plain_runs(block["text"]["text"], "bold"))}</div>'
    if kind == "section":
        text = block["text"]
        runs = mrkdwn_runs(text["text"]) if text["type"] == "mrkdwn" else plain_runs(text["text"])
        return f'<div class="blk section">{_runs_html(runs)}</div>'
    if kind == "context":
        inner = " ".join(_runs_html(mrkdwn_runs(e.get("text", ""))) for e in block["elements"])
        return f'<div class="blk context">{inner}</div>'
    if kind == "actions":
        buttons = "".join(f'<span class="btn {e.get("style", "")}">{html.escape(e["text"]["text"])}</span>'
                          for e in block["elements"])
        return f'<div class="blk actions">{buttons}</div>'
    if kind == "divider":
        return '<div class="blk divider"></div>'
    if kind == "input":
        hint = f'<div class="hint">{html.escape(block["hint"]["text"])}</div>' if block.get("hint") else ""
        return (f'<div class="blk input"><div class="label">{html.escape(block["label"]["text"])}</div>'
                f'<div class="field"></div>{hint}</div>')
    return f'<div class="blk section">[{html.escape(kind)}]</div>'


def _css(s: Style) -> str:
    faces = "".join(
        f"@font-face{{font-family:'Phone';src:url('{(FONT_DIR / FONTS[face]).as_uri()}');"
        f"font-weight:{'700' if face == 'bold' else '400'};font-style:{'italic' if face == 'italic' else 'normal'}}}"
        for face in ("regular", "bold", "italic"))
    mono = f"@font-face{{font-family:'PhoneMono';src:url('{(FONT_DIR / FONTS['mono']).as_uri()}')}}"
    return faces + mono + f"""
*{{box-sizing:border-box;margin:0;padding:0}}
body{{width:{WIDTH}px;font-family:'Phone';font-size:{s.body_size}px;line-height:{s.body_line}px;color:#1d1c1d;
 background:#fff;font-kerning:none;overflow-wrap:anywhere}}
.msg{{position:relative;padding:{s.page_top}px {s.right}px {s.page_top}px {s.left}px}}
.avatar{{position:absolute;left:16px;top:{s.page_top}px;width:36px;height:36px;border-radius:8px;background:#4a154b}}
.name{{height:{s.name_line}px;margin-bottom:4px;font-weight:700}} .name span{{font-weight:400;color:#616061;font-size:12px}}
.blk{{margin-bottom:{s.block_gap}px}} .blk:last-child{{margin-bottom:0}}
.header{{font-size:{s.header_size}px;line-height:{s.header_line}px;font-weight:700}}
.context{{font-size:{s.context_size}px;line-height:{s.context_line}px;color:#616061}}
code{{font-family:'PhoneMono';font-size:{s.code_size}px;color:#e01e5a;background:#f6f6f6}}
.emoji{{display:inline-block;width:1.25em;height:1em;border-radius:50%;vertical-align:-0.1em}}
.actions{{display:flex;flex-wrap:wrap;gap:{s.button_gap}px}}
.btn{{display:inline-block;height:{s.button_height}px;line-height:{s.button_height - 2}px;padding:0 {s.button_pad}px;
 border:1px solid #bbb;border-radius:4px;font-size:{s.button_size}px;font-weight:700;white-space:nowrap}}
.btn.primary{{background:#007a5a;color:#fff;border-color:#007a5a}}
.divider{{height:1px;background:#ddd;margin:8px 0 {s.divider - 9}px}}
.attachment{{margin-top:{s.attachment_gap}px;border-left:4px solid #ccc;padding-left:12px}}
.modal{{padding:{s.modal_bar + s.modal_pad}px {s.modal_pad}px {s.modal_pad}px;position:relative}}
.bar{{position:absolute;top:0;left:0;right:0;height:{s.modal_bar}px;border-bottom:1px solid #ddd;font-weight:700;
 display:flex;align-items:center;justify-content:center}}
.input{{margin-bottom:{s.input_gap}px}} .label{{font-weight:700;line-height:{s.label_line}px}}
.field{{height:{s.field_height}px;border:1px solid #bbb;border-radius:4px;margin-top:4px}}
.hint{{font-size:{s.hint_size}px;line-height:{s.hint_line}px;color:#616061;margin-top:4px}}
.fold{{position:absolute;left:0;width:{WIDTH}px;top:{FOLD}px;border-top:2px dashed #e01e5a}}
"""


def message_html(message: dict[str, Any], s: Style = STYLE, fold: bool = True) -> str:
    blocks = "".join(_block_html(b) for b in message.get("blocks") or [])
    for attachment in message.get("attachments") or []:
        colour = html.escape(attachment.get("color", "#ccc"))
        inner = "".join(_block_html(b) for b in attachment.get("blocks") or [])
        blocks += f'<div class="attachment" style="border-left-color:{colour}">{inner}</div>'
    marker = '<div class="fold"></div>' if fold else ""
    return (f"<!doctype html><html><head><meta charset='utf-8'><style>{_css(s)}</style></head><body>"
            f'<div class="msg"><div class="avatar"></div><div class="name">crsbot <span>APP 3:02 AM</span></div>'
            f'<div id="blocks">{blocks}</div></div>{marker}</body></html>')


def modal_html(view: dict[str, Any], s: Style = STYLE) -> str:
    blocks = "".join(_block_html(b) for b in view.get("blocks") or [])
    title = html.escape(view.get("title", {}).get("text", ""))
    return (f"<!doctype html><html><head><meta charset='utf-8'><style>{_css(s)}</style></head><body>"
            f'<div class="modal"><div class="bar">{title}</div><div id="blocks">{blocks}</div></div></body></html>')


# ------------------------------------------------------------------------------------ chromium (optional)

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--hide-scrollbars"]
_MEASURE_JS = """<script>window.addEventListener('load',()=>{const out=[...document.querySelectorAll('.blk')]
.map(e=>{const r=e.getBoundingClientRect();return [e.className,Math.round(r.top),Math.round(r.bottom)]});
const p=document.createElement('pre');p.id='measured';p.textContent=JSON.stringify(
{blocks:out,height:Math.round(document.body.scrollHeight)});document.body.appendChild(p);});</script>"""


def chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


def _run_chromium(page: str, *args: str, height: int) -> str:
    browser = chromium()
    if browser is None:
        raise RuntimeError("chromium is not installed (apt-get install chromium)")
    with tempfile.TemporaryDirectory() as profile:
        path = Path(profile) / "page.html"
        path.write_text(page, encoding="utf-8")
        done = subprocess.run([browser, *CHROMIUM_FLAGS, f"--user-data-dir={profile}/p",
                               f"--window-size={WIDTH},{height}", *args, path.as_uri()],
                              capture_output=True, text=True, timeout=120, cwd=profile)
        return done.stdout


def screenshot(page: str, out: Path, height: int) -> Path:
    _run_chromium(page, f"--screenshot={out.resolve()}", height=height)
    return out


def chromium_layout(page: str) -> dict[str, Any]:
    """Chromium's own block positions for a page, to calibrate the estimate."""
    dom = _run_chromium(page.replace("</body>", _MEASURE_JS + "</body>"), "--dump-dom",
                        "--virtual-time-budget=3000", height=2400)
    found = re.search(r'<pre id="measured">(.*?)</pre>', dom, re.S)
    if not found:
        raise RuntimeError("chromium did not report a layout")
    return json.loads(html.unescape(found.group(1)))


# ------------------------------------------------------------------------------------------- command

def main(argv: list[str] | None = None) -> int:
    """`python -m bot.testing.phone OUT_DIR`: screenshots and heights of the replies the README shows."""
    from bot.testing.phone_cases import README_SHOTS, cases

    out = Path((argv or sys.argv[1:] or ["docs"])[0])
    out.mkdir(parents=True, exist_ok=True)
    for name, payload, is_modal in cases():
        page = measure_modal(payload) if is_modal else measure_message(payload)
        source = modal_html(payload) if is_modal else message_html(payload)
        line = f"{name}: estimated height {page.height:.0f} px"
        if not is_modal:
            line += f", first button bottom {page.first_button_bottom():.0f} px"
        if chromium():
            measured = chromium_layout(source)
            line += f"; chromium height {measured['height']} px"
            if name in README_SHOTS:
                screenshot(source, out / f"{name}.png", height=int(max(page.height, measured["height"])) + 8)
        print(line)
    return 0


if __name__ == "__main__":
    os.environ.setdefault("MPLBACKEND", "Agg")
    raise SystemExit(main())
