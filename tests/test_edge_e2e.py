"""Trust at the edge, tried as an attacker would, over real HTTP against a real `crsbot serve`:
forged and malformed requests, oversize and endless bodies, replays and Slack retries, a session
full of identifier-shaped patient labels, and bad settings at start-up.

Each refused request names a response_url and a channel of the fake, so if the bot acted on it
the fake would record the call: "no outbound call" is checked, not assumed.
"""

from __future__ import annotations

import http.client
import itertools
import json
import re
import select
import shutil
import socket
import sqlite3
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

from bot.slack.gate import MAX_BODY_BYTES
from bot.testing.slack_fake import FakeSlack, RecordedCall
from bot.testing.slack_requests import interactive_body, sign, view_submission_payload
from tests.db_fixtures import PG_ADMIN_URL, pg_admin_engine, pg_database_factory  # noqa: F401  (fixtures)
from tests.slack_support import RESPONSE_URL_METHOD, Served, clean_env, crsbot_command, run_crsbot, served
from tests.test_privacy import IDENTIFIERS

edge = served("edge")
_ids = itertools.count(1)
GRADE_3 = "temp=39 sbp=85 pressor=1"
OUTBOUND = ("chat.postMessage", "chat.postEphemeral", "chat.update", "views.open", RESPONSE_URL_METHOD)


def new_channel() -> str:
    return f"C0EDGE{next(_ids):04d}"


def outbound_since(served_: Served, mark: int) -> list[RecordedCall]:
    return [c for c in served_.calls_since(mark) if c.method in OUTBOUND]


def barrier(served_: Served) -> None:
    """A good signed request answered: anything a bad request queued has had its turn."""
    channel = new_channel()
    mark = served_.mark()
    assert served_.slash("help", channel=channel).status == 200
    served_.wait_for(lambda c: c.method == RESPONSE_URL_METHOD and c.response.get("channel") == channel, after=mark)


def assert_quiet(served_: Served, mark: int, log_from: int) -> None:
    barrier(served_)
    calls = [c for c in outbound_since(served_, mark)]
    # The barrier's own reply is the only call allowed.
    assert [c.method for c in calls] == [RESPONSE_URL_METHOD], [(c.method, c.params) for c in calls]
    assert "Traceback" not in served_.output()[log_from:]


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


# --------------------------------------------------------------------------- forged and malformed


@pytest.mark.parametrize("timestamp", ["abc", "", "1e3", " 123", "-1", "99999999999999999999", None])
def test_malformed_timestamp_is_refused_before_anything_reads_the_body(edge: Served, timestamp: str | None) -> None:
    channel = new_channel()
    body = edge.slash_body(f"{GRADE_3} patient=bed12", channel=channel)
    headers = sign(body, edge.secret)  # a valid signature for the real timestamp...
    if timestamp is None:
        del headers["X-Slack-Request-Timestamp"]
    else:
        headers["X-Slack-Request-Timestamp"] = timestamp  # ...sent with a broken one
    mark, log_from = edge.mark(), len(edge.output())
    response = edge.post(body, signed=False, headers=headers)
    assert response.status == 401
    assert_quiet(edge, mark, log_from)
    assert edge.fake.messages(channel) == []


@pytest.mark.parametrize("signature", ["", "v0=", "v1=" + "0" * 64, "v0=" + "g" * 64, "garbage", None])
def test_malformed_signature_is_refused(edge: Served, signature: str | None) -> None:
    channel = new_channel()
    body = edge.slash_body(f"{GRADE_3} patient=bed12", channel=channel)
    headers = {"X-Slack-Request-Timestamp": str(int(time.time()))}
    if signature is not None:
        headers["X-Slack-Signature"] = signature
    mark, log_from = edge.mark(), len(edge.output())
    assert edge.post(body, signed=False, headers=headers).status == 401
    assert_quiet(edge, mark, log_from)


@pytest.mark.parametrize("body", [b"", b"\xff\xfe\x00garbage", b"payload=%7B%22type", b"{}" * 100,
                                  b"payload=" + json.dumps({"type": "block_actions"}).encode()])
def test_unsigned_garbage_gets_401_without_a_traceback(edge: Served, body: bytes) -> None:
    mark, log_from = edge.mark(), len(edge.output())
    headers = {"Content-Type": "application/x-www-form-urlencoded",
               "X-Slack-Request-Timestamp": str(int(time.time())), "X-Slack-Signature": "v0=" + "a" * 64}
    conn = http.client.HTTPConnection(edge.process.host, edge.process.port, timeout=10)
    conn.request("POST", "/slack/events", body=body, headers=headers)
    assert conn.getresponse().status == 401
    conn.close()
    assert_quiet(edge, mark, log_from)


