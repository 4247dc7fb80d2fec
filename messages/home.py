"""The App Home tab: the open episodes of the channels the viewer belongs to, each channel's on-call
chain (in the words of `/crs status`), and the rulebooks in force. Times are Slack date tokens, so
each viewer reads their own local time."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, tzinfo
from typing import Any

from grading.models import RulebookRef
from messages.blocks import clip
from messages.episodes import EpisodeLike, chain_line, slack_time
from messages.layout import JUDGMENT, PRODUCT_NAMES

# Slack's home tab holds at most 100 blocks; keep room for the rulebooks and the footer.
MAX_CHANNEL_BLOCKS = 80


@dataclass(frozen=True)
class ChannelHome:
    channel_id: str
    chain: str  # the whole escalation chain, as `messages.episodes.chain_text` words it
    episodes: tuple[tuple[EpisodeLike, datetime | None], ...]  # each open episode and its next reminder


def _grade(value: int | None) -> str:
    return str(value) if value is not None else "?"


def _episode_line(ep: EpisodeLike, due: datetime | None, zone: tzinfo) -> str:
    nxt = f"next reminder {slack_time(due, zone)}" if due else "no reminder booked"
    return (f"• *{ep.patient_label}* ({PRODUCT_NAMES.get(ep.product, ep.product)}): current grade "
            f"{_grade(ep.current_grade)}, worst {_grade(ep.worst_grade)}; {nxt}")


def _rulebook_line(ref: RulebookRef) -> str:
    reviewed = f", reviewed by {ref.reviewed_by} on {ref.reviewed_on}" if ref.reviewed_by else ""
    return f"• {PRODUCT_NAMES[ref.product]}: {ref.title}, {ref.id} v{ref.version}{reviewed}"


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": clip(text, 3000)}}


def home_view(channels: list[ChannelHome], rulebooks: list[RulebookRef], refreshed: datetime,
              zone: tzinfo) -> dict[str, Any]:
    """Times are Slack date tokens, which each viewer reads in their own zone; `zone` (the site's) is their
    fallback."""
    blocks: list[dict[str, Any]] = [{"type": "header", "text": {"type": "plain_text", "text": "Open CRS episodes"}}]
    shown = [c for c in channels if c.episodes]
    if not shown:
        blocks.append(_section("No open CRS episodes in the channels you belong to."))
    for channel in shown:
        if len(blocks) >= MAX_CHANNEL_BLOCKS:
            blocks.append(_section(f"…and {len(shown) - shown.index(channel)} more channel(s): `/crs status` there."))
            break
        blocks.append(_section(f"*<#{channel.channel_id}>*  ·  {chain_line(channel.chain)}\n" +
                               "\n".join(_episode_line(ep, due, zone) for ep, due in channel.episodes)))
    blocks.append({"type": "divider"})
    blocks.append({"type": "header", "text": {"type": "plain_text", "text": "Rulebooks in force"}})
    blocks.append(_section("\n".join(_rulebook_line(ref) for ref in rulebooks)))
    blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": (
        f"Updated {slack_time(refreshed, zone)}. {JUDGMENT}")}]})
    return {"type": "home", "blocks": blocks}
