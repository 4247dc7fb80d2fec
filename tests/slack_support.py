"""Shared helpers for driving a real `crsbot serve` process over real HTTP, the way Slack does.

Nothing here mocks project code: a `crsbot serve` subprocess (waitress, Bolt, SQLite in a temporary
directory) talks to the local Slack Web API fake (`bot.testing.slack_fake.FakeSlack`), and the helpers send
it signed requests in Slack's own encodings:

* slash commands: form-encoded fields (`command`, `text`, `channel_id`, `response_url`, ...);
* interactivity (`block_actions`, `view_submission`): form-encoded as `payload=<json>`;
* every request signed with `X-Slack-Request-Timestamp` and `X-Slack-Signature` (v0 HMAC-SHA256).

Typical use in a test module::

    from tests.slack_support import served

    bot = served("bot")                      # module-scoped fixture named "bot"
    allowed = served("allowed", env={"CRSBOT_ALLOWED_CHANNELS": "C0OK"})

    def test_grade(bot):
        mark = bot.mark()
        assert bot.slash("temp=39 sbp=85 pressor=1", channel="C1").status == 200
        call = bot.fake.wait_for("chat.postMessage", after=mark)

The process is started on port 0 and the port it actually bound is read from its start-up line,
so parallel runs never race for a port. Its stdout and stderr go to one log file, readable with
`output()`, so tests can check that secrets never appear there.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from bot.testing.slack_fake import RESPONSE_URL_METHOD, FakeSlack, RecordedCall
from bot.testing.slack_requests import (
    block_actions_payload,
    interactive_body,
    sign,
    slash_body,
    view_submission_payload,
)

__all__ = [
    "RESPONSE_URL_METHOD",
    "CrsbotProcess",
    "HttpResponse",
    "Served",
    "clean_env",
    "crsbot_command",
    "http_request",
    "response_to",
    "run_crsbot",
    "served",
    "start_crsbot",
]

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_USER = "U0CLINIC01"
START_TIMEOUT = 30.0
LISTENING = re.compile(r"crsbot listening on http://([^:\s]+):(\d+)")

# Settings the developer's shell might carry that must not leak into a test server.
_SCRUBBED_PREFIXES = ("SLACK_", "CRSBOT_")
_SCRUBBED_NAMES = ("DATABASE_URL", "PORT")


def new_secret(kind: str) -> str:
    """Per-run random secrets, so grepping logs for them cannot match anything by accident."""
    if kind == "token":
        return f"xoxb-e2e-{secrets.token_hex(12)}"
    return f"e2e-signing-{secrets.token_hex(16)}"


def response_to(channel: str) -> Callable[[RecordedCall], bool]:
    """Matches a post through a response URL handed out for `channel` (an ephemeral reply to a command)."""
    def predicate(call: RecordedCall) -> bool:
        return call.method == RESPONSE_URL_METHOD and call.response.get("channel") == channel
    predicate.__name__ = f"response_url post for {channel}"
    return predicate


# --------------------------------------------------------------------------- plain HTTP


@dataclass(frozen=True)
class HttpResponse:
    status: int
    body: bytes
    headers: dict[str, str]
    elapsed: float

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")

    def json(self) -> Any:
        return json.loads(self.body.decode("utf-8"))


def http_request(url: str, data: bytes | None = None, headers: Mapping[str, str] | None = None,
                 method: str | None = None, timeout: float = 10.0) -> HttpResponse:
    """One request on a fresh connection (as Slack makes them); 4xx/5xx are returned, not raised."""
    request = urllib.request.Request(url, data=data, headers=dict(headers or {}), method=method)
    started = time.perf_counter()
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            body = response.read()
            return HttpResponse(response.status, body, dict(response.headers.items()),
                                time.perf_counter() - started)
    except urllib.error.HTTPError as exc:
        body = exc.read()
        return HttpResponse(exc.code, body, dict(exc.headers.items()), time.perf_counter() - started)


# --------------------------------------------------------------------------- the crsbot process


def crsbot_command() -> list[str]:
    """The installed `crsbot` console script next to this interpreter (else `python -m bot.cli`)."""
    script = Path(sys.executable).with_name("crsbot")
    if script.exists():
        return [str(script)]
    found = shutil.which("crsbot")
    return [found] if found else [sys.executable, "-m", "bot.cli"]


def clean_env(overrides: Mapping[str, str | None] | None = None) -> dict[str, str]:
    """This process's environment without any crsbot/Slack settings, plus `overrides`
    (a value of None removes the variable)."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(_SCRUBBED_PREFIXES) and k not in _SCRUBBED_NAMES}
    env["PYTHONUNBUFFERED"] = "1"
    for key, value in (overrides or {}).items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return env


