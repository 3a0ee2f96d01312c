"""A real `celery -A tasks worker -B` against a real Redis and SQLite (or PostgreSQL, marked)."""
import json
import sqlite3
import time

import pytest
import redis
from conftest import both_databases, wait_until

from readings.feed import CHANNEL


@both_databases
def test_beat_driven_reading_lands_in_the_database_and_on_the_channel(
        live_env, redis_server, request, db_exec):
    pubsub = redis.Redis.from_url(redis_server.url).pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe(CHANNEL)
    request.getfixturevalue("celery_worker")
    message = None
    deadline = time.monotonic() + 20
    while message is None and time.monotonic() < deadline:
        message = pubsub.get_message(timeout=0.5)
    assert message, "no reading was published within 20 s"
    change = json.loads(message["data"])
    assert change["op"] == "INSERT" and change["reading"]["sensor_id"] == "sensor-1"
    row = db_exec("SELECT sensor_id, temperature_c FROM readings WHERE id = ?",
                  (change["reading"]["id"],))
    assert row == [("sensor-1", change["reading"]["temperature_c"])]
    assert 10 < row[0][1] < 35


@pytest.fixture
def flaky_sensor(http_device):
    """A device that answers with a scripted sequence of replies, then with 21.5 for ever."""
    replies = [b"NaN", b"500", b"hot", b'{"temperature_c": 21.5}']
    return http_device(lambda path: (200, replies.pop(0) if len(replies) > 1 else replies[0])) + "/"


@both_databases
def test_bad_values_are_logged_and_not_written(live_env, flaky_sensor, request, db_exec):
    live_env["SENSOR_URL"] = flaky_sensor
    worker = request.getfixturevalue("celery_worker")
    wait_until(lambda: db_exec("SELECT count(*) FROM readings")[0][0] >= 2, timeout=20,
               what="good readings after the bad ones")
    assert {v for (v,) in db_exec("SELECT temperature_c FROM readings")} == {21.5}
    log = worker.output()
    assert "not finite" in log and "outside -50..150" in log and "neither a number nor JSON" in log


@both_databases
def test_unreachable_sensor_is_logged_and_the_worker_carries_on(live_env, request, db_exec):
    live_env["SENSOR_URL"] = "http://127.0.0.1:9/"
    worker = request.getfixturevalue("celery_worker")
    wait_until(lambda: worker.output().count("unreachable") >= 2, timeout=20,
               what="two failed periods")
    assert db_exec("SELECT count(*) FROM readings") == [(0,)]


def test_database_errors_retry_and_store_the_reading_taken(live_env, request, db_exec):
    worker = request.getfixturevalue("celery_worker")
    wait_until(lambda: db_exec("SELECT count(*) FROM readings")[0][0] >= 1, timeout=20,
               what="a first reading")
    path = live_env["DATABASE_URL"].removeprefix("sqlite:///")
    locker = sqlite3.connect(path, isolation_level=None)
    locker.execute("BEGIN EXCLUSIVE")  # a person holding a write lock longer than the busy timeout
    locked_at = time.time()
    wait_until(lambda: "database error, retry" in worker.output(), timeout=20, what="a retry")
    locker.execute("ROLLBACK")
    locker.close()
    wait_until(lambda: db_exec(
        "SELECT count(*) FROM readings WHERE taken_at < datetime(?, 'unixepoch', '+1 second')",
        (locked_at + 1,))[0][0] >= 2, timeout=30, what="the delayed reading to be stored")
    ids = [i for (i,) in db_exec("SELECT id FROM readings ORDER BY id")]
    assert ids == list(range(1, len(ids) + 1))


def test_a_poison_row_in_the_log_does_not_fail_the_sampling_task(live_env, request, db_exec):
    worker = request.getfixturevalue("celery_worker")
    wait_until(lambda: db_exec("SELECT count(*) FROM readings")[0][0] >= 1, timeout=30,
               what="a first reading")
    for trigger in ("readings_guard_insert", "readings_guard_update"):  # an old writer's table
        db_exec(f"DROP TRIGGER IF EXISTS {trigger}")
    db_exec("INSERT INTO readings (sensor_id, temperature_c) VALUES (X'616c706861', 20.0)")
    newest = db_exec("SELECT max(id) FROM readings")[0][0]
    wait_until(lambda: db_exec("SELECT count(*) FROM readings WHERE id > ?", (newest,))[0][0] >= 2,
               timeout=30, what="two more readings")
    assert "raised unexpected" not in worker.output()