def test_wrong_secret_and_stale_timestamp_are_refused(edge: Served) -> None:
    channel = new_channel()
    mark, log_from = edge.mark(), len(edge.output())
    assert edge.slash(GRADE_3, channel=channel, secret="not-the-secret").status == 401
    assert edge.slash(GRADE_3, channel=channel, timestamp=int(time.time()) - 301).status == 401
    assert edge.slash(GRADE_3, channel=channel, timestamp=int(time.time()) + 301).status == 401
    assert_quiet(edge, mark, log_from)


# --------------------------------------------------------------------------- body size


def test_signed_body_over_the_cap_gets_413(edge: Served) -> None:
    channel = new_channel()
    body = edge.slash_body(f"{GRADE_3} patient=bed12", channel=channel) + "&pad=" + "x" * MAX_BODY_BYTES
    mark, log_from = edge.mark(), len(edge.output())
    assert edge.post(body).status == 413
    assert_quiet(edge, mark, log_from)


def test_a_normal_sized_signed_body_under_the_cap_still_works(edge: Served) -> None:
    channel = new_channel()
    body = edge.slash_body(f"{GRADE_3} patient=bed12", channel=channel) + "&pad=" + "x" * (MAX_BODY_BYTES // 2)
    mark = edge.mark()
    assert edge.post(body).status == 200
    edge.wait_for(lambda c: c.method == "chat.postMessage" and c.params.get("channel") == channel, after=mark)


def _stream(served_: Served, total: int, chunked: bool, chunk: bytes) -> tuple[int | None, int]:
    """Send up to `total` bytes of unsigned body without holding them, stopping as soon as the server
    answers (as a real client does); the status (None if the connection died first) and bytes sent."""
    conn = http.client.HTTPConnection(served_.process.host, served_.process.port, timeout=30)
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    if chunked:
        headers["Transfer-Encoding"] = "chunked"
    else:
        headers["Content-Length"] = str(total)
    conn.putrequest("POST", "/slack/events")
    for key, value in headers.items():
        conn.putheader(key, value)
    conn.endheaders()
    sent = 0
    try:
        while sent < total:
            if select.select([conn.sock], [], [], 0)[0]:  # an answer (or a close) is waiting: stop sending
                break
            data = chunk[: total - sent]
            conn.send(f"{len(data):x}\r\n".encode() + data + b"\r\n" if chunked else data)
            sent += len(data)
        if chunked and sent == total:
            conn.send(b"0\r\n\r\n")
    except OSError:
        pass
    try:
        return conn.getresponse().status, sent
    except (OSError, http.client.HTTPException):
        return None, sent
    finally:
        conn.close()


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_unsigned_200_mb_body_leaves_rss_within_30_mb_of_idle(edge: Served, chunked: bool,
                                                             record_property: Any) -> None:
    pid = edge.process.proc.pid
    barrier(edge)
    idle = rss_kib(pid)
    peak = idle
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, rss_kib(pid))
            time.sleep(0.01)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    mark, log_from = edge.mark(), len(edge.output())
    try:
        status, sent = _stream(edge, 200 * 1024 * 1024, chunked, b"a" * (1024 * 1024))
    finally:
        done.set()
        sampler.join()
    # waitress refuses it (max_request_body_size, by Content-Length or while counting the chunks) before
    # the app, and so the gate's 401, ever sees it; the answer comes long before the 200 MB are sent.
    assert status == 413
    assert sent < 200 * 1024 * 1024
    barrier(edge)
    after = rss_kib(pid)
    record_property("rss_kib", {"idle": idle, "peak": peak, "after": after})
    print(f"\nRSS ({'chunked' if chunked else 'content-length'}): idle {idle} KiB, peak {peak} KiB, "
          f"after {after} KiB; 413 after {sent // 1024} KiB sent")
    assert peak - idle < 30 * 1024
    assert edge.alive() if hasattr(edge, "alive") else edge.process.alive()
    assert "Traceback" not in edge.output()[log_from:]
    assert [c.method for c in outbound_since(edge, mark)] == [RESPONSE_URL_METHOD]


# --------------------------------------------------------------------------- replay and retries


