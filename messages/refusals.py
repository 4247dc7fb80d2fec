"""Words for requests crsbot refuses before doing anything: where, what and how to do it right.

A refusal never repeats what was typed (it may hold a patient identifier)."""

from __future__ import annotations

CHANNEL_NOT_ALLOWED = ("crsbot is not enabled in this channel ({channel}). Ask your Slack admin to add it to "
                       "CRSBOT_ALLOWED_CHANNELS.")
NO_EPISODE = "No open CRS episode for patient `{label}` in this channel. `/crs status` lists them."
NEEDS_PATIENT = "`/crs {command}` needs the patient's bed or study label."
NEEDS_PATIENT_ACCEPTED = "patient=<bed or study label>"
NEEDS_PATIENT_EXAMPLE = "/crs {command} patient=bed12"
NOT_A_MENTION = "`{target}` is not a Slack user or user group mention."
MENTION_ACCEPTED = "@user or @usergroup (pick it from Slack's autocomplete)"
MENTION_EXAMPLE = "/crs oncall @jane"
FORM_NEEDS_TRIGGER = "the form needs Slack's trigger; type `/crs form` again."
UNKNOWN_BUTTON = "unknown button `{action}`."
FOREIGN_EPISODE = ("That button belongs to a patient episode in another channel, so nothing was changed. "
                   "Use the buttons in the channel where the episode was posted.")
UNSEALED = ("crsbot could not confirm this {what} came from one of its own messages in this channel, so nothing "
            "was changed. Type `/crs status` for the open episodes here, or `/crs form` for a new form.")
DETAILS_UNAVAILABLE = ("The details of this assessment are not available here (not recorded in this channel, or "
                       "recorded by an older version). Run the `/crs` command again to see them.")
