"""`crsbot serve`: HTTP mode on waitress, or Socket Mode with an app-level token.

Waitress: a pure-Python, multi-threaded production WSGI server with no C build step and one
process per replica, so the in-process reminder scheduler runs exactly once per replica
(a pre-fork server such as gunicorn would start one per worker).
"""

from __future__ import annotations

import argparse
import logging
import signal
from types import FrameType
from typing import Any

from bot.app import Runtime, build_runtime
from bot.logs import configure_logging
from bot.metrics import WithMetrics
from bot.settings import Settings, load_settings, require
from bot.slack.healthcheck import write_port_file
from bot.slack.web import WebApp

log = logging.getLogger("crsbot.serve")


class RedactRejectedBodies(logging.Filter):
    """Bolt logs the whole body of a request whose signature fails: vitals, patient label and a live
    response_url. Keep the event (admins need it to spot a wrong secret), drop the body."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if "body:" in message:
            record.msg = message.split("body:")[0] + "body: <redacted>)"
            record.args = ()
        return True


def make_server(runtime: Runtime, host: str, port: int) -> Any:
    import waitress

    wsgi = WithMetrics(WebApp(runtime.app, runtime.engine), runtime.metrics)
    return waitress.create_server(wsgi, host=host, port=port,
                                  threads=runtime.settings.threads, ident="crsbot", clear_untrusted_proxy_headers=True)


def run_http(settings: Settings, host: str, port: int) -> int:
    require(settings, "slack_bot_token", "slack_signing_secret")
    runtime = build_runtime(settings)
    server = make_server(runtime, host, port)
    write_port_file(server.effective_port)
    runtime.start_scheduler()

    def stop(signum: int, _frame: FrameType | None) -> None:
        log.info("signal %s: shutting down", signum)
        server.close()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    log.info("crsbot listening on http://%s:%s%s", host, server.effective_port, "/slack/events")
    print(f"crsbot listening on http://{host}:{server.effective_port}", flush=True)
    try:
        server.run()
    except OSError:
        pass
    finally:
        runtime.close()
    return 0


def serve_command(args: argparse.Namespace) -> int:
    settings = load_settings()
    configure_logging(settings.log_level, settings.log_format)
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
    logging.getLogger("slack_bolt.RequestVerification").addFilter(RedactRejectedBodies())
    port = args.port if args.port is not None else settings.port
    if args.socket_mode:
        from bot.slack.socket_mode import run_socket_mode

        return run_socket_mode(settings, args.host, port)
    return run_http(settings, args.host, port)