def test_a_replayed_signed_request_does_nothing_the_second_time(edge: Served) -> None:
    channel = new_channel()
    body = edge.slash_body(f"{GRADE_3} patient=bed12", channel=channel)
    headers = sign(body, edge.secret)
    mark = edge.mark()
    assert edge.post(body, signed=False, headers=headers).status == 200
    edge.wait_for(lambda c: c.method == "chat.postMessage" and c.params.get("channel") == channel, after=mark)
    again = edge.mark()
    for _ in range(3):
        assert edge.post(body, signed=False, headers=headers).status == 200
    barrier(edge)
    assert [c for c in outbound_since(edge, again) if c.method != RESPONSE_URL_METHOD] == []
    assert len(edge.fake.messages(channel)) == 1
    assert _count(edge, "SELECT count(*) FROM assessments WHERE channel_id = ?", channel) == 1


def test_a_replayed_form_submission_does_nothing(edge: Served) -> None:
    channel = new_channel()
    mark = edge.mark()
    assert edge.slash("form", channel=channel).status == 200
    view = edge.wait_for("views.open", after=mark).params["view"]
    body = interactive_body(view_submission_payload(view, {"temp": "39", "sbp": "85", "pressor": "1",
                                                          "patient": "bed21"}, user="U0CLINIC01",
                                                    trigger_id=edge.fake.new_trigger_id()))
    headers = sign(body, edge.secret)
    assert edge.post(body, signed=False, headers=headers).status == 200
    edge.wait_for(lambda c: c.method == "chat.postMessage" and c.params.get("channel") == channel, after=mark)
    assert edge.post(body, signed=False, headers=headers).status == 200
    barrier(edge)
    assert len(edge.fake.messages(channel)) == 1


def test_slack_retries_are_acknowledged_without_repeating_work(edge: Served) -> None:
    channel = new_channel()
    mark = edge.mark()
    response = edge.slash(f"{GRADE_3} patient=bed12", channel=channel,
                          headers={"X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_timeout"})
    assert response.status == 200
    barrier(edge)
    assert [c for c in outbound_since(edge, mark) if c.method != RESPONSE_URL_METHOD] == []
    assert edge.fake.messages(channel) == []


def _home_published(served_: Served, user: str, after: int) -> list[RecordedCall]:
    return [c for c in served_.calls_since(after, "views.publish") if c.params.get("user_id") == user]


def _send_event(served_: Served, event: dict[str, Any], retry: int | None = None, age: int = 0) -> int:
    """POST an Events API body, signed `age` seconds ago (a retry is a new request: new timestamp and
    signature, same event_id)."""
    body = json.dumps(event)
    headers = sign(body, served_.secret, int(time.time()) - age)
    if retry is not None:
        headers.update({"X-Slack-Retry-Num": str(retry), "X-Slack-Retry-Reason": "http_timeout"})
    return served_.post(body, signed=False, headers=headers, content_type="application/json").status


def _settled(served_: Served) -> None:
    """A fresh event answered: one more barrier, for the events path."""
    user = f"U0SETTLE{next(_ids):02d}"
    mark = served_.mark()
    assert _send_event(served_, served_.fake.app_home_opened(user)) == 200
    served_.wait_for(lambda c: c.method == "views.publish" and c.params.get("user_id") == user, after=mark)


def test_a_retry_of_an_event_already_taken_does_nothing(edge: Served) -> None:
    user = "U0RETRY001"
    event = edge.fake.app_home_opened(user)
    mark = edge.mark()
    assert _send_event(edge, event, age=2) == 200
    edge.wait_for(lambda c: c.method == "views.publish" and c.params.get("user_id") == user, after=mark)
    for attempt in (1, 2, 3):
        assert _send_event(edge, event, retry=attempt, age=1 - attempt) == 200
    _settled(edge)
    assert len(_home_published(edge, user, mark)) == 1


def test_a_retry_of_an_event_that_never_got_through_does_the_work_once(edge: Served) -> None:
    """The first attempt was lost, or refused 503 while the database was away (nothing recorded): the
    retry is the first time the bot takes this event."""
    user = "U0RETRY002"
    event = edge.fake.app_home_opened(user)
    mark = edge.mark()
    assert _send_event(edge, event, retry=1, age=1) == 200
    edge.wait_for(lambda c: c.method == "views.publish" and c.params.get("user_id") == user, after=mark)
    assert _send_event(edge, event, retry=2) == 200
    _settled(edge)
    assert len(_home_published(edge, user, mark)) == 1


