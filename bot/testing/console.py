"""`crsbot console`: the whole bot without a Slack account, for demos, training and tests.

It runs the real Bolt app behind the real HTTP server, the real scheduler and SQLite, against the
local Slack fake. You type `/crs ...`; every message the bot posts is printed as text with its
buttons numbered; `press N` clicks one; `advance 2h` moves the bot's clock so reminders and
escalations arrive without waiting.
"""

from __future__ import annotations

import argparse
import html
import json
import re
import secrets
import sys
import tempfile
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, TextIO

from bot.app import Runtime, build_runtime
from bot.slack.serve import make_server
from bot.settings import load_settings, parse_duration
from bot.testing.slack_fake import FakeSlack, RecordedCall
from bot.testing.slack_requests import (
    block_actions_payload,
    interactive_body,
    post_signed,
    slash_body,
    view_submission_payload,
)
from messages.episodes import plain_dates, site_time
from messages.form import initial_values
from messages.ids import CallbackId, FormField

CHANNEL = "C0ONCALL01"
USER = "U0CLINIC01"
DEMO_INTERVALS = "1=4h,2=2h,3=1h,4=30m"
BANNER = f"""crsbot console: the real bot against a local Slack stand-in (channel #oncall, you are @clinician).
Type a slash command, e.g.  /crs temp=39 sbp=85 pressor=1 patient=bed12
  press N          click button [N] of a posted message (or `press snooze`: the latest such button)
  submit k=v ...   submit the open form with these values (same keys as /crs)
  advance 2h       move the bot's clock forward (reminders fire; units s/m/h)
  quit             leave
"""
DEMO_SCRIPT = (
    "/crs help",
    "/crs oncall <@U0ONCALL99|dr.oncall>",
    "/crs temp=39.2 sbp=84 fluids=yes patient=bed12",
    "/crs temp=37.1 masked=yes pressor=1 o2=6 device=nc patient=bed12",
    "press details",
    "advance 60m",
    "advance 15m",
    "press reassessed",
    "submit temp=37.0 sbp=118 fluids=no pressor=0 o2=2 device=nc masked=yes patient=bed12",
    "/crs status",
    "/crs resolve patient=bed12",
    "/crs history patient=bed12",
    "/crs delay last=c1d8 since=3w",
    "/crs temp=38 presor=1",
)


class OffsetClock:
    """Real time plus an offset the console can move forward."""

    def __init__(self) -> None:
        self._offset = timedelta(0)
        self._lock = threading.Lock()

    def now(self) -> datetime:
        with self._lock:
            return datetime.now(timezone.utc) + self._offset

    def advance(self, delta: timedelta) -> None:
        with self._lock:
            self._offset += delta


def view_text(view: dict[str, Any]) -> str:
    """A read-only modal (Details) as the console prints it: each block's text, in order."""
    lines = []
    for block in view.get("blocks", []):
        if block.get("type") in ("header", "section"):
            lines.append(block["text"]["text"])
        elif block.get("type") == "context":
            lines.extend(e.get("text", "") for e in block.get("elements", []))
        elif block.get("type") == "divider":
            lines.append("")
    return html.unescape("\n".join(lines))


def _context_notes(message: dict[str, Any]) -> list[str]:
    """Context lines other than the last (the rulebook/judgment footer): what a click added."""
    blocks = [b for a in message.get("attachments") or [] for b in a.get("blocks") or []]
    blocks = blocks or list(message.get("blocks") or [])
    contexts = [b for b in blocks if b.get("type") == "context"][:-1]
    return [plain_dates(e.get("text", "")) for b in contexts for e in b.get("elements", [])]


