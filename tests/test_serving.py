"""Production serving: `gunicorn app:server` with gunicorn.conf.py, several processes, /healthz and
the logs, against a real Redis, a real SQLite file and real processes."""
import json
import os
import signal
import urllib.error
import urllib.request

import pytest
import websocket
from conftest import PYTHON, Service, free_port, wait_until
from test_readings_socket import insert, read_changes, ws_url


class Gunicorn(Service):
    """`gunicorn app:server` exactly as production runs it: no flags, settings from the env."""

    def __init__(self, env, log_path, processes, flags=(), **extra_env):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = dict(env, PORT=str(self.port), WEB_PROCESSES=str(processes), WEB_THREADS="64",
                   **extra_env)
        super().__init__([PYTHON, "-m", "gunicorn", "app:server", *flags], env, log_path,
                         ready=lambda: self.health()[0] == 200)

    def health(self):
        """(HTTP status, report) of GET /healthz, from whichever process answers."""
        try:
            with urllib.request.urlopen(f"{self.url}/healthz", timeout=5) as response:
                return response.status, json.load(response)
        except urllib.error.HTTPError as error:
            return error.code, json.load(error)

    def clients_per_process(self, processes, total):
        """{pid: WebSocket clients} once `processes` processes answered and hold `total` clients."""
        seen = {}

        def complete():
            report = self.health()[1]
            seen[report["pid"]] = report["clients"]
            return len(seen) == processes and sum(seen.values()) == total

        wait_until(complete, timeout=60, interval=0.02,
                   what=f"{total} clients over {processes} processes (seen {seen})")
        return seen


@pytest.fixture
def gunicorn(live_env, tmp_path):
    """Start `gunicorn app:server [flags]` with N processes; stopped after the test."""
    servers = []

    def start(processes, *flags, **extra_env):
        log_path = tmp_path / f"gunicorn-{len(servers)}.log"
        servers.append(Gunicorn(live_env, log_path, processes, flags, **extra_env))
        return servers[-1].start()

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def two_processes(gunicorn):
    return gunicorn(2)


@pytest.fixture
def one_process(gunicorn):
    return gunicorn(1)


# gthread is the default; gevent is the documented alternative for many sockets per process.
WORKER_CLASSES = pytest.mark.parametrize("worker_class", ["gthread", "gevent"])


def log_end(db_exec):
    return db_exec("SELECT coalesce(max(id), 0) FROM reading_changes")[0][0]


def connect_over_both(server, since, most=40):
    """Connect clients until each of the two processes holds at least two of them."""
    sockets = []
    while len(sockets) < most:
        sockets += [websocket.create_connection(ws_url(server, since)) for _ in range(4)]
        counts = server.clients_per_process(2, len(sockets))
        if min(counts.values()) >= 2:
            return sockets, counts
    raise AssertionError(f"{most} clients all went to one process: {counts}")


@WORKER_CLASSES
def test_clients_on_both_processes_get_every_change_once_and_in_order(
        gunicorn, worker_class, db_exec, celery_worker):
    server = gunicorn(2, "-k", worker_class)
    since = log_end(db_exec)
    sockets, _ = connect_over_both(server, since)
    # The worker writes a reading a second (commit, then publish); a person writes with sqlite3.
    for i in range(10):
        insert(db_exec, 20.0 + i, sensor="by-hand")
    wait_until(lambda: db_exec("SELECT count(*) FROM reading_changes WHERE id > ? AND sensor_id = ?",
                               (since, "sensor-1"))[0][0] >= 2, timeout=60, what="the worker's samples")
    last = log_end(db_exec)
    for ws in sockets:
        changes = read_changes(ws, last, timeout=20)
        got = [c["id"] for c in changes]
        expected = [row[0] for row in db_exec(
            "SELECT id FROM reading_changes WHERE id > ? AND id <= ? ORDER BY id", (since, got[-1]))]
        assert got == expected
        assert {c["reading"]["sensor_id"] for c in changes} == {"sensor-1", "by-hand"}


def follow(server, ws, since, until):
    """Frames after `since` up to `until`, reconnecting to the same address (any process) with the
    last id seen whenever the socket ends. Returns (changes, reconnects)."""
    changes, last, reconnects = [], since, 0
    while last < until:
        ws.settimeout(20)
        try:
            text = ws.recv()
        except (websocket.WebSocketConnectionClosedException, ConnectionError):
            text = None
        if not text:  # closed: by a dying process, or a close frame
            ws = websocket.create_connection(ws_url(server, last))
            reconnects += 1
            continue
        frame = json.loads(text)
        assert frame["prev"] == last, "a frame that does not follow the one before"
        changes += frame["changes"]
        last = frame["last"]
    ws.close()
    return changes, reconnects