def _count(served_: Served, sql: str, *args: Any) -> int:
    with sqlite3.connect(served_.data_dir / "crsbot.sqlite3") as conn:
        return int(conn.execute(sql, args).fetchone()[0])


# --------------------------------------------------------------------------- refused labels leave no trace


def test_a_session_full_of_refused_labels_leaves_none_in_db_log_or_export(edge: Served, tmp_path: Path) -> None:
    channel = new_channel()
    labels = [label for label in IDENTIFIERS if " " not in label]
    spaced = [label for label in IDENTIFIERS if " " in label]
    for label in labels:
        mark = edge.mark()
        assert edge.slash(f"{GRADE_3} patient={label}", channel=channel).status == 200
        reply = edge.wait_for(lambda c: c.method == RESPONSE_URL_METHOD and c.response.get("channel") == channel,
                              after=mark)
        assert "bed or study label" in json.dumps(reply.params)
    for command in ("history", "resolve"):
        for label in labels[:10]:
            mark = edge.mark()
            assert edge.slash(f"{command} patient={label}", channel=channel).status == 200
            edge.wait_for(lambda c: c.method == RESPONSE_URL_METHOD and c.response.get("channel") == channel,
                          after=mark)
    # The form keeps several words as typed; they are refused, never joined.
    mark = edge.mark()
    assert edge.slash("form", channel=channel).status == 200
    view = edge.wait_for("views.open", after=mark).params["view"]
    for label in [*spaced, *labels[:10]]:
        response = edge.submit(view, {"temp": "39", "sbp": "85", "pressor": "1", "patient": label})
        assert response.status == 200
        assert "patient" in response.json()["errors"], label
    for label in labels[:10]:  # "Other findings" is /crs text: a label typed there meets the guard too
        response = edge.submit(view, {"temp": "39", "other": f"patient={label}"})
        assert response.status == 200
        assert response.json().get("response_action") == "errors", label
    barrier(edge)
    assert edge.fake.messages(channel) == []

    export = subprocess.run([*crsbot_command(), "audit", "export", "--format", "jsonl"],
                            env=clean_env({"CRSBOT_DATA_DIR": str(edge.data_dir)}), capture_output=True,
                            text=True, timeout=60, check=True).stdout
    assert export.count("\n") >= len(labels)
    assert '"PatientLabelError"' in export and "[refused label]" in export
    stored = b"".join(p.read_bytes() for p in edge.data_dir.iterdir() if p.name.startswith("crsbot.sqlite3"))
    log = edge.output()
    leaked = [label for label in IDENTIFIERS
              if _needle(label) in export.lower() or _needle(label).encode() in stored.lower()
              or _needle(label) in log.lower()]
    assert leaked == []
    for word in ("john", "smith", "mary"):  # as whole words ('summary' is not a leak)
        whole = re.compile(rf"(?<![a-z]){word}(?![a-z])".encode())
        assert not whole.search(export.lower().encode())
        assert not whole.search(log.lower().encode())
        assert not whole.search(stored.lower())


def _needle(label: str) -> str:
    """What a leak of `label` would look like: the label itself, or its words joined."""
    return "".join(label.lower().split())


# --------------------------------------------------------------------------- bad settings


def _one_line_failure(env: dict[str, str], *args: str, variable: str, cwd: Path) -> str:
    done = run_crsbot(env, "--port", "0", *args, cwd=cwd, timeout=60)
    lines = [line for line in done.stdout.splitlines() if line.strip()]
    assert done.returncode == 3, done.stdout  # the CLI's "configuration error" code
    assert "Traceback" not in done.stdout
    assert len(lines) == 1, done.stdout
    assert variable in lines[0], lines[0]
    return lines[0]


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeSlack]:
    with FakeSlack() as running:
        yield running


def _env(fake: FakeSlack, tmp_path: Path, **values: str) -> dict[str, str]:
    return clean_env({"SLACK_BOT_TOKEN": "xoxb-edge-settings", "SLACK_SIGNING_SECRET": "edge-settings-secret",
                      "SLACK_API_URL": fake.api_url, "CRSBOT_DATA_DIR": str(tmp_path / "data"), **values})


