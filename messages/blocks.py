"""Block Kit rendering of a `Layout`, kept within Slack's limits however long the content is."""

from __future__ import annotations

import json
from typing import Any

from messages.ids import ActionId
from messages.layout import Layout
from messages.text import render_text

GRADE_COLOURS = {0: "#2eb67d", 1: "#ecb22e", 2: "#e8912d", 3: "#e01e5a", 4: "#7a0019"}
UNKNOWN_COLOUR = "#8d8d8d"

MAX_BLOCKS = 50
MAX_SECTION_CHARS = 3000
MAX_HEADER_CHARS = 150
MAX_FALLBACK_CHARS = 3900
MAX_BUTTON_VALUE = 2000

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
        button("Resolved", ActionId.RESOLVED, value),
        button("Snooze 15 min", ActionId.SNOOZE, value),
        button("New assessment", ActionId.NEW_ASSESSMENT, value),
        *([button(TIMELINE_BUTTON, ActionId.TIMELINE, value)] if timeline else []),
    ]}


def render_message(layout: Layout, buttons: Block | None = None, footer: str | None = None) -> dict[str, Any]:
    """A chat.postMessage payload: header and alert on top, the body in a grade-coloured
    attachment, and a plain-text fallback for notifications and clients without Block Kit."""
    top: list[Block] = [{"type": "header", "text": {"type": "plain_text", "text": clip(layout.headline,
                                                                                        MAX_HEADER_CHARS)}}]
    if layout.alert:
        top.append({"type": "section", "text": {"type": "mrkdwn",
                                                "text": clip(f":warning: *{mrkdwn_escape(layout.alert)}*",
                                                             MAX_SECTION_CHARS)}})
    body: list[Block] = []
    for section in layout.sections:
        body.extend(section_blocks(section.title, section.lines))
    tail: list[Block] = []
    if buttons:
        tail.append(buttons)
    context = layout.context + (f" · {footer}" if footer else "")
    tail.append({"type": "context", "elements": [{"type": "mrkdwn", "text": clip(mrkdwn_escape(context), 3000)}]})
    room = MAX_BLOCKS - len(tail)
    if len(body) > room:
        body = body[: room - 1] + [{"type": "section", "text": {
            "type": "mrkdwn", "text": "_Message shortened to fit Slack; the full text is in the notification text._"}}]
    colour = GRADE_COLOURS.get(layout.grade, UNKNOWN_COLOUR) if layout.grade is not None else UNKNOWN_COLOUR
    return {
        "text": clip(render_text(layout), MAX_FALLBACK_CHARS),
        "blocks": top,
        "attachments": [{"color": colour, "blocks": body + tail, "fallback": clip(layout.summary or
                                                                                    layout.headline, 300)}],
    }


def render_ephemeral(title: str, body: str) -> dict[str, Any]:
    text = f"*{title}*\n{body}"
    return {"text": clip(f"{title}\n{body}", MAX_FALLBACK_CHARS),
            "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": clip(text, MAX_SECTION_CHARS)}}]}
