"""The alert rules (pure) and their bookkeeping in a real database (readings/alerts.py)."""
import json
import math
from datetime import datetime, timedelta, timezone

import pytest
import redis
from conftest import wait_until
from sqlalchemy import text

from readings import alerts
from readings.models import db
from readings.sampling import write_sample

T0 = datetime(2026, 11, 29, 12, 0, tzinfo=timezone.utc)
AFTER_S = 25.0


@pytest.mark.parametrize("value, band, kind", [
    (20.0, (18.0, 25.0), None),
    (25.0, (18.0, 25.0), None),  # on the limit is inside
    (25.1, (18.0, 25.0), "high"),
    (17.9, (18.0, 25.0), "low"),
    (99.0, (None, None), None),
    (-40.0, (None, 30.0), None),
    (-40.0, (-10.0, None), "low"),
    (float("nan"), (18.0, 25.0), None),
    ("31", (18.0, 25.0), None),  # an old row that is no number is shown as invalid, not alerted
])
def test_band_kind(value, band, kind):
    assert alerts.band_kind(value, *band) == kind


def test_stale_only_after_the_limit_and_never_for_a_sensor_never_seen():
    assert not alerts.is_stale(T0, T0 + timedelta(seconds=AFTER_S), AFTER_S)
    assert alerts.is_stale(T0, T0 + timedelta(seconds=AFTER_S + 0.1), AFTER_S)
    assert not alerts.is_stale(None, T0, AFTER_S)
    assert alerts.stale_after_s(10) == 25.0


@pytest.mark.parametrize("low, high, message", [
    (25, 18, "must be below the high limit"),
    (20, 20, "must be below the high limit"),
    (math.nan, None, "low limit: not finite: nan"),
    (None, math.inf, "high limit: not finite: inf"),
    (None, 151, r"high limit: 151.0 C is outside -50..150 C"),
    ("warm", None, "low limit: not a number: 'warm'"),
    (True, None, "low limit: not a number: True"),
])
def test_a_bad_band_is_refused_with_a_message_and_the_stored_one_is_kept(db_app, low, high, message):
    alerts.set_threshold("sensor-1", 18, 25)
    with pytest.raises(alerts.ThresholdError, match=message):
        alerts.set_threshold("sensor-1", low, high)
    assert alerts.get_threshold("sensor-1") == (18.0, 25.0)


def test_thresholds_are_stored_changed_and_removed(db_app):
    assert alerts.get_threshold("lab") == (None, None)
    assert alerts.set_threshold("lab", "18.5", None) == (18.5, None)
    alerts.set_threshold("office", None, 30)
    assert alerts.thresholds() == {"lab": (18.5, None), "office": (None, 30.0)}
    alerts.set_threshold("lab", None, None)
    assert alerts.thresholds() == {"office": (None, 30.0)}
    with pytest.raises(alerts.ThresholdError, match="sensor id"):
        alerts.set_threshold(" ", 1, 2)


def test_the_database_refuses_an_inverted_band_written_by_hand(db_app):
    with pytest.raises(Exception, match="CHECK constraint failed"):
        db.session.execute(text("INSERT INTO sensor_thresholds VALUES ('x', 30, 20, '2026-01-01')"))
    db.session.rollback()


def _reading(value, at):
    write_sample("sensor-1", value, at)


def _log():
    return [(a["kind"], a["started_at"], a["ended_at"]) for a in alerts.snapshot()["log"]][::-1]


def test_a_high_reading_starts_one_alert_and_a_reading_inside_ends_it(db_app):
    alerts.set_threshold("sensor-1", 18, 25)
    _reading(26.5, T0)
    [started] = alerts.evaluate_sensor("sensor-1", T0, AFTER_S)
    assert started["event"] == "started"
    assert started["alert"] | {"id": None} == {
        "id": None, "sensor_id": "sensor-1", "kind": "high", "started_at": "2026-11-29T12:00:00.000Z",
        "ended_at": None, "value": 26.5, "details": "26.5 C is above the high limit 25 C"}
    # The same state again (a retry, a redelivery, another reading still too high): no new alert.
    assert alerts.evaluate_sensor("sensor-1", T0, AFTER_S) == []
    _reading(27.0, T0 + timedelta(seconds=10))
    assert alerts.evaluate_sensor("sensor-1", T0, AFTER_S) == []
    _reading(24.0, T0 + timedelta(seconds=20))
    [ended] = alerts.evaluate_sensor("sensor-1", T0 + timedelta(seconds=20), AFTER_S)
    assert ended["event"] == "ended" and ended["alert"]["id"] == started["alert"]["id"]
    assert ended["alert"]["ended_at"] == "2026-11-29T12:00:20.000Z"
    assert alerts.evaluate_sensor("sensor-1", T0, AFTER_S) == []
    assert _log() == [("high", "2026-11-29T12:00:00.000Z", "2026-11-29T12:00:20.000Z")]


