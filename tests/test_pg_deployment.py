"""The production shape on one machine (issue 9, item 5): PostgreSQL, Redis, two gunicorn
processes, two Celery workers and one beat, all real processes. Clients spread over both web
processes get every change once and in order: psql writes, the interleaved commits of
test_pg_order, the beat's samples, and a web process killed under its clients."""
import os
import signal
import time
from contextlib import closing

import pytest
from conftest import PYTHON, Service, newest_change, wait_until
from test_pg_order import INSERT, open_transaction, readings_of
from test_serving import Gunicorn, connect_over_both, follow

pytestmark = [pytest.mark.usefixtures("database"), pytest.mark.parametrize("database", ["postgresql"])]
BY_HAND = INSERT.replace("%s", "?")


def celery(live_env, tmp_path, name, *args):
    log_path = tmp_path / f"{name}.log"
    return Service([PYTHON, "-m", "celery", "-A", "tasks", *args, "--loglevel", "INFO"], live_env,
                   log_path, ready=lambda: "ready." in log_path.read_text()
                   or "beat: Starting" in log_path.read_text())


@pytest.fixture
def deployment(live_env, tmp_path, own_broker):
    web = Gunicorn(live_env, tmp_path / "web.log", processes=2)
    services = [
        web,
        celery(live_env, tmp_path, "worker-1", "worker", "-n", "one@%h", "--concurrency", "1"),
        celery(live_env, tmp_path, "worker-2", "worker", "-n", "two@%h", "--concurrency", "1"),
        celery(live_env, tmp_path, "beat", "beat", "--schedule", str(tmp_path / "schedule")),
    ]
    started = []
    try:
        for service in services:
            started.append(service.start())
        yield web
    finally:
        for service in started:
            service.stop()


def samples_after(db_exec, seq):
    return db_exec("SELECT count(*) FROM reading_changes WHERE seq > ? AND sensor_id = 'sensor-1'",
                   (seq,))[0][0]


def test_every_client_of_both_processes_gets_every_change_once_in_order(deployment, db_exec,
                                                                        live_env):
    since = newest_change(db_exec) if db_exec("SELECT count(*) FROM reading_changes")[0][0] else 0
    sockets, counts = connect_over_both(deployment, since)
    for value in (20.0, 21.0, 22.0):  # psql writes
        db_exec(BY_HAND, (value,))
    with closing(open_transaction(live_env, 30.0)) as t1:  # takes the lower id...
        db_exec(BY_HAND, (31.0,))  # ...this one commits first
        time.sleep(1.5)
        t1.commit()
    wait_until(lambda: samples_after(db_exec, since) >= 3, timeout=60, what="the beat's samples")

    victim = next(iter(counts))
    os.kill(victim, signal.SIGKILL)  # its clients are cut off; they reconnect to any process
    killed_at = newest_change(db_exec)
    for value in (40.0, 41.0):
        db_exec(BY_HAND, (value,))
    wait_until(lambda: samples_after(db_exec, killed_at) >= 2, timeout=60,
               what="samples after the kill")
    last = newest_change(db_exec)

    reconnects = 0
    for ws in sockets:
        changes, again = follow(deployment, ws, since, last)
        reconnects += again
        got = [c["id"] for c in changes]
        logged = [seq for (seq,) in db_exec(
            "SELECT seq FROM reading_changes WHERE seq > ? AND seq <= ? ORDER BY seq",
            (since, got[-1]))]
        assert got == logged  # every change, once, in the delivery order
        by_hand = readings_of(c for c in changes if c["reading"]["sensor_id"] == "psql")
        assert by_hand == [20.0, 21.0, 22.0, 31.0, 30.0, 40.0, 41.0]  # T1 after T2: commit order
    assert reconnects >= counts[victim]

    # The beat's readings land once: each has its own (sensor, slot) key.
    readings, slots = db_exec(
        "SELECT (SELECT count(*) FROM readings WHERE sensor_id = 'sensor-1'), "
        "(SELECT count(*) FROM sample_slots WHERE sensor_id = 'sensor-1')")[0]
    assert readings == slots >= 5