BAD_SETTINGS = [
    ("DATABASE_URL", "postgresql://postgres@127.0.0.1:1/crsbot", "DATABASE_URL"),
    ("DATABASE_URL", "not a url at all", "DATABASE_URL"),
    ("DATABASE_URL", "mysqlish://db/crsbot", "DATABASE_URL"),
    # Known dialects whose driver is not installed: refused by name, not a ModuleNotFoundError traceback.
    ("DATABASE_URL", "mysql://u@db/crsbot", "DATABASE_URL"),
    ("DATABASE_URL", "oracle://u:secret@db/crsbot", "DATABASE_URL"),
    ("DATABASE_URL", "postgresql+asyncpg://u@db/crsbot", "DATABASE_URL"),
    ("DATABASE_URL", "sqlite+aiosqlite:///crsbot.sqlite3", "DATABASE_URL"),
    ("DATABASE_URL", "sqlite:////proc/crsbot/crsbot.sqlite3", "DATABASE_URL"),
    ("CRSBOT_DATA_DIR", "/proc/crsbot-data", "CRSBOT_DATA_DIR"),
    ("CRSBOT_DATA_DIR", "/etc/hostname/data", "CRSBOT_DATA_DIR"),
    ("CRSBOT_ESCALATE_AFTER", "0s", "CRSBOT_ESCALATE_AFTER"),
    ("CRSBOT_LOG_LEVEL", "chatty", "CRSBOT_LOG_LEVEL"),
    ("CRSBOT_PATIENT_DENY_PATTERN", "", "CRSBOT_PATIENT_DENY_PATTERN"),
    ("CRSBOT_PATIENT_ALLOW_PATTERN", "", "CRSBOT_PATIENT_ALLOW_PATTERN"),
    ("CRSBOT_PATIENT_ALLOW_PATTERN", "bed[0-9", "CRSBOT_PATIENT_ALLOW_PATTERN"),
    ("CRSBOT_REASSESS_INTERVALS", "1=0h", "CRSBOT_REASSESS_INTERVALS"),
]


@pytest.mark.parametrize(("name", "value", "variable"), BAD_SETTINGS, ids=[f"{n}={v}" for n, v, _ in BAD_SETTINGS])
def test_bad_settings_stop_start_up_with_one_line(fake: FakeSlack, tmp_path: Path, name: str, value: str,
                                                  variable: str) -> None:
    _one_line_failure(_env(fake, tmp_path, **{name: value}), variable=variable, cwd=tmp_path)


def test_port_in_use_is_one_line(fake: FakeSlack, tmp_path: Path) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        done = run_crsbot(_env(fake, tmp_path), "--port", str(port), cwd=tmp_path, timeout=60)
    lines = [line for line in done.stdout.splitlines() if line.strip()]
    assert done.returncode != 0 and "Traceback" not in done.stdout
    assert len(lines) == 1 and "PORT" in lines[0] and str(port) in lines[0], done.stdout


def test_root_owned_data_dir_is_one_line_for_an_unprivileged_user(fake: FakeSlack, tmp_path: Path) -> None:
    """The Docker case: /data owned by root, the bot running as another user."""
    data = Path(tempfile.mkdtemp(prefix="crsbot-root-owned-"))  # /tmp/x: reachable by nobody, owned by root
    data.chmod(0o755)
    probe = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", *crsbot_command(),
                            "--help"], capture_output=True, text=True, timeout=60)
    if probe.returncode != 0:
        pytest.skip(f"cannot run crsbot as nobody here: {probe.stderr.strip()[:200]}")
    mpl = Path(tempfile.mkdtemp(prefix="crsbot-mpl-"))  # nobody's HOME is not writable: matplotlib's cache
    mpl.chmod(0o777)
    env = _env(fake, tmp_path, CRSBOT_DATA_DIR=str(data), MPLCONFIGDIR=str(mpl))
    done = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", *crsbot_command(),
                           "serve", "--host", "127.0.0.1", "--port", "0"], env=env, cwd="/",
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=60)
    data.rmdir()
    shutil.rmtree(mpl, ignore_errors=True)
    lines = [line for line in done.stdout.splitlines() if line.strip()]
    assert done.returncode != 0 and "Traceback" not in done.stdout
    assert len(lines) == 1 and "CRSBOT_DATA_DIR" in lines[0] and "not writable" in lines[0], done.stdout


# --------------------------------------------------------------------------- a database outage while running


