"""Rows no one can read, written with the sqlite3 module as anyone may (issue 7, item 1).

Each one must reach clients as an invalid reading, in valid JSON, and never stop the feed: the
next good row still reaches a live WebSocket client, a client replaying from 0 and the page.
"""
import json
import math
import time
from datetime import datetime, timezone

import pytest
import websocket

from readings.feed import encode, reading_dict, time_order
from readings.figures import live_figure
from tests.conftest import wait_until
from tests.test_monitor_page import LATEST, card, insert_now, open_monitor, table_rows

NOW = datetime(2026, 11, 29, 12, 0, 0, 250000, tzinfo=timezone.utc)


# ---- the one reader of raw column values, on every poison type ----

@pytest.mark.parametrize("sensor_id, taken_at, temperature_c, shown, reason", [
    (b"alpha", NOW, 20.0, {"sensor_id": "alpha"}, "sensor_id is not non-empty text"),
    (b"\xff\xfe", NOW, 20.0, {"sensor_id": "\ufffd\ufffd"}, "sensor_id is not non-empty text"),
    ("", NOW, 20.0, {"sensor_id": ""}, "sensor_id is not non-empty text"),
    ("s", NOW, math.inf, {"temperature_c": None}, "temperature_c is not a finite number"),
    ("s", NOW, -math.inf, {"temperature_c": None}, "temperature_c is not a finite number"),
    ("s", NOW, math.nan, {"temperature_c": None}, "temperature_c is not a finite number"),
    ("s", NOW, "abc", {"temperature_c": None}, "temperature_c is not a finite number"),
    ("s", NOW, b"\x00", {"temperature_c": None}, "temperature_c is not a finite number"),
    ("s", NOW, True, {"temperature_c": None}, "temperature_c is not a finite number"),
    ("s", "garbage", 20.0, {"taken_at": None}, "taken_at is not a readable time"),
    ("s", "", 20.0, {"taken_at": None}, "taken_at is not a readable time"),
    ("s", 2461000.5, 20.0, {"taken_at": None}, "taken_at is not a readable time"),
    ("s", b"2026-11-29", 20.0, {"taken_at": None}, "taken_at is not a readable time"),
])
def test_an_unreadable_value_makes_an_invalid_json_safe_reading(
        sensor_id, taken_at, temperature_c, shown, reason):
    reading = reading_dict(7, sensor_id, taken_at, temperature_c)
    assert reading["valid"] is False and reading["reason"] == reason
    assert {k: reading[k] for k in shown} == shown
    assert json.loads(encode(reading)) == reading  # strict JSON: no NaN, no Infinity, no bytes


def test_every_problem_is_named():
    reading = reading_dict(7, b"x", "", "abc")
    assert reading["reason"] == ("sensor_id is not non-empty text; taken_at is not a readable "
                                 "time; temperature_c is not a finite number")


@pytest.mark.parametrize("taken_at", [NOW, "2026-11-29 12:00:00.250", "2026-11-29 12:00:00.250000"])
def test_a_good_row_is_valid(taken_at):
    assert reading_dict(7, "s", taken_at, 21) == {
        "id": 7, "sensor_id": "s", "taken_at": "2026-11-29T12:00:00.250Z",
        "temperature_c": 21.0, "valid": True}


def test_encode_refuses_what_is_not_json():
    with pytest.raises(ValueError):
        encode({"temperature_c": math.inf})


def test_readings_without_a_time_sort_first_and_stay_off_the_chart():
    good = reading_dict(2, "s", NOW, 20.0)
    bad = reading_dict(1, "s", "garbage", 20.0)
    assert sorted([good, bad], key=time_order) == [bad, good]
    assert list(live_figure({"s": [bad, good]}, {"s": "#0d6efd"}).data[0].customdata) == [2]


# ---- against a real web server, relay and browser ----

POISON = {  # (sensor_id, taken_at, temperature_c) as SQL, and whether the page's table lists it
    "blob sensor_id": ("X'616c706861'", "CURRENT_TIMESTAMP", "20", False),
    "infinite temperature": ("'sensor-1'", "CURRENT_TIMESTAMP", "1e999", True),
    "minus infinite temperature": ("'sensor-1'", "CURRENT_TIMESTAMP", "-1e999", True),
    "text temperature": ("'sensor-1'", "CURRENT_TIMESTAMP", "'abc'", True),
    "garbage taken_at": ("'sensor-1'", "'garbage'", "20", True),
    "empty taken_at": ("'sensor-1'", "''", "20", True),
}


