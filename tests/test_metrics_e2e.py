"""GET /metrics of a real `crsbot serve` after a scripted session: commands by kind and outcome,
Slack API errors, reminders due/posted/late with the lateness histogram, escalations, the queue and
the database (down too), and no patient label, channel or user anywhere in the exposition. Also JSON logs,
one request id per request."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import Engine, make_url, text

from bot.clock import SystemClock
from bot.storage.db import make_engine
from bot.storage.store import Store
from bot.testing.slack_fake import RecordedCall
from messages.ids import ActionId, CallbackId
from tests.db_fixtures import pg_admin_engine, pg_database_factory  # noqa: F401  (fixtures)
from tests.slack_support import RESPONSE_URL_METHOD, Served, http_request

GRADE_3 = "temp=39 sbp=85 pressor=1"
ENV = {"CRSBOT_REASSESS_INTERVALS": "1=3s,2=3s,3=3s,4=3s", "CRSBOT_ESCALATE_AFTER": "2s",
       "CRSBOT_TICK_SECONDS": "0.2", "CRSBOT_LOG_FORMAT": "json"}


@pytest.fixture(scope="module")
def bot(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    with Served.running(tmp_path_factory.mktemp("metrics"), env=ENV) as served:
        yield served


Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(bot: Served) -> tuple[str, Samples]:
    response = http_request(f"{bot.process.base_url}/metrics")
    assert response.status == 200 and response.headers["Content-Type"].startswith("text/plain")
    samples: Samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return response.text, samples


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def answered(bot: Served, channel: str, mark: int) -> RecordedCall:
    def predicate(call: RecordedCall) -> bool:
        return (call.method in ("chat.postMessage", "chat.postEphemeral", RESPONSE_URL_METHOD)
                and channel in (call.params.get("channel"), call.response.get("channel")))
    return bot.wait_for(predicate, after=mark)


def slash(bot: Served, text: str, channel: str) -> None:
    mark = bot.mark()
    assert bot.slash(text, channel=channel).status == 200
    answered(bot, channel, mark)


def wait_metric(bot: Served, check: str, timeout: float = 30.0) -> Samples:
    deadline = time.monotonic() + timeout
    while True:
        _, samples = scrape(bot)
        if eval(check, {"v": lambda name, **labels: value(samples, name, **labels)}):  # noqa: S307 - test-only
            return samples
        if time.monotonic() > deadline:
            raise AssertionError(f"metrics never satisfied {check}")
        time.sleep(0.2)


def test_metrics_after_a_scripted_session(bot: Served) -> None:
    slash(bot, f"{GRADE_3} patient=bed41", "C0METRIC1")
    graded = next(m for m in bot.fake.messages("C0METRIC1") if "bed41" in json.dumps(m.get("blocks")))
    mark = bot.mark()
    assert bot.click(graded, ActionId.DETAILS.value, channel="C0METRIC1").status == 200  # a button
    bot.wait_for("views.open", after=mark)
    mark = bot.mark()
    slash(bot, "form", "C0METRIC1")
    form = bot.wait_for("views.open", after=mark).response["view"]
    assert bot.submit(form, {"temp": "500"}).json()["response_action"] == "errors"  # a form with a bad field
    mark = bot.mark()
    assert bot.submit(form, {"temp": "38.5", "patient": "bed42"}).status == 200  # a good one
    bot.wait_for(lambda c: c.ok and c.method == "chat.postMessage" and "bed42" in json.dumps(c.params), after=mark)
    slash(bot, "temp=500", "C0METRIC1")  # bad input
    slash(bot, "help", "C0METRIC1")
    slash(bot, f"{GRADE_3} patient=john.smith", "C0METRIC1")  # a name: refused
    bot.fake.fail_next("chat.postMessage", status=200, error="channel_not_found")
    slash(bot, GRADE_3, "C0METRIC2")  # Slack refuses the post

    # A reminder that fell due two minutes ago (as after an outage): the next tick posts it late.
    store = Store(make_engine(f"sqlite:///{bot.data_dir / 'crsbot.sqlite3'}"), SystemClock())
    episode = store.find_open_episode("C0METRIC1", "bed41")
    assert episode is not None
    store.schedule_reminder(episode.id, "reassess", SystemClock().now() - timedelta(minutes=2))

    samples = wait_metric(bot, "v('crsbot_reminders_late_total', kind='reassess') >= 1 "
                               "and v('crsbot_escalations_total') >= 1")
    text, samples = scrape(bot)

    commands = "crsbot_commands_total"
    assert value(samples, commands, kind="command:grade", outcome="ok") == 1
    assert value(samples, commands, kind="command:grade", outcome="bad_input") == 1
    assert value(samples, commands, kind="command:help", outcome="ok") == 1
    assert value(samples, commands, kind="command:grade", outcome="refused") == 1
    assert value(samples, commands, kind="command:grade", outcome="slack_error") == 1
    assert value(samples, "crsbot_slack_api_errors_total", method="chat.postMessage", error="channel_not_found") == 1
    assert value(samples, commands, kind=f"button:{ActionId.DETAILS}", outcome="ok") == 1
    assert value(samples, commands, kind="command:form", outcome="ok") == 1
    assert value(samples, commands, kind=f"form:{CallbackId.CRS_FORM}", outcome="bad_input") == 1
    assert value(samples, commands, kind=f"form:{CallbackId.CRS_FORM}", outcome="ok") == 1

    assert value(samples, "crsbot_reminders_due_total", kind="reassess") >= 1
    assert value(samples, "crsbot_reminders_posted_total", kind="reassess") >= 1
    lateness = "crsbot_reminder_lateness_seconds"
    count = value(samples, f"{lateness}_count", kind="reassess")
    assert count >= 1 and value(samples, f"{lateness}_sum", kind="reassess") >= 120
    assert value(samples, f"{lateness}_bucket", kind="reassess", le="+Inf") == count
    assert value(samples, f"{lateness}_bucket", kind="reassess", le="60.0") < count  # the late one is above 60 s
    # The refusal was raised by the authorize middleware, before any listener ran: no duration for it.
    assert value(samples, "crsbot_command_duration_seconds_count", kind="command:grade") == 3

    assert value(samples, "crsbot_database_up") == 1
    assert ("crsbot_reminder_queue", (("state", "pending"),)) in samples
    assert value(samples, "crsbot_reminder_queue", state="overdue") == 0

    for private in ("bed41", "bed42", "john.smith", "C0METRIC", "U0CLINIC01"):
        assert private not in text, f"{private} appears in /metrics"


def request_lines(bot: Served, since: int, count: int, timeout: float = 10.0) -> list[dict[str, Any]]:
    """The JSON log entries written inside a request (request_id set) after output line `since`."""
    deadline = time.monotonic() + timeout
    while True:
        entries = [json.loads(line) for line in bot.output().splitlines()[since:] if line.startswith("{")]
        inside = [e for e in entries if e["request_id"] != "-"]
        if len(inside) >= count or time.monotonic() > deadline:
            return inside
        time.sleep(0.05)


def test_json_logs_carry_a_request_id(bot: Served) -> None:
    ids = []
    for channel in ("C0METRIC3", "C0METRIC4"):
        # Slack refuses the answer: the sender logs the failure, then Bolt logs the error, both in the request.
        since = len(bot.output().splitlines())
        bot.fake.fail_next("chat.postMessage", status=200, error="channel_not_found")
        slash(bot, GRADE_3, channel)
        inside = request_lines(bot, since, 2)
        assert {e["logger"] for e in inside} >= {"crsbot.sender", "slack_bolt.App"}, inside
        assert len({e["request_id"] for e in inside}) == 1, inside  # one request, one id on all its lines
        ids.append(inside[0]["request_id"])
    assert ids[0] != ids[1]  # a new id for each request
    entries = [json.loads(line) for line in bot.output().splitlines() if line.startswith("{")]
    assert all({"ts", "level", "logger", "message", "request_id"} <= set(e) for e in entries)


@pytest.mark.postgres
def test_a_database_outage_shows_in_database_up(pg_database_factory: Callable[[], str],  # noqa: F811
                                                pg_admin_engine: Engine, tmp_path: Path) -> None:  # noqa: F811
    url = pg_database_factory()
    name = make_url(url).database
    with Served.running(tmp_path, env={"DATABASE_URL": url}) as served:
        assert value(scrape(served)[1], "crsbot_database_up") == 1
        with pg_admin_engine.connect() as conn:  # the database goes away: no new connections, old ones cut
            conn.execute(text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false'))
            conn.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :name"),
                         {"name": name})
        try:
            _, samples = scrape(served)
            assert value(samples, "crsbot_database_up") == 0
            assert ("crsbot_database_up", ()) in samples  # reported as 0, not left out
        finally:
            with pg_admin_engine.connect() as conn:
                conn.execute(text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true'))
        wait_metric(served, "v('crsbot_database_up') == 1")


def test_metrics_has_its_own_registry_not_the_global_one(bot: Served, tmp_path: Path) -> None:
    text, _ = scrape(bot)
    assert "python_gc_objects_collected_total" not in text  # the default registry's collectors
    assert "crsbot_commands_total" in text
