"""Slack listeners, each module exposing `register(app, service)` (bolt-python starter layout)."""

from __future__ import annotations

from slack_bolt import App

from bot.listeners import actions, commands, errors, views
from bot.service import CrsService


def register_listeners(app: App, service: CrsService) -> None:
    errors.register(app, service)
    commands.register(app, service)
    actions.register(app, service)
    views.register(app, service)