def write_poison(db_exec, kind):
    """As a database made before the guards, or a writer that went around them, would hold it."""
    db_exec("DROP TRIGGER IF EXISTS readings_guard_insert")
    db_exec("DROP TRIGGER IF EXISTS readings_guard_update")
    sensor_id, taken_at, temperature_c, _ = POISON[kind]
    # RETURNING, not max(id) afterwards: a worker sampling beside the test may insert in between.
    return db_exec("INSERT INTO readings (sensor_id, taken_at, temperature_c) "  # literals only
                   f"VALUES ({sensor_id}, {taken_at}, {temperature_c}) RETURNING id")[0][0]


def reject_constant(name):
    raise AssertionError(f"{name} is not JSON")


def changes_until(ws, reading_id, timeout=15.0):
    """Changes from strict-JSON frames until one names reading_id."""
    changes, deadline = [], time.monotonic() + timeout
    ws.settimeout(timeout)
    while time.monotonic() < deadline:
        frame = json.loads(ws.recv(), parse_constant=reject_constant)
        changes += frame["changes"]
        if any(c["reading"]["id"] == reading_id for c in frame["changes"]):
            return changes
    raise AssertionError(f"reading {reading_id} never arrived; got {changes}")


def ws_url(web_server, query=""):
    return web_server.url.replace("http://", "ws://") + "/ws/readings" + query


def severe_logs(dash_duo):
    return [e for e in dash_duo.driver.get_log("browser") if e["level"] == "SEVERE"]


@pytest.mark.parametrize("kind", list(POISON))
def test_a_poison_row_does_not_stop_the_feed(kind, dash_duo, web_server, db_exec):
    insert_now(db_exec, 19.0, seconds_ago=3)
    live = websocket.create_connection(ws_url(web_server))
    open_monitor(dash_duo, web_server.url)
    dash_duo.wait_for_text_to_equal(LATEST, "19.0 °C")

    poison = write_poison(db_exec, kind)
    good = insert_now(db_exec, 21.5)

    received = changes_until(live, good)
    bad = next(c["reading"] for c in received if c["reading"]["id"] == poison)
    assert bad["valid"] is False and bad["reason"]
    replayed = changes_until(websocket.create_connection(ws_url(web_server, "?since=0")), good)
    assert [c["reading"]["id"] for c in replayed][-2:] == [poison, good]

    dash_duo.wait_for_text_to_equal(LATEST, "21.5 °C", timeout=15)
    listed = POISON[kind][3]
    if listed:
        wait_until(lambda: table_rows(dash_duo)[poison][1].startswith("invalid: "), timeout=10,
                   what="the poison row listed as invalid")
    # A new page starts from a snapshot that holds the poison row.
    dash_duo.driver.refresh()
    open_monitor(dash_duo, web_server.url)
    dash_duo.wait_for_text_to_equal(LATEST, "21.5 °C", timeout=15)
    dash_duo.wait_for_contains_text(card(part="monitor-range"), "· 2 readings", timeout=15)
    assert (poison in table_rows(dash_duo)) is listed

    db_exec("DELETE FROM readings WHERE id = ?", (poison,))
    wait_until(lambda: poison not in table_rows(dash_duo), timeout=10, what="the row deleted")
    after = insert_now(db_exec, 22.5)
    assert changes_until(live, after)[-1]["reading"]["temperature_c"] == 22.5
    dash_duo.wait_for_text_to_equal(LATEST, "22.5 °C", timeout=15)
    assert severe_logs(dash_duo) == []


def test_the_worker_keeps_sampling_and_publishing_past_every_poison_row(
        web_server, celery_worker, db_exec):
    # From the log's newest change, as a page connects: without `since` the socket starts from
    # whatever is newest when its thread gets to it, which may already be the first poison row.
    since = db_exec("SELECT coalesce(max(seq), 0) FROM reading_changes")[0][0]
    live = websocket.create_connection(ws_url(web_server, f"?since={since}"))
    poison = {write_poison(db_exec, kind) for kind in POISON}
    highest = max(poison)
    # The worker's own relay publishes the poison rows along with its next readings.
    wait_until(lambda: db_exec("SELECT count(*) FROM readings WHERE id > ?", (highest,))[0][0] >= 3,
               timeout=30, what="three worker readings after the poison rows")
    newest = db_exec("SELECT max(id) FROM readings")[0][0]
    received = changes_until(live, newest)
    readings = {c["reading"]["id"]: c["reading"] for c in received}
    assert poison <= set(readings) and not any(readings[i]["valid"] for i in poison)
    assert readings[newest]["valid"] and readings[newest]["sensor_id"] == "sensor-1"
    assert "raised unexpected" not in celery_worker.output()
