"""Retention (readings/retention.py) on a real SQLite database, rows written as a person would."""
import json
import sqlite3
from datetime import datetime, timedelta, timezone

import pytest
import redis
from celery import Celery
from conftest import wait_until

from readings import retention
from readings.feed import CHANNEL, changes_since

NOW = datetime(2026, 11, 29, 12, 0, tzinfo=timezone.utc)


@pytest.fixture
def sql(db_app, tmp_path):
    def run(statement, params=()):
        with sqlite3.connect(tmp_path / "unit.db", timeout=5, isolation_level=None) as connection:
            return connection.execute(statement, params).fetchall()
    return run


def _stamp(moment):
    return moment.strftime("%Y-%m-%d %H:%M:%S")


def _fill(sql, days_ago):
    for days in days_ago:
        sql("INSERT INTO readings (sensor_id, taken_at, temperature_c) VALUES ('sensor-1', ?, 20.0)",
            (_stamp(NOW - timedelta(days=days)),))


@pytest.mark.parametrize("text, days", [(None, 90), ("", 90), ("7", 7), ("0.5", 0.5)])
def test_retention_days(text, days):
    assert retention.retention_days({} if text is None else {"RETENTION_DAYS": text}) == days


@pytest.mark.parametrize("text", ["0", "-3", "ninety", "nan", "inf"])
def test_bad_retention_days_are_refused_with_a_message(text):
    with pytest.raises(ValueError, match="RETENTION_DAYS must be a"):
        retention.retention_days({"RETENTION_DAYS": text})


def test_old_rows_go_recent_rows_stay_and_no_client_sees_a_delete(sql):
    _fill(sql, [200, 120, 91, 89, 1, 0])
    sql("INSERT INTO sample_slots VALUES ('sensor-1', 1, 1), ('sensor-1', 5, 5)")
    sql("INSERT INTO alerts (sensor_id, kind, started_at, ended_at) VALUES "
        "('sensor-1', 'high', '2026-01-01 00:00:00', '2026-01-01 01:00:00'), "  # closed, old
        "('sensor-1', 'low', '2026-01-01 00:00:00', NULL), "                   # still open
        "('sensor-1', 'stale', '2026-11-28 00:00:00', '2026-11-28 01:00:00')")  # closed, recent
    changes_before = sql("SELECT max(id) FROM reading_changes")[0][0]

    counts = retention.prune(NOW, 90, batch=2)  # several batches

    assert counts == {"readings": 3, "changes": 3, "alerts": 1}
    assert [d for (d,) in sql("SELECT taken_at FROM readings ORDER BY id")] == [
        _stamp(NOW - timedelta(days=d)) for d in (89, 1, 0)]
    assert sql("SELECT count(*) FROM reading_changes WHERE op = 'DELETE'") == [(0,)]
    assert sql("SELECT reading_id FROM reading_changes ORDER BY id") == [(4,), (5,), (6,)]
    assert sql("SELECT slot FROM sample_slots") == [(5,)]
    assert sql("SELECT kind FROM alerts ORDER BY id") == [("low",), ("stale",)]
    assert retention.pruned_through() == 3
    # What a client reconnecting after the last change before pruning is sent: nothing at all.
    assert changes_since(changes_before) == []
    assert retention.prune(NOW, 90) == {"readings": 0, "changes": 0, "alerts": 0}


def test_a_client_behind_the_pruned_ids_must_resync(sql):
    _fill(sql, [120, 100, 1])
    retention.prune(NOW, 90)
    through = retention.pruned_through()
    assert through == 2
    assert retention.needs_resync(0, through) and retention.needs_resync(1, through)
    assert not retention.needs_resync(2, through) and not retention.needs_resync(3, through)


def test_the_change_log_is_pruned_as_a_prefix(sql):
    _fill(sql, [120, 1])
    sql("UPDATE readings SET temperature_c = 21 WHERE id = 1")  # news about an old reading
    _fill(sql, [100])
    retention.prune(NOW, 90)
    # Only entries before the first one about a recent reading go: the log keeps no hole.
    assert sql("SELECT id, op, reading_id FROM reading_changes ORDER BY id") == [
        (2, "INSERT", 2), (3, "UPDATE", 1), (4, "INSERT", 3)]
    assert retention.pruned_through() == 1
    assert sql("SELECT id FROM readings ORDER BY id") == [(2,)]


def test_a_hand_written_delete_of_an_old_reading_stays_in_the_log(sql):
    _fill(sql, [120, 1])
    sql("DELETE FROM readings WHERE id = 1")
    retention.prune(NOW, 90)
    assert sql("SELECT op, reading_id FROM reading_changes ORDER BY id") == [
        ("INSERT", 2), ("DELETE", 1)]


def test_the_worker_prunes_on_its_task_and_clients_see_no_delete(
        live_env, redis_server, request, db_exec):
    worker = request.getfixturevalue("celery_worker")
    wait_until(lambda: db_exec("SELECT count(*) FROM readings")[0][0] >= 1, timeout=30,
               what="a first reading")
    for days in (400, 120, 91):
        db_exec("INSERT INTO readings (sensor_id, taken_at, temperature_c) "
                "VALUES ('old', datetime('now', ?), 20.0)", (f"-{days} days",))
    pubsub = redis.Redis.from_url(redis_server.url).pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe(CHANNEL)
    Celery(broker=live_env["REDIS_URL"]).send_task("tasks.retention.prune")  # what beat sends hourly
    wait_until(lambda: "retention (90 days): pruned" in worker.output(), timeout=30,
               what="the prune task")
    assert db_exec("SELECT count(*) FROM readings WHERE sensor_id = 'old'") == [(0,)]
    assert db_exec("SELECT count(*) FROM readings WHERE sensor_id = 'sensor-1'")[0][0] >= 1
    assert db_exec("SELECT count(*) FROM reading_changes WHERE op = 'DELETE'") == [(0,)]
    newest = db_exec("SELECT max(id) FROM reading_changes")[0][0]
    seen = []

    def published_past_the_prune():
        while message := pubsub.get_message(timeout=0.2):
            seen.append(json.loads(message["data"]))
        return any(change["id"] > newest for change in seen)
    # Everything published from before the prune to after it: readings arriving, no DELETE.
    wait_until(published_past_the_prune, timeout=30, what="a reading published after the prune")
    assert {change["op"] for change in seen} == {"INSERT"}
