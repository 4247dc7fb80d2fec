"""Deployment settings, read from the environment once at start-up.

A missing or malformed setting stops the bot with a message naming the variable; secrets are
`SecretStr`, so they never appear in logs or reprs.
"""

from __future__ import annotations

import re
from datetime import time, timedelta
from functools import cached_property
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AliasChoices, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict
from typing_extensions import Annotated

from grading.errors import CrsbotError
from grading.models import SiteSettings
from grading.privacy import check_patient_label, redact_labels

# The built-in deny set lives in grading.privacy; this setting adds a site's own rules to it.
DEFAULT_PATIENT_DENY: str | None = None


LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


class SettingsError(CrsbotError):
    """Start-up configuration problem; names the environment variable."""


def env(*names: str) -> AliasChoices:
    return AliasChoices(*names)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(populate_by_name=True, extra="ignore", frozen=True)

    slack_bot_token: SecretStr | None = Field(None, validation_alias=env("SLACK_BOT_TOKEN", "slack_bot_token"))
    slack_signing_secret: SecretStr | None = Field(
        None, validation_alias=env("SLACK_SIGNING_SECRET", "slack_signing_secret"))
    slack_app_token: SecretStr | None = Field(None, validation_alias=env("SLACK_APP_TOKEN", "slack_app_token"))
    slack_api_url: str = Field("https://slack.com/api/", validation_alias=env("SLACK_API_URL", "slack_api_url"))
    database_url: str | None = Field(None, validation_alias=env("DATABASE_URL", "database_url"))
    data_dir: Path = Field(Path("data"), validation_alias=env("CRSBOT_DATA_DIR", "data_dir"))
    rulebook: Path | None = Field(None, validation_alias=env("CRSBOT_RULEBOOK", "rulebook"))
    product: Literal["iv", "velo"] = Field("iv", validation_alias=env("CRSBOT_PRODUCT", "product"))
    o2rule: Literal["label", "astct"] = Field("label", validation_alias=env("CRSBOT_O2RULE", "o2rule"))
    sbp_threshold: int = Field(90, ge=60, le=120, validation_alias=env("CRSBOT_SBP_THRESHOLD", "sbp_threshold"))
    allowed_channels: Annotated[tuple[str, ...], NoDecode] = Field(
        (), validation_alias=env("CRSBOT_ALLOWED_CHANNELS", "allowed_channels"))
    patient_deny_pattern: str | None = Field(
        DEFAULT_PATIENT_DENY, validation_alias=env("CRSBOT_PATIENT_DENY_PATTERN", "patient_deny_pattern"))
    patient_allow_pattern: str | None = Field(
        None, validation_alias=env("CRSBOT_PATIENT_ALLOW_PATTERN", "patient_allow_pattern"))
    reassess_intervals: str = Field("1=4h,2=2h,3=1h,4=30m",
                                    validation_alias=env("CRSBOT_REASSESS_INTERVALS", "reassess_intervals"))
    escalate_after: str = Field("15m", validation_alias=env("CRSBOT_ESCALATE_AFTER", "escalate_after"))
    # Longest the reminder engine sleeps without being woken (a poll fallback; it wakes at due times).
    tick_seconds: float = Field(1.0, gt=0, le=60, validation_alias=env("CRSBOT_TICK_SECONDS", "tick_seconds"))
    # A reminder claim not completed within this lease may be taken over by another replica.
    claim_lease: str = Field("2m", validation_alias=env("CRSBOT_CLAIM_LEASE", "claim_lease"))
    # First retry delay after a failed reminder post (then x2, x3, ... per attempt).
    retry_after: str = Field("30s", validation_alias=env("CRSBOT_RETRY_AFTER", "retry_after"))
    slack_timeout: float = Field(10.0, gt=0, le=120, validation_alias=env("CRSBOT_SLACK_TIMEOUT", "slack_timeout"))
    # Site time zone for times the CLI and console print (Slack shows each reader their own zone).
    timezone: str = Field("UTC", validation_alias=env("CRSBOT_TIMEZONE", "timezone"))
    port: int = Field(3000, ge=0, le=65535, validation_alias=env("PORT", "port"))
    threads: int = Field(16, ge=1, le=256, validation_alias=env("CRSBOT_THREADS", "threads"))
    log_level: str = Field("INFO", validation_alias=env("CRSBOT_LOG_LEVEL", "log_level"))
    handoff_times: str = Field("", validation_alias=env("CRSBOT_HANDOFF_TIMES", "handoff_times"))
    log_format: Literal["text", "json"] = Field("text", validation_alias=env("CRSBOT_LOG_FORMAT", "log_format"))

    @field_validator("allowed_channels", mode="before")
    @classmethod
    def _split_channels(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value

    @field_validator("patient_deny_pattern", "patient_allow_pattern")
    @classmethod
    def _compiles(cls, value: str | None) -> str | None:
        """An empty pattern matches every label: as a deny rule it would refuse all, as an allow
        rule it would say nothing. Either is a mistake worth stopping for."""
        if value is None:
            return None
        if not value.strip():
            raise ValueError("is set but empty; unset it to use the built-in rules, or give a regular expression")
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"not a valid regular expression ({exc})") from None
        return value

    @field_validator("handoff_times")
    @classmethod
    def _times(cls, value: str) -> str:
        parse_times_of_day(value)
        return value

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"'{value}' is not an IANA time zone such as Europe/Berlin or UTC") from None
        return value

    @field_validator("escalate_after", "claim_lease", "retry_after")
    @classmethod
    def _duration(cls, value: str) -> str:
        if parse_duration(value).total_seconds() <= 0:
            raise ValueError(f"'{value}' must be longer than zero, like 30s, 15m or 4h")
        return value

    @field_validator("log_level")
    @classmethod
    def _log_level(cls, value: str) -> str:
        if value.upper() not in LOG_LEVELS:
            raise ValueError(f"'{value}' is not a log level; use one of {', '.join(LOG_LEVELS)}")
        return value

    def check_patient_label(self, label: str | None) -> str | None:
        """The one label guard every entry point calls, with this site's deny and allow patterns."""
        return check_patient_label(label, self.patient_deny_pattern, self.patient_allow_pattern)

    def redact(self, text: str, words: frozenset[str] = frozenset()) -> str:
        """Command text safe for the audit trail: labels that fail the guard become a marker."""
        return redact_labels(text, self.patient_deny_pattern, self.patient_allow_pattern, words)

    @cached_property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @cached_property
    def site(self) -> SiteSettings:
        # Settings are frozen, so this is built once, not on every command.
        return SiteSettings(sbp_threshold=self.sbp_threshold, o2rule=self.o2rule, product=self.product)

    @property
    def db_url(self) -> str:
        return self.database_url or f"sqlite:///{(self.data_dir / 'crsbot.sqlite3').resolve()}"