def test_clients_of_a_killed_process_reconnect_and_replay_without_loss(two_processes, db_exec):
    since = log_end(db_exec)
    sockets, counts = connect_over_both(two_processes, since)
    first = insert(db_exec, 20.0)
    for ws in sockets:
        assert [c["id"] for c in read_changes(ws, first, timeout=20)] == [first]

    victim = next(iter(counts))
    os.kill(victim, signal.SIGKILL)
    missed = [insert(db_exec, 21.0 + i) for i in range(5)]  # while its clients are cut off
    reconnects = 0
    for ws in sockets:
        changes, again = follow(two_processes, ws, first, missed[-1])
        assert [c["id"] for c in changes] == missed
        reconnects += again
    assert reconnects == counts[victim]  # exactly the killed process's clients
    # gunicorn replaced the process: two answer again, and the killed one is not among them.
    assert victim not in two_processes.clients_per_process(2, 0)


@WORKER_CLASSES
def test_a_stopping_process_closes_its_sockets_instead_of_waiting(gunicorn, worker_class, db_exec):
    server = gunicorn(1, "-k", worker_class)
    ws = websocket.create_connection(ws_url(server, 0))
    read_changes(ws, insert(db_exec, 20.0))
    server.proc.send_signal(signal.SIGTERM)  # what a deploy or `make run`'s Ctrl-C sends
    ws.settimeout(30)
    opcode, _ = ws.recv_data(control_frame=True)
    while opcode == websocket.ABNF.OPCODE_TEXT:  # a heartbeat may come first
        opcode, _ = ws.recv_data(control_frame=True)
    # A close frame from the server, not a connection cut when the process is killed.
    assert opcode == websocket.ABNF.OPCODE_CLOSE
    assert server.proc.wait(timeout=60) == 0
    assert "SIGKILL" not in server.output() and "Traceback" not in server.output()


def test_healthz_says_redis_down_is_degraded_and_only_a_lost_database_is_503(
        one_process, db_exec, redis_server, live_env):
    status, report = one_process.health()
    assert status == 200
    assert report["status"] == "ok" and report["database"] == "ok" and report["redis"] == "ok"
    assert report["newest_reading_age_s"] is None  # no readings yet
    assert report["subscribed"] is True and isinstance(report["pid"], int)
    db_exec("INSERT INTO readings (sensor_id, temperature_c) VALUES ('sensor-1', 20.5)")
    assert 0 <= one_process.health()[1]["newest_reading_age_s"] < 3600

    redis_server.stop()
    try:
        status, report = one_process.health()
        assert status == 200
        assert report["status"] == "degraded" and report["redis"] == "down"
        assert report["database"] == "ok"
    finally:
        redis_server.start()
    wait_until(lambda: one_process.health()[1]["status"] == "ok", timeout=30, what="Redis back")

    path = live_env["DATABASE_URL"].removeprefix("sqlite:///")
    os.rename(path, path + ".away")
    os.mkdir(path)  # the database's path no longer leads to a database
    try:
        status, report = one_process.health()
        assert status == 503
        assert report["status"] == "down" and report["database"] == "down"
        assert "Traceback" not in json.dumps(report)
    finally:
        os.rmdir(path)
        os.rename(path + ".away", path)
    assert one_process.health()[0] == 200
    log = one_process.output()
    assert "health: degraded" in log and "health: down" in log  # one line per change of state


def test_flags_on_the_command_line_win_over_the_environment(gunicorn):
    server = gunicorn(1, "-w", "2")  # WEB_PROCESSES=1
    assert len(server.clients_per_process(2, 0)) == 2


def get(url):
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.status


@pytest.mark.parametrize("log_requests", ["", "1"])
def test_gunicorn_logs_no_line_per_request_unless_asked(gunicorn, log_requests):
    server = gunicorn(1, LOG_REQUESTS=log_requests)
    assert get(f"{server.url}/") == 200
    assert get(f"{server.url}/_favicon.ico?v=1") == 200
    server.stop()
    log = server.output()
    assert ("GET /_favicon.ico" in log) is bool(log_requests)
    assert "development server" not in log
    assert "Traceback" not in log


def test_the_development_server_logs_no_line_per_request(web_server):
    assert get(f"{web_server.url}/") == 200
    assert get(f"{web_server.url}/healthz") == 200
    assert "GET /healthz" not in web_server.output()
