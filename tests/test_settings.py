"""Deployment settings from the environment: defaults, parsing, secrets kept secret, and start-up
errors that name the environment variable to fix."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from pydantic import SecretStr, ValidationError

from bot.settings import DEFAULT_PATIENT_DENY, SettingsError, load_settings, require
from tests.slack_support import clean_env, run_crsbot

TOKEN = "xoxb-settings-test-1f2e3d4c5b6a"
SIGNING = "signing-settings-test-9a8b7c6d5e"
APP_TOKEN = "xapp-settings-test-0a1b2c3d4e"


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Only what each test sets: nothing from the developer's shell, no stray relative paths."""
    for name in list(os.environ):
        if name.startswith(("SLACK_", "CRSBOT_")) or name.lower() in ("database_url", "port"):
            monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)


def set_env(monkeypatch: pytest.MonkeyPatch, **values: str) -> None:
    for name, value in values.items():
        monkeypatch.setenv(name, value)


def config_error(monkeypatch: pytest.MonkeyPatch, **values: str) -> str:
    set_env(monkeypatch, **values)
    with pytest.raises(SettingsError) as caught:
        load_settings()
    return caught.value.user_message()


# --------------------------------------------------------------------------- reading the environment


def test_defaults_with_an_empty_environment() -> None:
    settings = load_settings()
    assert settings.slack_bot_token is None
    assert settings.slack_signing_secret is None
    assert settings.slack_app_token is None
    assert settings.slack_api_url == "https://slack.com/api/"
    assert settings.port == 3000
    assert settings.threads == 16
    assert settings.product == "iv"
    assert settings.o2rule == "label"
    assert settings.sbp_threshold == 90
    assert settings.allowed_channels == ()
    assert settings.rulebook is None
    assert settings.patient_deny_pattern == DEFAULT_PATIENT_DENY
    assert settings.database_url is None
    assert settings.db_url.startswith("sqlite:///")
    assert settings.db_url.endswith("crsbot.sqlite3")


