"""What each `/crs` sub-command, button and reminder does, independent of how Slack delivered it.
Grouped by what they hold: assessments, episodes, buttons, reminders."""