_ENV_NAMES = {
    "slack_bot_token": "SLACK_BOT_TOKEN", "slack_signing_secret": "SLACK_SIGNING_SECRET",
    "slack_app_token": "SLACK_APP_TOKEN", "slack_api_url": "SLACK_API_URL", "database_url": "DATABASE_URL",
    "port": "PORT",
}


def env_name(field: str) -> str:
    if field.isupper():
        return field
    return _ENV_NAMES.get(field, f"CRSBOT_{field.upper()}")


def parse_times_of_day(text: str) -> tuple[time, ...]:
    """ "07:00,19:00" (seconds allowed: "07:00:30") -> times of day; empty -> none."""
    times = []
    for part in (p.strip() for p in text.split(",") if p.strip()):
        match = re.fullmatch(r"([01]?\d|2[0-3]):([0-5]\d)(?::([0-5]\d))?", part)
        if match is None:
            raise ValueError(f"'{part}' is not a time of day like 07:00 (24-hour, comma-separated)")
        times.append(time(int(match.group(1)), int(match.group(2)), int(match.group(3) or 0)))
    return tuple(sorted(set(times)))


def parse_duration(text: str) -> timedelta:
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smh])\s*", text)
    if match is None:
        raise ValueError(f"'{text}' is not a duration like 30s, 15m or 4h")
    value = float(match.group(1))
    return timedelta(**{{"s": "seconds", "m": "minutes", "h": "hours"}[match.group(2)]: value})


def load_settings(**overrides: object) -> Settings:
    """Read the environment (plus explicit overrides); raise `SettingsError` naming the variable."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            field = str(err["loc"][0]) if err["loc"] else "?"
            problems.append(f"{env_name(field)}: {err['msg'].removeprefix('Value error, ')}")
        raise SettingsError("Configuration error: " + "; ".join(problems)) from None


def _blank(value: object) -> bool:
    if isinstance(value, SecretStr):
        value = value.get_secret_value()
    return value is None or (isinstance(value, str) and not value.strip())


def require(settings: Settings, *fields: str) -> None:
    """An empty secret is a missing secret: starting without one would accept unsigned requests."""
    missing = [env_name(f) for f in fields if _blank(getattr(settings, f))]
    if missing:
        raise SettingsError("Missing setting(s): " + ", ".join(missing) + ". Set them in the environment.")