class Console:
    def __init__(self, out: TextIO, data_dir: Path) -> None:
        self.out = out
        self.data_dir = data_dir
        self.print_lock = threading.Lock()
        self.fake = FakeSlack().start()
        self.fake.add_channel(CHANNEL, name="oncall")
        self.fake.add_user(USER, name="clinician")
        self.clock = OffsetClock()
        secret = secrets.token_hex(16)
        settings = load_settings(slack_bot_token="xoxb-console", slack_signing_secret=secret,
                                 slack_api_url=self.fake.api_url, data_dir=data_dir, database_url=None,
                                 tick_seconds=0.5)
        self.runtime: Runtime = build_runtime(settings, clock=self.clock)
        self.server = make_server(self.runtime, "127.0.0.1", 0)
        threading.Thread(target=self.server.run, name="console-http", daemon=True).start()
        self.endpoint = f"http://127.0.0.1:{self.server.effective_port}/slack/events"
        self.secret = secret
        self.buttons: list[tuple[str, dict[str, Any], dict[str, Any]]] = []
        self.open_view: dict[str, Any] | None = None
        self.fake.subscribe(self._on_call)
        self.runtime.start_scheduler()

    def close(self) -> None:
        self.runtime.close()
        self.server.close()
        self.fake.stop()

    # ------------------------------------------------------------------ output

    def say(self, text: str) -> None:
        with self.print_lock:
            self.out.write(text + "\n")
            self.out.flush()

    def _on_call(self, call: RecordedCall) -> None:
        params, method = call.params, call.method
        if method in ("chat.postMessage", "chat.update", "chat.postEphemeral", "response_url"):
            private = method == "chat.postEphemeral" or params.get("response_type", "ephemeral") == "ephemeral" \
                and method == "response_url"
            where = "only you see this" if private else ("in thread" if params.get("thread_ts") else "#oncall")
            if method == "chat.update":
                notes = _context_notes(params)
                self.say("\n── message updated: " + (" | ".join(notes) or "(content changed)"))
                return
            self.say(f"\n── crsbot ({where}) " + "─" * 40)
            self.say(plain_dates(params.get("text", "")))
            message = dict(params)
            message.setdefault("ts", call.response.get("ts") or params.get("ts"))
            self._list_buttons(message)
        elif method == "files.completeUploadExternal":
            self._save_files(params)
        elif method == "views.open":
            view = call.response.get("view") or params.get("view") or {}
            if view.get("callback_id") == CallbackId.CRS_DETAILS:
                self.say("\n── details opened " + "─" * 40)
                self.say(view_text(view))
                return
            self.open_view = view
            prefill = initial_values(self.open_view or {})
            filled = " ".join(f"{k}={v}" for k, v in prefill.items() if v)
            self.say(f"\n── form opened: CRS assessment ── prefilled: {filled or '(empty)'}\n"
                     "   type `submit key=value ...` to submit it")

    def _save_files(self, params: dict[str, Any]) -> None:
        """Uploaded pictures are saved next to the database, and their path printed (a terminal shows no PNG)."""
        names = {f["id"]: f["name"] for f in self.fake.files()}
        where = "in thread" if params.get("thread_ts") else "#oncall"
        self.say(f"\n── crsbot ({where}) " + "─" * 40)
        if params.get("initial_comment"):
            self.say(str(params["initial_comment"]))
        for file in params.get("files") or []:
            content = self.fake.file_content(file["id"])
            if content is None:
                continue
            path = self.data_dir / names.get(file["id"], f"{file['id']}.png")
            path.write_bytes(content)
            self.say(f"   picture saved: {path}")

    def _list_buttons(self, message: dict[str, Any]) -> None:
        blocks = list(message.get("blocks") or [])
        for attachment in message.get("attachments") or []:
            blocks += attachment.get("blocks") or []
        labels = []
        for block in blocks:
            if block.get("type") != "actions":
                continue
            for element in block.get("elements", []):
                self.buttons.append((str(message.get("channel") or CHANNEL), message, element))
                labels.append(f"[{len(self.buttons)}] {element['text']['text']}")
        if labels:
            self.say("   " + "  ".join(labels))

    # ------------------------------------------------------------------ input

    def run_line(self, line: str) -> bool:
        line = line.strip()
        if not line or line.startswith("#"):
            return True
        if line in ("quit", "exit"):
            return False
        self.say(f"\n> {line}")
        before = len(self.fake.calls)
        if line.startswith("/crs"):
            self.command(line[len("/crs"):].strip())
        elif match := re.fullmatch(r"press\s+(\d+)", line):
            self.press(int(match.group(1)))
        elif match := re.fullmatch(r"press\s+(\w+)", line):
            label = match.group(1).lower()
            found = [i for i, (_, _, b) in enumerate(self.buttons, 1) if b["text"]["text"].lower().startswith(label)]
            self.press(found[-1] if found else 0)
        elif line.startswith("submit"):
            self.submit(line[len("submit"):].strip())
        elif match := re.fullmatch(r"advance\s+(\S+)", line):
            try:
                delta = parse_duration(match.group(1))
            except ValueError as exc:
                self.say(f"   {exc}")
                return True
            self.clock.advance(delta)
            self.say(f"   bot clock is now {site_time(self.clock.now(), self.runtime.settings.zone)}")
            self.runtime.reminders.tick()
            if self.runtime.handoffs is not None:
                self.runtime.handoffs.tick()
        else:
            self.say("   not understood: type /crs ..., press N, submit ..., advance 2h or quit")
        self._settle(before)
        return True

    def _settle(self, before: int, quiet_for: float = 0.4, limit: float = 15.0, idle: float = 4.0) -> None:
        """Wait until the bot has finished reacting (no new Slack calls for a moment). `idle`: how long to
        wait for a first call, enough for a picture to be drawn before it is uploaded."""
        deadline = time.monotonic() + limit
        seen, last_change = len(self.fake.calls), time.monotonic()
        while time.monotonic() < deadline:
            time.sleep(0.05)
            now_seen = len(self.fake.calls)
            if now_seen != seen:
                seen, last_change = now_seen, time.monotonic()
            elif now_seen > before and time.monotonic() - last_change >= quiet_for:
                return
            elif now_seen == before and time.monotonic() - last_change >= idle:
                return

    def command(self, text: str) -> None:
        body = slash_body(text, channel=CHANNEL, user=USER,
                          response_url=self.fake.new_response_url(channel=CHANNEL, user=USER),
                          trigger_id=self.fake.new_trigger_id())
        reply = post_signed(self.endpoint, body, self.secret)
        if reply.status != 200:
            self.say(f"   HTTP {reply.status}: {reply.body}")

    def press(self, number: int) -> None:
        if not 1 <= number <= len(self.buttons):
            self.say(f"   there is no button [{number}]")
            return
        channel, message, element = self.buttons[number - 1]
        current = next((m for m in self.fake.messages(channel) if m.get("ts") == message.get("ts")), message)
        payload = block_actions_payload(current, element["action_id"], channel=channel, user=USER,
                                        response_url=self.fake.new_response_url(channel=channel, user=USER),
                                        trigger_id=self.fake.new_trigger_id())
        post_signed(self.endpoint, interactive_body(payload), self.secret)

    def submit(self, text: str) -> None:
        """Fields not typed keep what the form shows, as in Slack."""
        if self.open_view is None:
            self.say("   no form is open (type /crs form, or press Reassessed)")
            return
        values: dict[str, str] = {}
        fields = {b.get("block_id") for b in self.open_view.get("blocks", []) if b.get("type") == "input"}
        for key, _, value in (pair.partition("=") for pair in text.split()):
            if key.lower() in fields:
                values[key.lower()] = value
            else:  # typed into "Other findings", as a person would
                values[FormField.OTHER] = f"{values.get(FormField.OTHER, '')} {key}={value}".strip()
        try:
            payload = view_submission_payload(self.open_view, values, user=USER,
                                              trigger_id=self.fake.new_trigger_id())
        except ValueError as exc:
            self.say(f"   {exc}")
            return
        reply = post_signed(self.endpoint, interactive_body(payload), self.secret)
        if reply.body.strip():
            for field, message in json.loads(reply.body).get("errors", {}).items():
                self.say(f"   form error on `{field}`: {message}")
            return
        self.open_view = None

def console_command(args: argparse.Namespace) -> int:
    data_dir = Path(args.data_dir) if args.data_dir else Path(tempfile.mkdtemp(prefix="crsbot-console-"))
    console = Console(sys.stdout, data_dir)
    console.say(BANNER)
    try:
        if args.demo:
            for line in DEMO_SCRIPT:
                console.run_line(line)
        interactive = sys.stdin.isatty()
        if args.demo and not interactive:
            return 0
        while True:
            if interactive:
                try:
                    line = input("crs> ")
                except EOFError:
                    break
            else:
                line = sys.stdin.readline()
                if not line:
                    break
            if not console.run_line(line):
                break
    except KeyboardInterrupt:
        pass
    finally:
        console.close()
    return 0