def test_every_setting_is_read_from_its_variable(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    set_env(monkeypatch,
            SLACK_BOT_TOKEN=TOKEN, SLACK_SIGNING_SECRET=SIGNING, SLACK_APP_TOKEN=APP_TOKEN,
            SLACK_API_URL="http://127.0.0.1:5555/api/", CRSBOT_DATA_DIR=str(tmp_path / "d"),
            CRSBOT_RULEBOOK=str(tmp_path / "site.toml"), CRSBOT_PRODUCT="velo", CRSBOT_O2RULE="astct",
            CRSBOT_SBP_THRESHOLD="100", CRSBOT_ALLOWED_CHANNELS="C01, C02,,G03 ",
            CRSBOT_PATIENT_DENY_PATTERN=r"^\d{7}$", CRSBOT_REASSESS_INTERVALS="1=2h,2=1h,3=30m,4=15m",
            CRSBOT_ESCALATE_AFTER="10m", CRSBOT_TICK_SECONDS="0.5", PORT="8080", CRSBOT_THREADS="8",
            CRSBOT_LOG_LEVEL="debug")
    settings = load_settings()
    assert isinstance(settings.slack_bot_token, SecretStr)
    assert settings.slack_bot_token.get_secret_value() == TOKEN
    assert settings.slack_signing_secret is not None
    assert settings.slack_signing_secret.get_secret_value() == SIGNING
    assert settings.slack_app_token is not None and settings.slack_app_token.get_secret_value() == APP_TOKEN
    assert settings.slack_api_url == "http://127.0.0.1:5555/api/"
    assert settings.data_dir == tmp_path / "d"
    assert settings.db_url == f"sqlite:///{(tmp_path / 'd' / 'crsbot.sqlite3').resolve()}"
    assert settings.rulebook == tmp_path / "site.toml"
    assert (settings.product, settings.o2rule, settings.sbp_threshold) == ("velo", "astct", 100)
    assert settings.site.product == "velo" and settings.site.sbp_threshold == 100
    assert settings.allowed_channels == ("C01", "C02", "G03")
    assert settings.patient_deny_pattern == r"^\d{7}$"
    assert settings.reassess_intervals == "1=2h,2=1h,3=30m,4=15m"
    assert settings.escalate_after == "10m"
    assert settings.tick_seconds == 0.5
    assert (settings.port, settings.threads, settings.log_level) == (8080, 8, "debug")


def test_database_url_wins_over_the_data_dir(monkeypatch: pytest.MonkeyPatch) -> None:
    set_env(monkeypatch, DATABASE_URL="postgresql://crsbot@db:5432/crsbot", CRSBOT_DATA_DIR="/nonexistent")
    assert load_settings().db_url == "postgresql://crsbot@db:5432/crsbot"


def test_explicit_overrides_beat_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    set_env(monkeypatch, PORT="8080")
    assert load_settings(port=9090).port == 9090


def test_settings_are_frozen() -> None:
    settings = load_settings()
    with pytest.raises(ValidationError):
        settings.port = 1  # type: ignore[misc]


# --------------------------------------------------------------------------- secrets


def test_secrets_never_show_in_repr_str_or_dumps(monkeypatch: pytest.MonkeyPatch) -> None:
    set_env(monkeypatch, SLACK_BOT_TOKEN=TOKEN, SLACK_SIGNING_SECRET=SIGNING, SLACK_APP_TOKEN=APP_TOKEN)
    settings = load_settings()
    shown = [repr(settings), str(settings), f"{settings}", settings.model_dump_json(),
             repr(settings.model_dump()), repr(settings.slack_bot_token), str(settings.slack_signing_secret)]
    for text in shown:
        for secret in (TOKEN, SIGNING, APP_TOKEN):
            assert secret not in text
    assert "**********" in settings.model_dump_json()


def test_configuration_errors_do_not_echo_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    message = config_error(monkeypatch, SLACK_BOT_TOKEN=TOKEN, SLACK_SIGNING_SECRET=SIGNING, PORT="abc")
    assert TOKEN not in message and SIGNING not in message


# --------------------------------------------------------------------------- errors name the variable


@pytest.mark.parametrize(("name", "value"), [
    ("PORT", "abc"),
    ("PORT", "70000"),
    ("PORT", "-1"),
    ("CRSBOT_THREADS", "0"),
    ("CRSBOT_THREADS", "many"),
    ("CRSBOT_SBP_THRESHOLD", "lots"),
    ("CRSBOT_SBP_THRESHOLD", "200"),
    ("CRSBOT_PRODUCT", "rituximab"),
    ("CRSBOT_O2RULE", "whatever"),
    ("CRSBOT_TICK_SECONDS", "0"),
    ("CRSBOT_TICK_SECONDS", "fast"),
    ("CRSBOT_ESCALATE_AFTER", "soon"),
    ("CRSBOT_ESCALATE_AFTER", "15"),
    ("CRSBOT_PATIENT_DENY_PATTERN", "(unclosed"),
    ("CRSBOT_PATIENT_DENY_PATTERN", ""),
    ("CRSBOT_PATIENT_ALLOW_PATTERN", "  "),
    ("CRSBOT_PATIENT_ALLOW_PATTERN", "bed[0-9"),
    ("CRSBOT_ESCALATE_AFTER", "0s"),
    ("CRSBOT_LOG_LEVEL", "chatty"),
    ("CRSBOT_HANDOFF_TIMES", "7am"),
    ("CRSBOT_HANDOFF_TIMES", "07:00,24:00"),
    ("CRSBOT_HANDOFF_TIMES", "19.00"),
])
def test_a_malformed_setting_names_its_variable(monkeypatch: pytest.MonkeyPatch, name: str, value: str) -> None:
    message = config_error(monkeypatch, **{name: value})
    assert message.startswith("Configuration error: ") and "\n" not in message.strip()
    assert f"{name}:" in message
    assert "Traceback" not in message and "pydantic" not in message.lower()


def test_a_bad_handoff_time_stops_start_up_with_one_line_naming_the_variable(tmp_path: Path) -> None:
    """`crsbot serve` itself, as a site would start it: it exits before serving, with one line that names the
    variable and the part to fix (the good time beside it is not blamed)."""
    env = clean_env({"SLACK_BOT_TOKEN": TOKEN, "SLACK_SIGNING_SECRET": SIGNING,
                     "SLACK_API_URL": "http://127.0.0.1:9/api/", "CRSBOT_DATA_DIR": str(tmp_path / "data"),
                     "CRSBOT_HANDOFF_TIMES": "07:00, 7pm", "CRSBOT_TIMEZONE": "Europe/Paris"})
    done = run_crsbot(env, "--port", "0", cwd=tmp_path, timeout=60)
    lines = [line for line in done.stdout.splitlines() if line.strip()]
    assert done.returncode != 0 and "Traceback" not in done.stdout, done.stdout
    assert len(lines) == 1, done.stdout
    assert "Configuration error: CRSBOT_HANDOFF_TIMES: " in lines[0], lines[0]
    assert "'7pm' is not a time of day like 07:00" in lines[0] and "'07:00'" not in lines[0]


def test_messages_are_specific(monkeypatch: pytest.MonkeyPatch) -> None:
    assert "regular expression" in config_error(monkeypatch, CRSBOT_PATIENT_DENY_PATTERN="(")
    monkeypatch.delenv("CRSBOT_PATIENT_DENY_PATTERN")
    assert "30s, 15m or 4h" in config_error(monkeypatch, CRSBOT_ESCALATE_AFTER="soon")


def test_several_bad_settings_are_all_named(monkeypatch: pytest.MonkeyPatch) -> None:
    message = config_error(monkeypatch, PORT="abc", CRSBOT_PRODUCT="x", CRSBOT_ESCALATE_AFTER="never")
    for name in ("PORT", "CRSBOT_PRODUCT", "CRSBOT_ESCALATE_AFTER"):
        assert f"{name}:" in message


def test_unknown_variables_are_ignored(monkeypatch: pytest.MonkeyPatch) -> None:
    set_env(monkeypatch, CRSBOT_SOMETHING_NEW="1", SLACK_WHATEVER="x")
    load_settings()


# --------------------------------------------------------------------------- required settings


def test_require_names_every_missing_variable() -> None:
    settings = load_settings()
    with pytest.raises(SettingsError) as caught:
        require(settings, "slack_bot_token", "slack_signing_secret")
    message = caught.value.user_message()
    assert "SLACK_BOT_TOKEN" in message and "SLACK_SIGNING_SECRET" in message


def test_require_passes_when_set(monkeypatch: pytest.MonkeyPatch) -> None:
    set_env(monkeypatch, SLACK_BOT_TOKEN=TOKEN, SLACK_SIGNING_SECRET=SIGNING)
    require(load_settings(), "slack_bot_token", "slack_signing_secret")


def test_require_names_only_what_is_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    set_env(monkeypatch, SLACK_BOT_TOKEN=TOKEN)
    with pytest.raises(SettingsError) as caught:
        require(load_settings(), "slack_bot_token", "slack_signing_secret", "slack_app_token")
    message = caught.value.user_message()
    assert "SLACK_SIGNING_SECRET" in message and "SLACK_APP_TOKEN" in message
    assert "SLACK_BOT_TOKEN" not in message and TOKEN not in message


@pytest.mark.parametrize("value", ["", "   "])
def test_an_empty_secret_counts_as_missing(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    set_env(monkeypatch, SLACK_BOT_TOKEN=TOKEN, SLACK_SIGNING_SECRET=value)
    with pytest.raises(SettingsError, match="SLACK_SIGNING_SECRET"):
        require(load_settings(), "slack_bot_token", "slack_signing_secret")
