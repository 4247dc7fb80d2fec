"""App Home: publish the tab when a user opens it, and refresh it for the channel's recent viewers
after every request that acted in a channel (Bolt's listener-completion hook)."""

from __future__ import annotations

from typing import Any

from slack_bolt import App, BoltRequest, BoltResponse
from slack_bolt.listener.listener_completion_handler import ListenerCompletionHandler

from bot.handlers.deps import Deps
from bot.handlers.home import HomeTab, channel_of


class _RefreshAfter(ListenerCompletionHandler):
    def __init__(self, inner: ListenerCompletionHandler, home: HomeTab) -> None:
        self.inner, self.home = inner, home

    def handle(self, request: BoltRequest, response: BoltResponse | None) -> None:
        channel = channel_of(request.context)
        if channel:
            self.home.changed(channel)
        self.inner.handle(request=request, response=response)


def register(app: App, deps: Deps) -> HomeTab:
    home = HomeTab(deps)

    @app.event("app_home_opened")
    def on_home_opened(event: dict[str, Any]) -> None:
        if event.get("tab", "home") == "home":
            home.opened(str(event["user"]))

    runner = app.listener_runner
    runner.listener_completion_handler = _RefreshAfter(runner.listener_completion_handler, home)
    return home
