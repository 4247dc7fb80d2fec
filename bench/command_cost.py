"""Instructions per `/crs` command for crsbot and the floor app, in-process and one at a time: the cost
figure of issue 9 that this shared 2-core machine cannot blur.

    .venv/bin/python bench/command_cost.py               # valgrind's callgrind: instructions per command
    .venv/bin/python bench/command_cost.py --cpu-only    # no valgrind: CPU time per command (noisy)

Why. `bench/slack_http.py` measures CPU per command under load, next to the floor app, but on this
machine the same code reads 1.34x-2.5x the floor from one round to the next. Instruction counts do not
move with the neighbours: callgrind gives the same total for the same run.

Method. Each app runs in a child process of its own: crsbot exactly as `crsbot serve` builds it
(`bot.app.build_runtime`, `bot.slack.serve.make_wsgi`: the gate and metrics, default settings, SQLite in a temp
dir), the floor as `bench/slack_http.py` builds it (Bolt + one INSERT + one post). The child sends
signed `/crs temp=39 sbp=85 pressor=1` requests straight into the WSGI callable (no HTTP server: the
same for both apps), one at a time, and waits after each for the listener's post to reach the Slack
fake, which runs in a process of its own and is not counted. Under callgrind each app runs twice,
with `--small` and `--large` commands; instructions per command = the difference / the difference in
commands, so start-up and imports cancel out. Callgrind counts user-space instructions only: the
kernel's work (an fsync, a socket write) is not in it. Expect a few minutes (valgrind is ~50x slower).
"""

from __future__ import annotations

import argparse
import io
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

TEXT = "temp=39 sbp=85 pressor=1"
APPS = ("floor", "crsbot")
FAKE = ("import gc, sys; gc.disable(); sys.path.insert(0, sys.argv[1])\n"
        "from bot.testing.slack_fake import FakeSlack\n"
        "fake = FakeSlack().start(); print(fake.api_url, flush=True); sys.stdin.read()\n"
        "print(len(fake.calls_to('chat.postMessage')), flush=True)")


def child(app_name: str, commands: int, pause: float) -> int:
    """Build one app and send it `commands` signed commands (after 10 unmeasured ones)."""
    import logging

    from bench.slack_http import floor_app
    from bot.testing.slack_requests import sign, slash_body

    logging.basicConfig(level=logging.WARNING)
    fake = subprocess.Popen([sys.executable, "-c", FAKE, str(ROOT)], stdout=subprocess.PIPE, stdin=subprocess.PIPE,
                            text=True)
    assert fake.stdout is not None and fake.stdin is not None
    api_url = fake.stdout.readline().strip()
    secret, token = "s" * 32, "xoxb-command-cost"
    workdir = Path(tempfile.mkdtemp(prefix="crsbot-command-cost-"))
    wsgi: Any
    if app_name == "crsbot":
        from bot.app import build_runtime
        from bot.settings import load_settings
        from bot.slack.serve import make_wsgi

        settings = load_settings(slack_bot_token=token, slack_signing_secret=secret, slack_api_url=api_url,
                                 data_dir=str(workdir), log_level="WARNING")
        runtime = build_runtime(settings)
        wsgi = make_wsgi(runtime)
    else:
        from slack_bolt.adapter.wsgi import SlackRequestHandler

        wsgi = SlackRequestHandler(floor_app(workdir, token, secret, api_url), path="/slack/events")

    def one(i: int) -> None:
        body = slash_body(TEXT, channel=f"C{i:08d}", user="U0COST01", response_url=f"{api_url}x", trigger_id="t")
        data = body.encode()
        environ = {"REQUEST_METHOD": "POST", "PATH_INFO": "/slack/events", "QUERY_STRING": "", "SERVER_NAME": "x",
                   "SERVER_PORT": "80", "SERVER_PROTOCOL": "HTTP/1.1", "wsgi.url_scheme": "http",
                   "wsgi.input": io.BytesIO(data), "CONTENT_LENGTH": str(len(data)),
                   "CONTENT_TYPE": "application/x-www-form-urlencoded",
                   **{f"HTTP_{k.upper().replace('-', '_')}": v for k, v in sign(body, secret).items()}}
        status: list[str] = []
        b"".join(wsgi(environ, lambda s, headers, exc=None: status.append(s)))
        if not status or not status[0].startswith("200"):
            raise SystemExit(f"{app_name}: request {i} answered {status}")
        time.sleep(pause)  # the listener posts after the ack: one command at a time

    for i in range(10):
        one(10**7 + i)
    cpu = time.process_time()
    for i in range(commands):
        one(i)
    time.sleep(1.0)
    cpu = time.process_time() - cpu
    fake.stdin.close()
    posts = int(fake.stdout.readline() or 0)
    fake.wait()
    print(f"RESULT posts={posts} cpu_s={cpu:.6f}", flush=True)
    os._exit(0 if posts == commands + 10 else 1)


def run(app_name: str, commands: int, pause: float, callgrind: bool, out: Path) -> dict[str, float]:
    command = [sys.executable, __file__, "--child", app_name, "--commands", str(commands), "--pause", str(pause)]
    if callgrind:
        command = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", *command]
    done = subprocess.run(command, capture_output=True, text=True, cwd=str(ROOT), timeout=3600)
    found = re.search(r"RESULT posts=(\d+) cpu_s=([\d.]+)", done.stdout)
    if done.returncode != 0 or found is None:
        raise SystemExit(f"{app_name} ({commands} commands) failed:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
    result = {"posts": float(found.group(1)), "cpu_s": float(found.group(2))}
    if callgrind:
        total = re.search(r"Collected : (\d+)", done.stderr)
        if total is None:
            raise SystemExit(f"no callgrind total for {app_name}:\n{done.stderr[-2000:]}")
        result["instructions"] = float(total.group(1))
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", type=int, default=10, help="commands in the shorter run (10)")
    parser.add_argument("--large", type=int, default=60, help="commands in the longer run (60)")
    parser.add_argument("--cpu-only", action="store_true", help="no valgrind: CPU time per command, 500 commands")
    parser.add_argument("--child", choices=APPS, help=argparse.SUPPRESS)
    parser.add_argument("--commands", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--pause", type=float, default=0.25, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return child(args.child, args.commands, args.pause)
    if not args.cpu_only and shutil.which("valgrind") is None:
        parser.error("valgrind is not installed (apt install valgrind), or use --cpu-only")
    if not 0 < args.small < args.large:
        parser.error("--small must be positive and below --large")
    with tempfile.TemporaryDirectory(prefix="crsbot-command-cost-") as tmp:
        figures: dict[str, float] = {}
        for name in APPS:
            if args.cpu_only:
                result = run(name, 500, 0.004, False, Path(tmp) / "unused")
                figures[name] = result["cpu_s"] / 500 * 1e6
            else:
                small = run(name, args.small, 0.25, True, Path(tmp) / f"{name}.small.out")
                large = run(name, args.large, 0.25, True, Path(tmp) / f"{name}.large.out")
                figures[name] = (large["instructions"] - small["instructions"]) / (args.large - args.small)
    unit = "us CPU (noisy)" if args.cpu_only else "instructions"
    print(f"/crs {TEXT}: one command at a time, in-process WSGI, {unit} per command")
    for name in APPS:
        print(f"  {name:<7} {figures[name]:>14,.0f}")
    print(f"  crsbot / floor: {figures['crsbot'] / figures['floor']:.2f}x (issue 9 aims at 1.5x, under load)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
