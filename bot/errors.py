"""Failures a Slack user can cause at the bot's edge (grading's own are in grading/errors.py).

Each is one type carrying only what its reply needs; bot/listeners/errors.py turns any of them
into the reply. `Refusal`s are authorization decisions: audited by kind, never with the text typed.
"""

from __future__ import annotations

from grading.errors import CrsbotError
from messages import refusals


class Refusal(CrsbotError):
    """Refused before any handler ran; `reason` is what the audit trail records."""

    reason = "refused"


class ChannelNotAllowedError(Refusal):
    reason = "channel_not_allowed"

    def __init__(self, channel: str) -> None:
        super().__init__(refusals.CHANNEL_NOT_ALLOWED.format(channel=channel))


class ForeignEpisodeError(Refusal):
    """A button names an episode that lives in another channel than the one clicked in."""

    reason = "episode_in_other_channel"

    def __init__(self) -> None:
        super().__init__(refusals.FOREIGN_EPISODE)


class UnsealedError(Refusal):
    """A button value or form metadata the bot did not issue for this channel (edited or copied)."""

    reason = "unsealed_value"

    def __init__(self, what: str) -> None:
        super().__init__(refusals.UNSEALED.format(what=what))


class NoEpisodeError(CrsbotError):
    def __init__(self, label: str) -> None:
        super().__init__(refusals.NO_EPISODE.format(label=label))


class DetailsUnavailableError(CrsbotError):
    """Details was clicked for an assessment this channel has no stored report of (or an older format)."""

    def __init__(self) -> None:
        super().__init__(refusals.DETAILS_UNAVAILABLE)
