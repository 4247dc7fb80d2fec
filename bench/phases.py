"""Where a `/crs` spends its CPU under load: thread CPU per command of each step, inside `crsbot serve` and
inside the floor app, while `bench/slack_http.py` drives both at concurrency 16 (issue 9).

    .venv/bin/python bench/phases.py                   # 2,000 commands per app, post loop, plain HTTP
    .venv/bin/python bench/phases.py --requests 5000   # more samples

Why. `bench/slack_http.py` says how much more CPU crsbot spends per command than the floor app (Bolt +
one INSERT + one post); this says on what. An in-process measure one command at a time does not: between
commands the caches go cold and the same replay-guard INSERT that costs ~40 us in a tight loop costs
~240 us after a 3 ms pause; under load the steps run interleaved, as in production.

Method. This runs `bench/slack_http.py --loop post --transport http --rounds 1 --concurrency 16` with a
`sitecustomize` module (written to a temp dir and put first on PYTHONPATH) that, in each server process,
wraps the steps below so that each call adds the CPU time its thread spent inside it
(`time.thread_time_ns`, user + system, nested steps included in their parents) and writes the sums to a
file twice a second. The load generator and the fake never wrap anything (the module acts only in processes
whose command line names a server). A wrapped call costs ~1 us, so the totals run a little above
`bench/slack_http.py`'s own figures; the steps are comparable with each other and between the apps. The
floor's own INSERT is its listener minus its post.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# (module:qualified name, what it is). Nested rows are indented by their depth in the table.
STEPS: dict[str, list[tuple[str, str, int]]] = {
    "crsbot": [
        ("bot.metrics:WithMetrics.__call__", "request thread: gate, replay mark, Bolt, ack", 0),
        ("bot.slack.gate:verify_request", "signature, headers, body size, replay mark", 1),
        ("bot.slack.web:WebApp._first_time", "replay mark (one INSERT, one commit)", 2),
        ("slack_bolt.adapter.wsgi.handler:SlackRequestHandler.__call__", "Bolt: parse, verify, dispatch", 1),
        ("bot.listeners.authorize:Authorize.process", "authorize (channel, label, seal)", 2),
        ("slack_bolt.listener.custom_listener:CustomListener.run_ack_function", "listener thread: the command", 0),
        ("bot.handlers.assess:grade", "grade (parse, ASTCT, decide)", 1),
        ("bot.storage.store:AssessmentRepository.record_assessment", "record (assessment + audit, one commit)", 1),
        ("bot.seal:Sealer.seal", "seal the buttons", 1),
        ("bot.handlers.assess:crs_layout", "layout", 1),
        ("bot.handlers.assess:render_message", "Block Kit", 1),
        ("bot.slack.sender:Sender.post", "chat.postMessage", 1),
        ("bot.slack.sender:KeptAliveClient._exchange", "the HTTP exchange itself", 2),
        ("bot.metrics:_Start.handle", "metrics: listener start", 0),
        ("bot.metrics:_Completion.handle", "metrics: listener end", 0),
    ],
    "floor": [
        ("slack_bolt.adapter.wsgi.handler:SlackRequestHandler.__call__", "request thread: Bolt, ack", 0),
        ("slack_bolt.listener.custom_listener:CustomListener.run_ack_function", "listener thread: the command", 0),
        ("bot.slack.sender:Sender.post", "chat.postMessage", 1),
        ("bot.slack.sender:KeptAliveClient._exchange", "the HTTP exchange itself", 2),
    ],
}

SITECUSTOMIZE = '''
import os, sys
_APP = "crsbot" if sys.argv and sys.argv[0].endswith("crsbot") and "serve" in sys.argv else (
    "floor" if "--serve-floor" in sys.argv else None)
if _APP and os.environ.get("BENCH_PHASES_OUT"):
    import atexit, collections, functools, importlib, json, threading, time
    _STEPS = json.loads(os.environ["BENCH_PHASES"])[_APP]
    _sums = collections.defaultdict(lambda: [0, 0])

    def _wrap(target):
        module, qualname = target.split(":")
        owner = importlib.import_module(module)
        *path, name = qualname.split(".")
        for part in path:
            owner = getattr(owner, part)
        inner = getattr(owner, name)

        @functools.wraps(inner)
        def timed(*args, **kwargs):
            started = time.thread_time_ns()
            try:
                return inner(*args, **kwargs)
            finally:
                entry = _sums[target]
                entry[0] += time.thread_time_ns() - started
                entry[1] += 1
        setattr(owner, name, timed)

    for _target in _STEPS:
        _wrap(_target)

    def _write(*_):
        path = os.path.join(os.environ["BENCH_PHASES_OUT"], _APP + ".json")
        with open(path, "w") as out:
            json.dump(dict(_sums), out)

    def _keep_writing():
        while True:  # the server may be stopped by SIGKILL: the sums on disk are never more than 0.5 s old
            time.sleep(0.5)
            _write()

    threading.Thread(target=_keep_writing, daemon=True).start()
    atexit.register(_write)
'''


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000, help="measured commands per app (2000)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="crsbot-phases-") as tmp:
        site, out = Path(tmp) / "site", Path(tmp) / "out"
        site.mkdir()
        out.mkdir()
        (site / "sitecustomize.py").write_text(SITECUSTOMIZE)
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")]),
               "BENCH_PHASES_OUT": str(out),
               "BENCH_PHASES": json.dumps({app: [t for t, _, _ in steps] for app, steps in STEPS.items()})}
        done = subprocess.run([sys.executable, str(ROOT / "bench" / "slack_http.py"), "--requests", str(args.requests),
                               "--concurrency", "16", "--transport", "http", "--rounds", "1", "--loop", "post",
                               "--json"], env=env, capture_output=True, text=True, cwd=str(ROOT), timeout=3600)
        if done.returncode != 0:
            raise SystemExit(f"bench/slack_http.py failed:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
        run = json.loads(done.stdout)["runs"]["http"]["results"]
        sums = {app: json.loads((out / f"{app}.json").read_text()) for app in STEPS}
    print(f"/crs temp=39 sbp=85 pressor=1 at concurrency 16 (post loop, HTTP fake), {args.requests} commands per app: "
          "thread CPU per command in each step (us), nested steps included in their parents")
    for app, steps in STEPS.items():
        commands = max(1, sums[app].get(steps[0][0], [0, 1])[1])
        cpu = next(r["cpu_ms_per_command"] for r in run[app] if r["concurrency"] == 16)
        print(f"\n{app}: {cpu * 1000:,.0f} us CPU per command for the whole process (bench/slack_http.py)")
        for target, label, depth in steps:
            total, calls = sums[app].get(target, [0, 0])
            share = calls / commands
            print(f"  {'  ' * depth}{label:<{52 - 2 * depth}} {total / 1000 / commands:>8,.0f}"
                  f"{'' if abs(share - 1) < 0.01 else f'   ({share:.2f} calls per command)'}")
        if app == "floor":
            listener, post = (sums[app].get(steps[i][0], [0, 0])[0] for i in (1, 2))
            print(f"  {'  '}{'its INSERT and commit (listener minus post)':<50} {(listener - post) / 1000 / commands:>8,.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
