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
from collections.abc import Callable
from types import FrameType
from typing import Any

from bot.app import Runtime, build_runtime
from bot.logs import configure_logging
from bot.metrics import WithMetrics
from bot.settings import Settings, SettingsError, load_settings, require
from bot.slack.gate import MAX_BODY_BYTES
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


def make_wsgi(runtime: Runtime) -> WithMetrics:
    """The bot's WSGI app: the gate and /healthz (WebApp) in front of Bolt, counted by the metrics."""
    secret = runtime.settings.slack_signing_secret
    web = WebApp(runtime.app, runtime.engine, secret.get_secret_value() if secret else None, runtime.reminders)
    return WithMetrics(web, runtime.metrics)


def make_server(runtime: Runtime, host: str, port: int, *, wrap: Callable[[Any], Any] | None = None,
                threads: int | None = None) -> Any:
    """Waitress on the bot's WSGI app (plus /metrics); `wrap` adapts it (Socket Mode drops /slack/events).
    The bound port goes to CRSBOT_PORT_FILE for the container health check. Waitress refuses a body
    over the cap itself (by Content-Length, or while counting a chunked body), so an oversize request
    is never buffered; the gate in WebApp checks again."""
    import waitress

    wsgi = make_wsgi(runtime)
    try:
        server = waitress.create_server(wrap(wsgi) if wrap else wsgi, host=host, port=port,
                                        threads=threads or runtime.settings.threads, ident="crsbot",
                                        clear_untrusted_proxy_headers=True, max_request_body_size=MAX_BODY_BYTES)
    except OSError as exc:
        runtime.close()
        raise SettingsError(_port_problem(host, port, exc)) from None
    write_port_file(server.effective_port)
    return server


def _port_problem(host: str, port: int, exc: OSError) -> str:
    return f"PORT: cannot listen on {host}:{port} ({exc.strerror or exc}); is another crsbot or service using it?"


def check_port(host: str, port: int) -> None:
    """Fail before opening the database or calling Slack when the port is taken (one line)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise SettingsError(_port_problem(host, port, exc)) from None


def run_until_stopped(runtime: Runtime, server: Any, host: str, note: str = "",
                      on_exit: Callable[[], None] | None = None) -> int:
    """Start the reminders, serve until SIGTERM/SIGINT, then shut down cleanly."""
    runtime.start_scheduler()

    def stop(signum: int, _frame: FrameType | None) -> None:
        log.info("signal %s: shutting down", signum)
        server.close()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    log.info("crsbot listening on http://%s:%s%s", host, server.effective_port, note)
    print(f"crsbot listening on http://{host}:{server.effective_port}{note}", flush=True)
    try:
        server.run()
    except OSError:
        pass
    finally:
        if on_exit:
            on_exit()
        runtime.close()
    return 0


def run_http(settings: Settings, host: str, port: int) -> int:
    require(settings, "slack_bot_token", "slack_signing_secret")
    check_port(host, port)
    runtime = build_runtime(settings)
    return run_until_stopped(runtime, make_server(runtime, host, port), host)


def serve_command(args: argparse.Namespace) -> int:
    settings = load_settings()
    configure_logging(settings.log_level, settings.log_format)
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
    # slack_sdk logs whole request bodies at DEBUG (message text, patient labels, a refused label
    # echoed back to its sender): never below INFO, whatever CRSBOT_LOG_LEVEL says.
    for name in ("slack_sdk", "slack_bolt"):
        logging.getLogger(name).setLevel(max(logging.INFO, logging.getLogger().level))
    logging.getLogger("slack_bolt.RequestVerification").addFilter(RedactRejectedBodies())
    port = args.port if args.port is not None else settings.port
    if args.socket_mode:
        from bot.slack.socket_mode import run_socket_mode

        return run_socket_mode(settings, args.host, port)
    return run_http(settings, args.host, port)