def test_high_to_low_ends_one_and_starts_the_other(db_app):
    alerts.set_threshold("sensor-1", 18, 25)
    _reading(30.0, T0)
    alerts.evaluate_sensor("sensor-1", T0, AFTER_S)
    _reading(10.0, T0 + timedelta(seconds=10))
    events = alerts.evaluate_sensor("sensor-1", T0, AFTER_S)
    assert sorted((e["event"], e["alert"]["kind"]) for e in events) == [
        ("ended", "high"), ("started", "low")]
    assert [a["kind"] for a in alerts.snapshot()["open"]] == ["low"]


def test_removing_the_band_ends_its_alert_on_the_next_reading(db_app):
    alerts.set_threshold("sensor-1", None, 20)
    _reading(21.0, T0)
    alerts.evaluate_sensor("sensor-1", T0, AFTER_S)
    alerts.set_threshold("sensor-1", None, None)
    _reading(21.0, T0 + timedelta(seconds=10))
    assert [e["event"] for e in alerts.evaluate_sensor("sensor-1", T0, AFTER_S)] == ["ended"]


def test_a_second_open_alert_of_a_kind_is_refused_by_the_database(db_app):
    alerts.set_threshold("sensor-1", None, 20)
    _reading(21.0, T0)
    alerts.evaluate_sensor("sensor-1", T0, AFTER_S)
    with pytest.raises(Exception, match="UNIQUE constraint failed"):
        db.session.execute(text("INSERT INTO alerts (sensor_id, kind, started_at) "
                                "VALUES ('sensor-1', 'high', '2026-11-29 12:00:05')"))
    db.session.rollback()
    # Evaluating again while it is open announces nothing and raises nothing.
    assert alerts.reconcile("sensor-1", {"high": (T0, 21.0, "x")}, T0) == []


def test_stale_starts_on_the_beat_and_a_fresh_reading_ends_it(db_app):
    _reading(21.0, T0)
    assert alerts.evaluate_all(["sensor-1", "never-seen"], T0 + timedelta(seconds=AFTER_S), AFTER_S) == []
    late = T0 + timedelta(seconds=AFTER_S + 1)
    [started] = alerts.evaluate_all(["sensor-1", "never-seen"], late, AFTER_S)
    assert started["alert"]["kind"] == "stale" and started["alert"]["value"] is None
    assert started["alert"]["started_at"] == "2026-11-29T12:00:26.000Z"  # when it was noticed
    assert "no reading for more than 25 s (last at 2026-11-29T12:00:00.000Z)" == started["alert"]["details"]
    assert alerts.evaluate_all(["sensor-1"], late + timedelta(seconds=60), AFTER_S) == []
    fresh = late + timedelta(seconds=61)
    _reading(21.0, fresh)
    [ended] = alerts.evaluate_sensor("sensor-1", fresh, AFTER_S)
    assert ended["event"] == "ended" and ended["alert"]["kind"] == "stale"
    assert alerts.evaluate_all(["sensor-1"], fresh, AFTER_S) == []


def test_a_fresh_reading_written_by_hand_ends_stale_on_the_beat(db_app):
    _reading(21.0, T0)
    late = T0 + timedelta(seconds=AFTER_S + 1)
    alerts.evaluate_all(["sensor-1"], late, AFTER_S)
    _reading(21.0, late)
    assert [e["event"] for e in alerts.evaluate_all(["sensor-1"], late, AFTER_S)] == ["ended"]


def test_the_beat_judges_readings_written_by_others_and_watches_only_configured_sensors(db_app):
    alerts.set_threshold("api-sensor", None, 20)
    write_sample("api-sensor", 22.0, T0)  # as the ingest API or a person with sqlite3 would
    events = alerts.evaluate_all(["sensor-1"], T0 + timedelta(hours=1), AFTER_S)
    assert [(e["event"], e["alert"]["sensor_id"], e["alert"]["kind"]) for e in events] == [
        ("started", "api-sensor", "high")]  # an hour old, but not configured: not stale
    assert alerts.evaluate_all(["sensor-1"], T0 + timedelta(hours=2), AFTER_S) == []


def test_snapshot_lists_open_alerts_and_the_newest_log_entries(db_app):
    alerts.set_threshold("sensor-1", 18, 25)
    for i, value in enumerate([30, 20, 30, 20, 10]):
        _reading(value, T0 + timedelta(seconds=i))
        alerts.evaluate_sensor("sensor-1", T0, AFTER_S)
    snap = alerts.snapshot(limit=2)
    assert [a["kind"] for a in snap["open"]] == ["low"]
    assert [(a["kind"], a["ended_at"] is None) for a in snap["log"]] == [("low", True), ("high", False)]
    json.loads(alerts.encode(snap))


def test_publish_sends_strict_json_on_the_alerts_channel(db_app, redis_server):
    client = redis.Redis.from_url(redis_server.url)
    pubsub = client.pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe(alerts.CHANNEL)
    event = {"event": "started", "alert": {"id": 1, "value": 30.5}}
    wait_until(lambda: client.pubsub_numsub(alerts.CHANNEL)[0][1] == 1, what="the subscription")
    alerts.publish(client, [event])
    message = pubsub.get_message(timeout=5) or pubsub.get_message(timeout=5)
    assert json.loads(message["data"]) == event
    with pytest.raises(ValueError):
        alerts.publish(client, [{"event": "started", "alert": {"value": math.nan}}])
