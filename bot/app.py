"""Builds the running bot from settings: storage, rulebooks, Slack client, Bolt app, reminder
engine. `serve` (HTTP or Socket Mode) and `console` both start from `build_runtime`."""

from __future__ import annotations

import gc
import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta
from zoneinfo import ZoneInfo

from slack_bolt import App
from sqlalchemy.engine import Engine

from bot.clock import Clock, SystemClock
from bot.listeners import register_listeners
from bot.metrics import Metrics
from bot.episodes.engine import ReminderEngine, default_replica_id, parse_intervals
from bot.episodes.notifier import SlackNotifier
from bot.episodes.policy import ReminderPolicy
from bot.episodes.handoff import HandoffSchedule, HandoffScheduler
from bot.handlers import reminders as reminder_posts
from bot.handlers.deps import Deps
from bot.handlers.handoff import SlackHandoffPoster, handoff_log
from bot.rulebooks import load_rulebooks
from bot.seal import Sealer
from bot.slack.sender import Sender, make_client
from bot.settings import Settings, SettingsError, parse_duration, parse_times_of_day
from bot.storage.connect import open_database
from bot.storage.kinds import ReminderKind
from bot.storage.store import Store

log = logging.getLogger("crsbot")
RUNTIME_CONNECTIONS = 2  # the reminder engine's tick and /healthz
# Listener threads and database connections are sized together: a listener holds a connection only
# for its short transactions (never across a Slack call), so on PostgreSQL one connection per listener
# thread means no listener ever waits for one; on SQLite the one writer is one pooled connection
# (bot/storage/db.py). Threads outnumber Slack's concurrent work so an ack never waits behind slow posts.
LISTENER_THREADS = 32
CLAIM_LEAD = timedelta(milliseconds=250)  # reminders are claimed this early and posted at their due time


@dataclass
class Runtime:
    settings: Settings
    app: App
    deps: Deps
    reminders: ReminderEngine
    engine: Engine
    metrics: Metrics
    handoffs: HandoffScheduler | None = None

    def start_scheduler(self) -> None:
        # What start-up built lives as long as the process: keep it out of the collector's full passes,
        # which otherwise walk it all (a 200 ms pause seen on the first on-time reminders).
        gc.freeze()
        self.reminders.start()

    def close(self) -> None:
        if self.reminders.running:
            self.reminders.shutdown(wait=True, timeout=5.0)  # let a pass in flight record its posts
        self.engine.dispose()


def build_runtime(settings: Settings, clock: Clock | None = None, socket_mode: bool = False) -> Runtime:
    """Fail fast: bad rulebook, bad intervals or an unreachable database stop start-up with a clear message."""
    clock = clock or SystemClock()
    rulebooks = load_rulebooks(settings.rulebook)
    try:
        intervals = parse_intervals(settings.reassess_intervals)
    except ValueError as exc:
        raise SettingsError(f"CRSBOT_REASSESS_INTERVALS: {exc}") from None
    # PostgreSQL: one connection per listener thread, the tick and /healthz, and each HTTP thread's
    # replay check (bot/slack/gate.py).
    engine = open_database(settings.database_url, settings.data_dir,
                           pool_size=LISTENER_THREADS + RUNTIME_CONNECTIONS + settings.threads)
    store = Store(engine, clock)
    token = settings.slack_bot_token.get_secret_value() if settings.slack_bot_token else None
    client = make_client(token, settings.slack_api_url, timeout=settings.slack_timeout)
    metrics = Metrics(engine, store)
    sender = Sender(client, on_error=metrics.slack_api_error)
    signing = settings.slack_signing_secret.get_secret_value() if settings.slack_signing_secret else None
    deps = Deps(settings, rulebooks, store, sender, Sealer(seal_secret(settings)))
    try:
        # Bolt's default pool has 5 threads and a listener keeps its thread until its post is done, so
        # slow Slack (429 Retry-After) could hold back the ack of the sixth command past Slack's 3 s.
        app = App(signing_secret=signing, client=client, process_before_response=False,
                  request_verification_enabled=not socket_mode, token_verification_enabled=True, name="crsbot",
                  listener_executor=ThreadPoolExecutor(max_workers=LISTENER_THREADS,
                                                       thread_name_prefix="crsbot-listener"))
    except Exception as exc:  # noqa: BLE001 - Bolt verifies the token with auth.test at start-up
        raise SettingsError(f"SLACK_BOT_TOKEN could not be verified with auth.test at SLACK_API_URL="
                            f"{settings.slack_api_url} ({type(exc).__name__}: {exc})") from None
    home = register_listeners(app, deps)
    metrics.instrument(app)
    policy = ReminderPolicy(intervals, parse_duration(settings.escalate_after))
    notifier = SlackNotifier(sender, {kind: (lambda due: reminder_posts.render(deps, due)) for kind in ReminderKind})
    try:
        reminders = ReminderEngine(store, clock, notifier, default_replica_id(), policy,
                                   lease=parse_duration(settings.claim_lease),
                                   post_timeout=timedelta(seconds=settings.slack_timeout),
                                   retry_base=parse_duration(settings.retry_after), max_idle=settings.tick_seconds,
                                   lead=CLAIM_LEAD, observer=home.watching(metrics.reminder_observer()))
    except ValueError as exc:
        raise SettingsError(f"CRSBOT_CLAIM_LEASE: {exc}") from None
    deps.reminders = reminders
    reminders.tick_hooks.append(home.refresh_engine_changes)
    return Runtime(settings=settings, app=app, deps=deps, reminders=reminders, engine=engine, metrics=metrics,
                   handoffs=scheduled_handoffs(settings, deps, clock, reminders))


def scheduled_handoffs(settings: Settings, deps: Deps, clock: Clock, reminders: ReminderEngine) \
        -> HandoffScheduler | None:
    """CRSBOT_HANDOFF_TIMES: each replica ticks the handoff with its reminders; the (channel, slot) claim in the
    database makes one of them post it."""
    times = parse_times_of_day(settings.handoff_times)
    if not times:
        return None
    scheduler = HandoffScheduler(HandoffSchedule(times, ZoneInfo(settings.timezone)), handoff_log(deps),
                                 SlackHandoffPoster(deps), clock, reminders.replica_id, lease=reminders.lease,
                                 post_timeout=reminders.post_timeout)
    reminders.tick_hooks.append(scheduler.tick)
    return scheduler


def seal_secret(settings: Settings) -> str:
    """The key button values and form metadata are sealed with is derived from the signing secret; in
    Socket Mode (no signing secret) from the app-level token, else the bot token. It must be the same on
    every replica and across restarts, so buttons on old messages keep working."""
    for secret in (settings.slack_signing_secret, settings.slack_app_token, settings.slack_bot_token):
        if secret is not None and secret.get_secret_value():
            return secret.get_secret_value()
    raise SettingsError("SLACK_SIGNING_SECRET: needed to seal button values (or SLACK_APP_TOKEN in Socket Mode)")