@dataclass
class CrsbotProcess:
    """A running `crsbot serve` subprocess."""

    proc: subprocess.Popen[bytes]
    log_path: Path
    host: str = "127.0.0.1"
    port: int = 0

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def events_url(self) -> str:
        return f"{self.base_url}/slack/events"

    @property
    def health_url(self) -> str:
        return f"{self.base_url}/healthz"

    def output(self) -> str:
        """Everything the process wrote to stdout and stderr so far."""
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return ""

    def alive(self) -> bool:
        return self.proc.poll() is None

    def health(self, timeout: float = 5.0) -> HttpResponse:
        return http_request(self.health_url, timeout=timeout)

    def wait_ready(self, timeout: float = START_TIMEOUT) -> None:
        """Wait for the start-up line (the bound port), then for /healthz to answer 200."""
        deadline = time.monotonic() + timeout
        while not self.port:
            match = LISTENING.search(self.output())
            if match:
                self.port = int(match.group(2))
                break
            self._check_running(deadline, "print its listening line")
            time.sleep(0.02)
        while True:
            try:
                if self.health(timeout=2).status == 200:
                    return
            except OSError:
                pass
            self._check_running(deadline, "answer /healthz")
            time.sleep(0.02)

    def _check_running(self, deadline: float, what: str) -> None:
        if self.proc.poll() is not None:
            raise RuntimeError(f"crsbot serve exited ({self.proc.returncode}) before it could {what}:\n"
                               f"{self.output()[-4000:]}")
        if time.monotonic() > deadline:
            self.stop()
            raise RuntimeError(f"crsbot serve did not {what} in time:\n{self.output()[-4000:]}")

    def kill(self, timeout: float = 10.0) -> int:
        """SIGKILL (`kill -9`: no shutdown code runs at all) and reap the process."""
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
        return self.proc.wait(timeout=timeout)

    def stop(self, timeout: float = 10.0) -> int:
        """SIGTERM (a graceful shutdown), then SIGKILL if it does not exit in `timeout` seconds."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=timeout)
        return self.proc.returncode


def start_crsbot(env: Mapping[str, str], log_path: Path, *, host: str = "127.0.0.1", port: int = 0,
                 cwd: Path | None = None, wait: bool = True, args: Sequence[str] = ()) -> CrsbotProcess:
    """Start `crsbot serve --host HOST --port PORT [ARGS]` with exactly `env`; by default wait until healthy."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "wb") as log:
        proc = subprocess.Popen([*crsbot_command(), "serve", "--host", host, "--port", str(port), *args],
                                env=dict(env), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                cwd=str(cwd or log_path.parent))
    process = CrsbotProcess(proc=proc, log_path=log_path, host=host, port=port)
    if wait:
        try:
            process.wait_ready()
        except BaseException:
            process.stop()
            raise
    return process


def run_crsbot(env: Mapping[str, str], *args: str, cwd: Path | None = None,
               timeout: float = 30.0) -> subprocess.CompletedProcess[str]:
    """Run `crsbot serve ARGS` to completion (for start-up failures); stdout+stderr in `.stdout`."""
    return subprocess.run([*crsbot_command(), "serve", "--host", "127.0.0.1", *args], env=dict(env),
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                          text=True, timeout=timeout, cwd=str(cwd) if cwd else None)


# --------------------------------------------------------------------------- fake + process together


