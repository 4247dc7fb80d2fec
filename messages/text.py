"""Plain text of a layout: the CLI's default output, what the console prints, and Slack's `text`
(the notification and the fallback for clients that cannot show blocks)."""

from __future__ import annotations

from messages.layout import Layout

DO_NOW = "Do now"
DETAILS_HINT = "Details (button): the reasons in full, every action with its source, supportive care."


def first_screen_lines(layout: Layout) -> list[str]:
    lines = [layout.headline, *layout.lead]
    if layout.first:
        lines.append(f"{DO_NOW}:")
        lines.extend(f"  {i}. {action}" for i, action in enumerate(layout.first, 1))
    return lines


def render_text(layout: Layout, details: bool = True) -> str:
    """The whole reply (`details=True`, for the CLI and console) or its first screen."""
    lines = first_screen_lines(layout)
    if details:
        for section in layout.details:
            lines.append("")
            lines.append(f"{section.title}:")
            lines.extend(f"  - {line}" for line in section.lines)
    elif layout.details:
        lines.append(DETAILS_HINT)
    lines.append("")
    lines.append(layout.context)
    return "\n".join(lines)


def notification_text(layout: Layout, details: bool = False) -> str:
    """Slack's `text`: a push notification shows its start, so it opens with the patient, the grade and the
    first action (the summary), then the rest of the reply."""
    return "\n".join([layout.summary, *render_text(layout, details).splitlines()[1:]])
