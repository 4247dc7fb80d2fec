"""Plain text: the Slack fallback, the CLI's default output and what the console prints."""

from __future__ import annotations

from messages.layout import Layout


def render_text(layout: Layout) -> str:
    lines = [layout.headline]
    if layout.alert:
        lines.append(f"!! {layout.alert}")
    for section in layout.sections:
        lines.append("")
        lines.append(f"{section.title}:")
        lines.extend(f"  - {line}" for line in section.lines)
    lines.append("")
    lines.append(layout.context)
    return "\n".join(lines)