def _set_connections(database: str, allowed: bool) -> None:
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    with admin.connect() as conn:
        conn.execute(text(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS {"true" if allowed else "false"}'))
        if not allowed:
            conn.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :d"),
                         {"d": database})
    admin.dispose()


def _wait(predicate: Callable[[], bool], timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


@pytest.mark.postgres
def test_database_outage_is_logged_once_each_way_and_healthz_says_what_is_down(
        pg_database_factory: Callable[[], str], tmp_path: Path) -> None:  # noqa: F811
    url = pg_database_factory()
    database = url.rsplit("/", 1)[-1]
    with Served.running(tmp_path, env={"DATABASE_URL": url, "CRSBOT_TICK_SECONDS": "0.1"}) as bot:
        _set_connections(database, allowed=False)
        try:
            assert _wait(lambda: bot.health().status == 503)
            body = bot.health().json()
            assert body["ok"] is False and body["database"] == "unreachable" and "database" in body["down"]
            time.sleep(2)  # about 20 ticks fail
            assert bot.output().count("reminder tick failing") == 1
        finally:
            _set_connections(database, allowed=True)
        assert _wait(lambda: "reminder tick recovered" in bot.output())
        assert _wait(lambda: bot.health().status == 200)
        output = bot.output()
    assert output.count("reminder tick failing") == 1
    assert output.count("reminder tick recovered") == 1
    recovered = next(line for line in output.splitlines() if "reminder tick recovered" in line)
    assert int(recovered.split("; ")[1].split()[0]) >= 5
    assert "Traceback" not in output


@pytest.mark.postgres
def test_replay_check_outage_gives_503_logged_once_and_the_refused_request_can_come_again(
        pg_database_factory: Callable[[], str], tmp_path: Path) -> None:  # noqa: F811
    """The replay memory is in the database: while it is unreachable a signed request cannot be checked,
    so it is refused with 503 (fail closed), does nothing, and leaves no record that would make the
    same request a "replay" once the database is back."""
    url = pg_database_factory()
    database = url.rsplit("/", 1)[-1]
    attempts = 5
    with Served.running(tmp_path, env={"DATABASE_URL": url}) as bot:
        channel = new_channel()
        body = bot.slash_body(f"{GRADE_3} patient=bed12", channel=channel)
        headers = sign(body, bot.secret)
        mark = bot.mark()
        _set_connections(database, allowed=False)
        try:
            statuses = [bot.post(body, signed=False, headers=headers).status for _ in range(attempts)]
            down_output = bot.output()
        finally:
            _set_connections(database, allowed=True)
        assert statuses == [503] * attempts
        assert down_output.count("database (replay check) failing") == 1
        assert "database (replay check) recovered" not in down_output
        assert outbound_since(bot, mark) == []

        # Back up: the very request refused above is taken now, once.
        assert bot.post(body, signed=False, headers=headers).status == 200
        bot.wait_for(lambda c: c.method == "chat.postMessage" and c.params.get("channel") == channel, after=mark)
        assert bot.post(body, signed=False, headers=headers).status == 200  # and now it is a replay
        barrier(bot)
        assert len(bot.fake.messages(channel)) == 1
        output = bot.output()
    assert output.count("database (replay check) failing") == 1
    recovered = [line for line in output.splitlines() if "database (replay check) recovered" in line]
    assert len(recovered) == 1, recovered
    assert f"; {attempts} attempts failed meanwhile" in recovered[0]
    assert "Traceback" not in output


# --------------------------------------------------------------------------- replays across replicas


@pytest.mark.postgres
def test_a_request_replayed_to_another_replica_does_nothing(pg_database_factory: Callable[[], str],  # noqa: F811
                                                            tmp_path: Path) -> None:
    url = pg_database_factory()
    secret = "edge-replica-secret"
    env = {"DATABASE_URL": url, "SLACK_SIGNING_SECRET": secret}
    with FakeSlack() as fake_, Served.running(tmp_path / "a", env=env, fake=fake_) as a, \
            Served.running(tmp_path / "b", env=env, fake=fake_) as b:
        channel = new_channel()
        body = a.slash_body(f"{GRADE_3} patient=bed12", channel=channel)
        headers = sign(body, secret)
        mark = a.mark()
        assert a.post(body, signed=False, headers=headers).status == 200
        a.wait_for(lambda c: c.method == "chat.postMessage" and c.params.get("channel") == channel, after=mark)
        assert b.post(body, signed=False, headers=headers).status == 200
        b.secret = secret
        barrier(b)
        assert len(fake_.messages(channel)) == 1
        engine = create_engine(url, poolclass=NullPool)
        with engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM assessments")).scalar() == 1
            assert conn.execute(text("SELECT count(*) FROM seen_requests")).scalar() >= 2
        engine.dispose()
