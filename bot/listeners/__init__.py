"""Slack listeners, each module exposing `register(app, deps)` (bolt-python starter layout).
`authorize` is the one middleware every request passes before any listener."""

from __future__ import annotations

from slack_bolt import App

from bot.handlers.deps import Deps
from bot.handlers.home import HomeTab
from bot.listeners import actions, authorize, commands, errors, home, views


def register_listeners(app: App, deps: Deps) -> HomeTab:
    """Returns the App Home tab, which the reminder engine also refreshes (bot/app.py)."""
    errors.register(app, deps)
    authorize.register(app, deps)
    commands.register(app, deps)
    actions.register(app, deps)
    views.register(app, deps)
    return home.register(app, deps)
