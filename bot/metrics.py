"""Prometheus metrics for admins: what the bot did, what failed, and whether reminders run on time.

One `CollectorRegistry` per runtime (not the process-global default), served at GET /metrics.
Labels come only from closed vocabularies (command names, action ids, outcomes, reminder kinds,
Slack method and error codes): never a patient label, channel, user or free text.

Hooks are kept out of the code they observe: Bolt's listener runner reports each request's start,
error and completion here; the reminder engine's notifier is wrapped; the sender reports failures.
"""

from __future__ import annotations

import itertools
import logging
import secrets
import time
from collections.abc import Callable, Iterable, Iterator
from contextvars import ContextVar
from datetime import timedelta
from enum import StrEnum
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from slack_bolt import App, BoltRequest, BoltResponse
from slack_bolt.listener.listener_completion_handler import ListenerCompletionHandler
from slack_bolt.listener.listener_error_handler import ListenerErrorHandler
from slack_bolt.listener.listener_start_handler import ListenerStartHandler
from slack_bolt.middleware.middleware_error_handler import MiddlewareErrorHandler
from sqlalchemy import text
from sqlalchemy.engine import Engine

from bot.clock import as_utc
from bot.commands import route
from bot.episodes.engine import DueReminder, EngineObserver
from bot.errors import Refusal
from bot.slack.sender import DeliveryError
from bot.storage.store import Store
from grading.errors import CrsbotError, InputError, PatientLabelError
from messages.ids import ActionId, CallbackId

log = logging.getLogger("crsbot.metrics")
METRICS_PATH = "/metrics"
# A reminder posted more than this after it fell due counts as late (a tick is about a second).
LATE_AFTER = timedelta(seconds=60)
LATENESS_BUCKETS = (0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 4 * 3600)
DURATION_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2, 3, 5, 10, 30)
KNOWN_EVENTS = frozenset({"app_home_opened"})

request_id: ContextVar[str] = ContextVar("crsbot_request_id", default="-")
"""The id of the Slack request the current thread works on (in JSON logs as request_id)."""
_REQUEST_ID_PREFIX = secrets.token_hex(3)  # this process; replicas' logs are often read together
_request_numbers = itertools.count(1)


def new_request_id() -> str:
    """Unique across this process's requests (a counter) and replicas (a random prefix), 12 characters for
    the first 16 million requests, without reading the system's random source on every request."""
    return f"{_REQUEST_ID_PREFIX}{next(_request_numbers):06x}"


class Outcome(StrEnum):
    OK = "ok"
    BAD_INPUT = "bad_input"  # the user typed something the grammar refuses; a specific reply was sent
    REFUSED = "refused"  # not allowed here, a patient label that looks like a name/record number, ...
    SLACK_ERROR = "slack_error"  # Slack did not take the answer even after retries
    ERROR = "error"  # a bug: an apology with a reference was sent


def outcome_of(error: BaseException) -> Outcome:
    if isinstance(error, InputError):
        return Outcome.BAD_INPUT
    if isinstance(error, (Refusal, PatientLabelError)):
        return Outcome.REFUSED
    if isinstance(error, DeliveryError):
        return Outcome.SLACK_ERROR
    if isinstance(error, CrsbotError):
        return Outcome.REFUSED
    return Outcome.ERROR


def kind_of(body: dict[str, Any]) -> str:
    """What was asked, from a closed vocabulary (the command table, action and callback ids)."""
    if body.get("command"):
        return f"command:{route(str(body.get('text') or ''))[0].name.value}"
    if body.get("type") == "block_actions":
        action = ((body.get("actions") or [{}])[0] or {}).get("action_id", "")
        return f"button:{action if action in set(ActionId) else 'other'}"
    if body.get("type") == "view_submission":
        callback = (body.get("view") or {}).get("callback_id", "")
        return f"form:{callback if callback in set(CallbackId) else 'other'}"
    if body.get("type") == "event_callback":
        event = (body.get("event") or {}).get("type", "")
        return f"event:{event if event in KNOWN_EVENTS else 'other'}"
    return "other"