@dataclass
class Served:
    """A FakeSlack plus a `crsbot serve` pointed at it, and Slack's side of the conversation."""

    fake: FakeSlack
    process: CrsbotProcess
    data_dir: Path
    token: str
    secret: str
    env: dict[str, str] = field(default_factory=dict)

    # ---- lifecycle

    @classmethod
    @contextmanager
    def running(cls, workdir: Path, env: Mapping[str, str | None] | None = None,
                fake: FakeSlack | None = None, args: Sequence[str] = ()) -> Iterator[Served]:
        own_fake = fake is None
        fake = fake or FakeSlack().start()
        token, secret = new_secret("token"), new_secret("secret")
        data_dir = workdir / "data"
        full_env = clean_env({
            "SLACK_BOT_TOKEN": token,
            "SLACK_SIGNING_SECRET": secret,
            "SLACK_API_URL": fake.api_url,
            "CRSBOT_DATA_DIR": str(data_dir),
            **(env or {}),
        })
        try:
            process = start_crsbot(full_env, workdir / "crsbot.log", cwd=workdir, args=args)
            served_ = cls(fake=fake, process=process, data_dir=data_dir, token=token, secret=secret,
                          env=full_env)
            try:
                yield served_
            finally:
                process.stop()
        finally:
            if own_fake:
                fake.stop()

    # ---- inspection

    def mark(self) -> int:
        """Index to pass as `after=` to `fake.wait_for`, so only calls made from now on count."""
        return len(self.fake.calls)

    def calls_since(self, mark: int, *methods: str) -> list[RecordedCall]:
        calls = self.fake.calls[mark:]
        return [c for c in calls if not methods or c.method in methods]

    def output(self) -> str:
        return self.process.output()

    def health(self) -> HttpResponse:
        return self.process.health()

    def wait_for(self, match: str | Callable[[RecordedCall], bool], after: int, timeout: float = 10.0
                 ) -> RecordedCall:
        return self.fake.wait_for(match, timeout=timeout, after=after)

    # ---- sending what Slack sends

    def post(self, body: str, *, content_type: str = "application/x-www-form-urlencoded",
             headers: Mapping[str, str] | None = None, secret: str | None = None,
             timestamp: int | None = None, signed: bool = True, timeout: float = 10.0) -> HttpResponse:
        """POST `body` to /slack/events, signed with the server's secret unless told otherwise."""
        all_headers = {"Content-Type": content_type, "User-Agent": "Slackbot 1.0 (+https://api.slack.com/robots)"}
        if signed:
            all_headers.update(sign(body, secret or self.secret, timestamp))
        all_headers.update(headers or {})
        return http_request(self.process.events_url, data=body.encode("utf-8"), headers=all_headers,
                            method="POST", timeout=timeout)

    def slash_body(self, text: str, *, channel: str, user: str = DEFAULT_USER) -> str:
        return slash_body(text, channel=channel, user=user,
                          response_url=self.fake.new_response_url(channel=channel, user=user),
                          trigger_id=self.fake.new_trigger_id())

    def slash(self, text: str, *, channel: str, user: str = DEFAULT_USER, **post_kwargs: Any) -> HttpResponse:
        """`/crs TEXT` typed by `user` in `channel`."""
        return self.post(self.slash_body(text, channel=channel, user=user), **post_kwargs)

    def click(self, message: Mapping[str, Any], action_id: str, *, channel: str, user: str = DEFAULT_USER,
              **post_kwargs: Any) -> HttpResponse:
        """`user` clicks the button `action_id` on `message` (from `fake.messages(channel)`)."""
        payload = block_actions_payload(
            message, action_id, channel=channel, user=user, trigger_id=self.fake.new_trigger_id(),
            response_url=self.fake.new_response_url(channel=channel, user=user, message_ts=message["ts"]))
        return self.post(interactive_body(payload), **post_kwargs)

    def submit(self, view: Mapping[str, Any], values: Mapping[str, str | None], *, user: str = DEFAULT_USER,
               **post_kwargs: Any) -> HttpResponse:
        """`user` submits the modal `view` (from `fake.views()`) with `values` by block id."""
        payload = view_submission_payload(view, values, user=user, trigger_id=self.fake.new_trigger_id())
        return self.post(interactive_body(payload), **post_kwargs)


def served(name: str, *, env: Mapping[str, str | None] | None = None, scope: str = "module") -> Any:
    """A pytest fixture named `name` yielding a `Served` (one server per `scope`, default module).

    Assign it to a module-level variable of the same name so pytest collects it::

        bot = served("bot", env={"CRSBOT_LOG_LEVEL": "DEBUG"})
    """

    @pytest.fixture(scope=scope, name=name)  # type: ignore[call-overload]
    def _served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
        with Served.running(tmp_path_factory.mktemp(name), env=env) as running:
            yield running

    return _served
