"""Block Kit rendering of a `Layout`, kept within Slack's limits however long the content is."""

from __future__ import annotations

import json
from typing import Any

from messages.ids import ActionId, CallbackId
from messages.layout import Layout
from messages.text import DO_NOW, notification_text

# Severity in an emoji beside the words of the headline (never colour alone, and no legacy attachment
# colour bar, which Slack may fold behind "Show more").
SEVERITY_EMOJI = {0: ":white_circle:", 1: ":large_yellow_circle:", 2: ":large_orange_circle:", 3: ":red_circle:",
                  4: ":rotating_light:"}
UNKNOWN_EMOJI = ":grey_question:"

MAX_BLOCKS = 50
MAX_SECTION_CHARS = 3000
MAX_HEADER_CHARS = 150
MAX_FALLBACK_CHARS = 3900
MAX_BUTTON_VALUE = 2000
MAX_VIEW_BLOCKS = 100
_LABEL_CHARS = 40  # a lead line's "Label:" is bolded when the colon comes this early

Block = dict[str, Any]


def clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def mrkdwn_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def section_blocks(title: str, lines: tuple[str, ...]) -> list[Block]:
    """One titled section; split across blocks when it would pass the 3000-character limit."""
    blocks: list[Block] = []
    chunk = f"*{title}*"
    for line in lines:
        item = f"\n• {mrkdwn_escape(line)}"
        if len(chunk) + len(item) > MAX_SECTION_CHARS:
            blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": chunk}})
            chunk = clip(f"*{title} (cont.)*{item}", MAX_SECTION_CHARS)
        else:
            chunk += item
    blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": chunk}})
    return blocks


def button(text: str, action_id: ActionId, value: str, style: str | None = None) -> Block:
    element: Block = {"type": "button", "text": {"type": "plain_text", "text": text}, "action_id": action_id.value,
                      "value": clip(value, MAX_BUTTON_VALUE)}
    if style:
        element["style"] = style
    return element


def button_value(**fields: Any) -> str:
    """Buttons carry what the click needs (`t`: the original text, ids) as compact JSON. Only the text
    is shortened to fit Slack's 2000 characters, so the value always stays valid JSON."""
    while len(encoded := json.dumps(fields, separators=(",", ":"))) > MAX_BUTTON_VALUE and fields.get("t"):
        fields["t"] = fields["t"][: len(fields["t"]) // 2]
    return encoded


TIMELINE_BUTTON = "Timeline"


def assessment_buttons(value: str, timeline: bool = False) -> Block:
    """`timeline`: the assessment belongs to a tracked episode, so its picture can be posted."""
    return {"type": "actions", "block_id": "crs_actions", "elements": [
        button("Reassessed", ActionId.REASSESSED, value, "primary"),
        button("Details", ActionId.DETAILS, value),
        button("Resolved", ActionId.RESOLVED, value),
        button("Snooze 15 min", ActionId.SNOOZE, value),
        button("New assessment", ActionId.NEW_ASSESSMENT, value),
        *([button(TIMELINE_BUTTON, ActionId.TIMELINE, value)] if timeline else []),
    ]}


def severity_emoji(grade: int | None) -> str:
    return SEVERITY_EMOJI.get(grade, UNKNOWN_EMOJI) if grade is not None else UNKNOWN_EMOJI


def _bold_label(line: str) -> str:
    label, colon, rest = line.partition(": ")
    escaped = mrkdwn_escape(line)
    if colon and len(label) <= _LABEL_CHARS:
        escaped = f"*{mrkdwn_escape(label)}:* {mrkdwn_escape(rest)}"
    return escaped


def _mrkdwn(text: str) -> Block:
    return {"type": "section", "text": {"type": "mrkdwn", "text": clip(text, MAX_SECTION_CHARS)}}


def first_screen_blocks(layout: Layout) -> list[Block]:
    """Header (severity emoji + words), why, and the actions that matter most now."""
    blocks: list[Block] = [{"type": "header", "text": {
        "type": "plain_text", "emoji": True,
        "text": clip(f"{severity_emoji(layout.grade)} {layout.headline}" if layout.graded else layout.headline,
                     MAX_HEADER_CHARS)}}]
    if layout.lead:
        blocks.append(_mrkdwn("\n".join(_bold_label(line) for line in layout.lead)))
    if layout.first:
        lines = [f"{i}. {_bold_label(action)}" for i, action in enumerate(layout.first, 1)]
        blocks.append(_mrkdwn(f"*{DO_NOW}*\n" + "\n".join(lines)))
    return blocks


def detail_blocks(layout: Layout) -> list[Block]:
    blocks: list[Block] = []
    for section in layout.details:
        blocks.extend(section_blocks(section.title, section.lines))
    return blocks


def _context(text: str) -> Block:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": clip(mrkdwn_escape(text), 3000)}]}


def _fit(body: list[Block], tail: list[Block], limit: int) -> list[Block]:
    room = limit - len(tail)
    if len(body) > room:
        body = body[: room - 1] + [_mrkdwn("_Shortened to fit Slack; `crsbot grade` prints it in full._")]
    return body + tail


def render_message(layout: Layout, buttons: Block | None = None, footer: str | None = None) -> dict[str, Any]:
    """A chat.postMessage payload, Block Kit only. With buttons (which include Details) the message is the
    first screen alone; without, there is nothing to tap, so the details follow inline."""
    body = first_screen_blocks(layout)
    if buttons is None:
        body += detail_blocks(layout)
    tail = [buttons] if buttons else []
    tail.append(_context(layout.context + (f" · {footer}" if footer else "")))
    return {"text": clip(notification_text(layout, details=buttons is None), MAX_FALLBACK_CHARS),
            "blocks": _fit(body, tail, MAX_BLOCKS)}


def details_view(layout: Layout) -> Block:
    """The Details modal: the first screen again, then everything else, with sources."""
    body = first_screen_blocks(layout) + [{"type": "divider"}] + detail_blocks(layout)
    return {"type": "modal", "callback_id": CallbackId.CRS_DETAILS.value,
            "title": {"type": "plain_text", "text": "Details"},
            "close": {"type": "plain_text", "text": "Close"},
            "blocks": _fit(body, [_context(layout.context)], MAX_VIEW_BLOCKS)}


def render_ephemeral(title: str, body: str) -> dict[str, Any]:
    text = f"*{title}*\n{body}"
    return {"text": clip(f"{title}\n{body}", MAX_FALLBACK_CHARS),
            "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": clip(text, MAX_SECTION_CHARS)}}]}