class Metrics:
    """Every metric the bot exports, in its own registry."""

    def __init__(self, engine: Engine | None = None, store: Store | None = None) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.commands = Counter("crsbot_commands", "Slack requests handled, by kind and outcome",
                                ["kind", "outcome"], registry=r)
        self.command_seconds = Histogram("crsbot_command_duration_seconds",
                                         "Time from a request reaching its listener to the listener finishing",
                                         ["kind"], buckets=DURATION_BUCKETS, registry=r)
        self.slack_errors = Counter("crsbot_slack_api_errors", "Slack Web API calls that failed after retries",
                                    ["method", "error"], registry=r)
        self.reminders_due = Counter("crsbot_reminders_due", "Reminder posts claimed as due", ["kind"], registry=r)
        self.reminders_posted = Counter("crsbot_reminders_posted", "Reminder posts Slack accepted", ["kind"],
                                        registry=r)
        self.reminders_failed = Counter("crsbot_reminders_failed", "Reminder posts that failed (retried later)",
                                        ["kind"], registry=r)
        self.reminders_late = Counter("crsbot_reminders_late",
                                      f"Reminder posts made more than {LATE_AFTER.seconds} s after they fell due",
                                      ["kind"], registry=r)
        self.lateness = Histogram("crsbot_reminder_lateness_seconds", "How long after its due time a reminder posted",
                                  ["kind"], buckets=LATENESS_BUCKETS, registry=r)
        self.escalations = Counter("crsbot_escalations", "Posts that escalated to the on-call (mention)",
                                   registry=r)
        if engine is not None and store is not None:
            r.register(_StateCollector(engine, store))
        # Each request's counter and histogram, looked up once per (kind, outcome) rather than per request.
        self._children: dict[tuple[str, Outcome], tuple[Any, Any]] = {}

    # ------------------------------------------------------------------ hooks

    def instrument(self, app: App) -> None:
        """Count every request Bolt runs a listener for (call after the listeners are registered)."""
        runner = app.listener_runner
        runner.listener_start_handler = _Start(runner.listener_start_handler)
        runner.listener_error_handler = _Error(runner.listener_error_handler, self)
        # A refusal raised by the authorize middleware goes to Bolt's middleware error handler, which
        # Bolt keeps in a private attribute (set by @app.error); wrap it the same way.
        if hasattr(app, "_middleware_error_handler"):
            app._middleware_error_handler = _Error(app._middleware_error_handler, self)  # type: ignore[assignment]
        runner.listener_completion_handler = _Completion(runner.listener_completion_handler, self)

    def slack_api_error(self, method: str, error: str) -> None:
        self.slack_errors.labels(method=method, error=error[:40]).inc()

    def reminder_observer(self) -> EngineObserver:
        """The reminder engine's hook points, counted: due, posted or failed, lateness, escalations."""
        return _ReminderCounts(self)

    def count(self, request: BoltRequest, outcome: Outcome) -> None:
        if request.context.get("crsbot_counted"):
            return
        request.context["crsbot_counted"] = True
        kind = kind_of(request.body)
        children = self._children.get((kind, outcome))
        if children is None:  # kinds and outcomes are closed vocabularies: this holds a few dozen pairs
            children = self._children.setdefault((kind, outcome), (
                self.commands.labels(kind=kind, outcome=outcome.value), self.command_seconds.labels(kind=kind)))
        children[0].inc()
        started = request.context.get("crsbot_started")
        if isinstance(started, float):
            children[1].observe(time.perf_counter() - started)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


