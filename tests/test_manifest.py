"""The Slack app manifest (slack-manifest.json) matches what the bot serves and needs.

JSON because Slack accepts JSON manifests and the stdlib can parse it (PyYAML is
not a dependency).  JSON has no comments, so the reasoning lives here:

* Bot scopes are the minimum: ``commands`` for /crs, ``chat:write`` to post and
  update grading messages, ``users:read`` for a clinician's name and time zone,
  ``channels:read``/``groups:read`` to read public/private channel info,
  ``files:write`` to upload the episode timeline picture into its thread.  Modals,
  ephemeral replies, response URLs and the App Home tab (views.publish) need no
  scope. The one event, ``app_home_opened``, needs no scope either; listing the
  viewer's channels (users.conversations) uses channels:read/groups:read.
* ``socket_mode_enabled`` is false because the bot serves HTTP at /slack/events;
  set it to true (and give the bot an app-level ``xapp-`` token with
  ``connections:write``) to run in Socket Mode, where the request URLs are unused.
* Token rotation stays off: the bot uses one long-lived ``xoxb-`` token.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from bot.testing.slack_fake import DEFAULT_BOT_SCOPES

MANIFEST_PATH = Path(__file__).resolve().parents[1] / "slack-manifest.json"
MINIMAL_BOT_SCOPES = {"commands", "chat:write", "users:read", "channels:read", "groups:read", "files:write"}
EVENTS_PATH = "/slack/events"
# Top-level and settings keys of Slack's manifest schema v1, to catch misspelt keys
# that Slack would reject.
SCHEMA_TOP_LEVEL = {"_metadata", "display_information", "features", "oauth_config", "settings"}
SCHEMA_SETTINGS = {
    "allowed_ip_address_ranges",
    "event_subscriptions",
    "incoming_webhooks",
    "interactivity",
    "org_deploy_enabled",
    "socket_mode_enabled",
    "token_rotation_enabled",
    "function_runtime",
    "siws_links",
    "is_hosted",
}


@pytest.fixture(scope="module")
def manifest() -> dict[str, Any]:
    with MANIFEST_PATH.open(encoding="utf-8") as f:
        data = json.load(f)
    assert isinstance(data, dict)
    return data


def test_uses_only_schema_keys(manifest: dict[str, Any]) -> None:
    assert set(manifest) <= SCHEMA_TOP_LEVEL
    assert set(manifest["settings"]) <= SCHEMA_SETTINGS
    assert manifest["_metadata"]["major_version"] == 1


def test_display_information_fits_slack_limits(manifest: dict[str, Any]) -> None:
    info = manifest["display_information"]
    assert info["name"] == "crsbot"
    assert 1 <= len(info["description"]) <= 140
    assert manifest["features"]["bot_user"]["display_name"] == "crsbot"


def test_crs_command_posts_to_the_events_endpoint(manifest: dict[str, Any]) -> None:
    commands = manifest["features"]["slash_commands"]
    assert [c["command"] for c in commands] == ["/crs"]
    [crs] = commands
    url = urlsplit(crs["url"])
    assert url.scheme == "https"
    assert url.path == EVENTS_PATH
    # Escaped, so `/crs oncall @jane` arrives as <@U123|jane>: the bot stores IDs, not display names.
    assert crs["should_escape"] is True
    assert 1 <= len(crs["description"]) <= 2000


def test_usage_hint_lists_every_subcommand(manifest: dict[str, Any]) -> None:
    hint = manifest["features"]["slash_commands"][0]["usage_hint"]
    assert len(hint) <= 1000
    for word in ("temp=", "sbp=", "pressor=", "help", "form", "icans", "delay", "premed", "status", "resolve patient="):
        assert word in hint, word


def test_interactivity_is_on_and_shares_the_endpoint(manifest: dict[str, Any]) -> None:
    interactivity = manifest["settings"]["interactivity"]
    assert interactivity["is_enabled"] is True
    request_url = urlsplit(interactivity["request_url"])
    command_url = urlsplit(manifest["features"]["slash_commands"][0]["url"])
    assert request_url.path == EVENTS_PATH
    assert request_url.netloc == command_url.netloc


def test_scopes_are_exactly_the_minimal_bot_set(manifest: dict[str, Any]) -> None:
    scopes = manifest["oauth_config"]["scopes"]
    assert set(scopes) == {"bot"}, "no user or optional scopes"
    bot = scopes["bot"]
    assert len(bot) == len(set(bot)), "duplicate scope"
    assert set(bot) == MINIMAL_BOT_SCOPES


def test_local_fake_enforces_the_production_scopes(manifest: dict[str, Any]) -> None:
    # The fake refuses calls needing scopes outside this set, so a new call the
    # manifest does not cover fails in tests rather than in a hospital workspace.
    assert DEFAULT_BOT_SCOPES == set(manifest["oauth_config"]["scopes"]["bot"])


def test_http_mode_without_token_rotation(manifest: dict[str, Any]) -> None:
    settings = manifest["settings"]
    assert settings["socket_mode_enabled"] is False
    assert settings["token_rotation_enabled"] is False
    assert settings["org_deploy_enabled"] is False


def test_home_tab_and_its_one_event(manifest: dict[str, Any]) -> None:
    assert manifest["features"]["app_home"]["home_tab_enabled"] is True
    events = manifest["settings"]["event_subscriptions"]
    assert events["bot_events"] == ["app_home_opened"]
    assert urlsplit(events["request_url"]).path == EVENTS_PATH
