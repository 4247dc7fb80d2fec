"""`crsbot serve`: HTTP mode on waitress, or Socket Mode with an app-level token.

Waitress: a pure-Python, multi-threaded production WSGI server with no C build step and one
process per replica, so the in-process reminder scheduler runs exactly once per replica
(a pre-fork server such as gunicorn would start one per worker).
"""

from __future__ import annotations

import argparse
import logging
import signal
import socket
from types import FrameType
from typing import Any

from bot.app import Runtime, build_runtime
from bot.settings import Settings, SettingsError, load_settings, require
from bot.slack.gate import MAX_BODY_BYTES
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
    """Waitress refuses a body over the cap itself (by Content-Length, or while counting a chunked
    body), so an oversize request is never buffered; the gate in WebApp checks again."""
    import waitress

    secret = runtime.settings.slack_signing_secret
    web = WebApp(runtime.app, runtime.engine, secret.get_secret_value() if secret else None, runtime.reminders)
    try:
        return waitress.create_server(web, host=host, port=port, threads=runtime.settings.threads, ident="crsbot",
                                      clear_untrusted_proxy_headers=True, max_request_body_size=MAX_BODY_BYTES)
    except OSError as exc:
        runtime.close()
        raise SettingsError(f"PORT: cannot listen on {host}:{port} ({exc.strerror or exc}); "
                            "is another crsbot or service using it?") from None


def check_port(host: str, port: int) -> None:
    """Fail before opening the database or calling Slack when the port is taken (one line)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise SettingsError(f"PORT: cannot listen on {host}:{port} ({exc.strerror or exc}); "
                                "is another crsbot or service using it?") from None


def run_http(settings: Settings, host: str, port: int) -> int:
    require(settings, "slack_bot_token", "slack_signing_secret")
    check_port(host, port)
    runtime = build_runtime(settings)
    server = make_server(runtime, host, port)
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


def run_socket_mode(settings: Settings) -> int:
    from slack_bolt.adapter.socket_mode import SocketModeHandler

    require(settings, "slack_bot_token", "slack_app_token")
    runtime = build_runtime(settings, socket_mode=True)
    runtime.start_scheduler()
    try:
        SocketModeHandler(runtime.app, settings.slack_app_token.get_secret_value()).start()  # type: ignore[union-attr]
    finally:
        runtime.close()
    return 0


def serve_command(args: argparse.Namespace) -> int:
    settings = load_settings()
    logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s")
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
    # slack_sdk logs whole request bodies at DEBUG (message text, patient labels, a refused label
    # echoed back to its sender): never below INFO, whatever CRSBOT_LOG_LEVEL says.
    for name in ("slack_sdk", "slack_bolt"):
        logging.getLogger(name).setLevel(max(logging.INFO, logging.getLogger().level))
    logging.getLogger("slack_bolt.RequestVerification").addFilter(RedactRejectedBodies())
    if args.socket_mode:
        return run_socket_mode(settings)
    return run_http(settings, args.host, args.port if args.port is not None else settings.port)