class _ReminderCounts(EngineObserver):
    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    def posted(self, due: DueReminder, late_by: timedelta, reconciled: bool) -> None:
        m, kind = self.metrics, str(due.kind)
        m.reminders_due.labels(kind=kind).inc()
        m.reminders_posted.labels(kind=kind).inc()
        m.lateness.labels(kind=kind).observe(late_by.total_seconds())
        if late_by > LATE_AFTER:
            m.reminders_late.labels(kind=kind).inc()

    def escalated(self, due: DueReminder) -> None:
        self.metrics.escalations.inc()

    def failed(self, due: DueReminder, error: str, final: bool) -> None:
        kind = str(due.kind)
        self.metrics.reminders_due.labels(kind=kind).inc()
        self.metrics.reminders_failed.labels(kind=kind).inc()


class _Start(ListenerStartHandler):
    def __init__(self, inner: ListenerStartHandler) -> None:
        self.inner = inner

    def handle(self, request: BoltRequest, response: BoltResponse | None) -> None:
        request.context["crsbot_started"] = time.perf_counter()
        request_id.set(new_request_id())
        self.inner.handle(request=request, response=response)


class _Error(ListenerErrorHandler, MiddlewareErrorHandler):
    def __init__(self, inner: ListenerErrorHandler, metrics: Metrics) -> None:
        self.inner, self.metrics = inner, metrics

    def handle(self, error: Exception, request: BoltRequest, response: BoltResponse | None) -> None:
        self.metrics.count(request, outcome_of(error))
        self.inner.handle(error=error, request=request, response=response)


class _Completion(ListenerCompletionHandler):
    def __init__(self, inner: ListenerCompletionHandler, metrics: Metrics) -> None:
        self.inner, self.metrics = inner, metrics

    def handle(self, request: BoltRequest, response: BoltResponse | None) -> None:
        # A form answered with field errors stays open: the user typed something the grammar refused. The
        # answer is the ack's: with process_before_response off, `response` is Bolt's blank default.
        acked = request.context.ack.response or response
        body = acked.body if acked is not None and isinstance(acked.body, str) else ""
        self.metrics.count(request, Outcome.BAD_INPUT if '"response_action": "errors"' in body
                           or '"response_action":"errors"' in body else Outcome.OK)
        self.inner.handle(request=request, response=response)
        request_id.set("-")


class _StateCollector(Collector):
    """Read at scrape time: database reachability and the reminder queue."""

    def __init__(self, engine: Engine, store: Store) -> None:
        self.engine, self.store = engine, store

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily("crsbot_database_up", "1 when the database answered SELECT 1 at scrape time")
        ping = GaugeMetricFamily("crsbot_database_ping_seconds", "How long SELECT 1 took at scrape time")
        queue = GaugeMetricFamily("crsbot_reminder_queue", "Reminders waiting, by state "
                                  "(pending: booked; overdue: pending and past due; claimed: being posted)",
                                  labels=["state"])
        started = time.perf_counter()
        try:
            with self.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
            up.add_metric([], 1)
            ping.add_metric([], time.perf_counter() - started)
            now = as_utc(self.store.clock.now())
            for state, count in self.store.queue_counts(now).items():
                queue.add_metric([state], count)
        except Exception:  # noqa: BLE001 - a scrape reports the database as down, it does not fail
            log.warning("metrics: database check failed", exc_info=True)
            up.add_metric([], 0)
        yield up
        yield ping
        yield queue


class WithMetrics:
    """WSGI wrapper serving GET /metrics in front of the bot's app."""

    def __init__(self, wsgi: Callable[..., Iterable[bytes]], metrics: Metrics) -> None:
        self.wsgi, self.metrics = wsgi, metrics

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("PATH_INFO") == METRICS_PATH and environ.get("REQUEST_METHOD") in ("GET", "HEAD"):
            data = self.metrics.exposition()
            start_response("200 OK", [("Content-Type", CONTENT_TYPE_LATEST), ("Content-Length", str(len(data)))])
            return [data]
        return self.wsgi(environ, start_response)
