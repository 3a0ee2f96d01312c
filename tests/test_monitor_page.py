"""The monitor page in headless Chromium against a real web server (and worker) subprocess.

Changes are made the way people make them: the worker's beat, or raw SQL with the sqlite3 module
or psql. The tests of the live path itself (worker, raw SQL, a burst, a restart) run on SQLite and
PostgreSQL (both_databases); those of the page's own logic, the same on either, on SQLite only.
"""
import re
import time
from datetime import datetime, timedelta, timezone

import pytest
import redis

from readings import create_db_app
from readings.feed import Relay, last_change_id
from readings.store import write_reading
from tests.conftest import both_databases, wait_until


@pytest.fixture
def live_env(live_env):
    # Some tests here see sockets open and close through the server's line per request.
    return dict(live_env, LOG_REQUESTS="1")


def status(dash_duo):
    """The badge's word (live, stale, reconnecting, offline), without the stale sensors' names."""
    return re.match(r"\w*", dash_duo.find_element("#feed-status").text)[0]


def card(sensor="sensor-1", part="monitor-latest"):
    """A CSS selector for a part of a sensor's card (monitor_cards.js): monitor-latest,
    monitor-delta, monitor-age, monitor-taken-at, monitor-stale, monitor-range."""
    return f'.monitor-sensor-card[data-sensor="{sensor}"] .{part}'


LATEST = card()


def wait_for_socket(dash_duo, timeout=15):
    """The socket is up: `live`, or `stale` when no worker is sampling (raw-SQL tests)."""
    wait_until(lambda: status(dash_duo) in ("live", "stale"), timeout=timeout, interval=0.1,
               what="the feed socket to open")


def open_monitor(dash_duo, url):
    dash_duo.server_url = url
    wait_for_socket(dash_duo)
    dash_duo.wait_for_element("#monitor-graph .js-plotly-plot")  # plotly.js loads lazily


def card_text(dash_duo, sensor="sensor-1", part="monitor-latest"):
    """A card part's text (None while it is absent), read in one go in the browser: the cards are
    redrawn on every clock tick, so an element found a moment earlier may already be replaced."""
    return dash_duo.driver.execute_script(
        "const e = document.querySelector(arguments[0]); return e ? e.innerText : null;",
        card(sensor, part))


def latest_text(dash_duo, sensor="sensor-1"):
    return card_text(dash_duo, sensor)


def table_rows(dash_duo):
    """{reading id: (taken_at text, temperature text)} as the table shows them (read in one go:
    the rows are redrawn as changes arrive)."""
    return {reading_id: (taken_at, temperature)
            for reading_id, (taken_at, _, temperature) in table_cells(dash_duo).items()}


def table_cells(dash_duo):
    """{reading id: (taken_at, sensor, temperature)} as the table shows them."""
    cells = dash_duo.driver.execute_script(
        "return Array.from(document.querySelectorAll('#readings-table tbody tr'),"
        " tr => Array.from(tr.cells, td => td.textContent))"
    )
    return {int(reading_id): (taken_at, sensor, temperature)
            for taken_at, sensor, temperature, reading_id in cells}


def chart_ids(dash_duo):
    """The ids of the chart's points, without the gaps' line breaks."""
    return [i for i in dash_duo.driver.execute_script(
        "return Array.from(document.querySelector('#monitor-graph .js-plotly-plot').data[0].customdata)"
    ) if i is not None]


def insert_now(db_exec, temperature_c, sensor="sensor-1", seconds_ago=0):
    """Insert a reading by hand, taken `seconds_ago`, as UTC text both databases read alike
    (SQLite's own timestamp format; PostgreSQL's sessions here are in UTC)."""
    taken_at = datetime.now(timezone.utc) - timedelta(seconds=seconds_ago)
    db_exec("INSERT INTO readings (sensor_id, taken_at, temperature_c) VALUES (?, ?, ?)",
            (sensor, taken_at.strftime("%Y-%m-%d %H:%M:%S.%f"), temperature_c))
    return db_exec("SELECT max(id) FROM readings")[0][0]


def wait_for(check, what, timeout=10):
    wait_until(check, timeout=timeout, interval=0.1, what=what)


@both_databases
def test_reading_written_by_the_worker_appears(dash_duo, web_server, celery_worker, db_exec):
    open_monitor(dash_duo, web_server.url)
    seen_before = db_exec("SELECT coalesce(max(id), 0) FROM readings")[0][0]

    wait_for(lambda: max(table_rows(dash_duo), default=0) > seen_before, "a worker reading")
    newest = max(table_rows(dash_duo))
    (value,) = db_exec("SELECT temperature_c FROM readings WHERE id = ?", (newest,))[0]
    # Another reading may land between the two looks; the page must show one of the newest.
    wait_for(lambda: re.fullmatch(r"-?\d+\.\d °C", latest_text(dash_duo)), "a formatted latest value")
    shown = float(latest_text(dash_duo).split()[0])
    recent = [r[0] for r in db_exec("SELECT temperature_c FROM readings ORDER BY id DESC LIMIT 3")]
    assert any(abs(shown - v) < 0.051 for v in recent), (shown, recent, value)
    # The chart is drawn by its own callback, a moment after the table and the card.
    wait_for(lambda: newest in chart_ids(dash_duo), "the worker reading on the chart")


@both_databases
def test_insert_update_delete_by_raw_sql_appear(dash_duo, web_server, db_exec):
    # Seconds old: the hand-written row below gets CURRENT_TIMESTAMP, whole seconds only.
    earlier = insert_now(db_exec, 19.0, seconds_ago=5)
    open_monitor(dash_duo, web_server.url)
    dash_duo.wait_for_text_to_equal(LATEST, "19.0 °C")

    # Only the three value columns: taken_at comes from the column default.
    db_exec("INSERT INTO readings (sensor_id, temperature_c) VALUES ('sensor-1', 23.44)")
    added = db_exec("SELECT max(id) FROM readings")[0][0]
    dash_duo.wait_for_text_to_equal(LATEST, "23.4 °C", timeout=5)
    wait_for(lambda: table_rows(dash_duo).get(added, (None, None))[1] == "23.4 °C", "inserted row")
    dash_duo.wait_for_contains_text(card(part="monitor-delta"), "+4.4 °C")
    dash_duo.wait_for_text_to_equal(card(part="monitor-range"), "19.0 °C to 23.4 °C · 2 readings")
    assert chart_ids(dash_duo) == [earlier, added]

    db_exec("UPDATE readings SET temperature_c = 24.6 WHERE id = ?", (added,))
    dash_duo.wait_for_text_to_equal(LATEST, "24.6 °C", timeout=5)
    wait_for(lambda: table_rows(dash_duo)[added][1] == "24.6 °C", "updated row")

    db_exec("DELETE FROM readings WHERE id = ?", (added,))
    dash_duo.wait_for_text_to_equal(LATEST, "19.0 °C", timeout=5)
    wait_for(lambda: list(table_rows(dash_duo)) == [earlier], "deleted row gone")
    wait_for(lambda: chart_ids(dash_duo) == [earlier], "deleted point gone")


def test_push_racing_a_users_refresh_is_not_lost(dash_duo, web_server, db_exec):
    insert_now(db_exec, 20.0, seconds_ago=5)
    open_monitor(dash_duo, web_server.url)
    for value, window in ((21.0, "24 h"), (22.0, "15 min"), (23.0, "1 h"), (24.0, "24 h")):
        dash_duo.driver.find_element(
            "xpath", f"//*[@id='monitor-window']//label[text()='{window}']").click()
        insert_now(db_exec, value)  # while the server renders the new window
        dash_duo.wait_for_text_to_equal(LATEST, f"{value:.1f} °C", timeout=4)


def test_empty_page_fills_in_with_the_first_reading(dash_duo, web_server, db_exec):
    open_monitor(dash_duo, web_server.url)
    layout = lambda: dash_duo.driver.execute_script(
        "const l = document.querySelector('#monitor-graph .js-plotly-plot').layout;"
        "return [l.annotations[0].visible, l.xaxis.visible];")
    dash_duo.wait_for_text_to_equal(LATEST, "—")
    wait_for(lambda: layout() == [True, False], "the empty-window note")

    first = insert_now(db_exec, 20.5)
    dash_duo.wait_for_text_to_equal(LATEST, "20.5 °C", timeout=5)
    wait_for(lambda: layout() == [False, True], "the chart to show its axes")
    assert chart_ids(dash_duo) == [first]


def test_unit_toggle_converts_latest_table_and_chart(dash_duo, web_server, db_exec):
    insert_now(db_exec, 20.0)
    open_monitor(dash_duo, web_server.url)
    dash_duo.driver.find_element("xpath", "//*[@id='monitor-unit']//label[text()='°F']").click()
    dash_duo.wait_for_text_to_equal(LATEST, "68.0 °F")
    wait_for(lambda: list(table_rows(dash_duo).values())[0][1] == "68.0 °F", "table in °F")

    insert_now(db_exec, 25.0)  # a pushed reading is drawn in the chosen unit too
    dash_duo.wait_for_text_to_equal(LATEST, "77.0 °F", timeout=5)
    y = lambda: dash_duo.driver.execute_script(
        "return document.querySelector('#monitor-graph .js-plotly-plot').data[0].y")
    # The chart is drawn by its own callback, maybe a moment after the card.
    wait_for(lambda: [round(v, 1) for v in y() if v is not None] == [68.0, 77.0], "the chart in °F")


def test_age_of_the_latest_reading_counts_up_in_the_browser(dash_duo, web_server, db_exec):
    insert_now(db_exec, 20.0, seconds_ago=30)
    open_monitor(dash_duo, web_server.url)
    age = card(part="monitor-age")
    seconds = lambda: int(re.fullmatch(r"(\d+) s ago", dash_duo.find_element(age).text)[1])
    wait_for(lambda: 29 <= seconds() <= 40, "the age in seconds")
    before = seconds()
    wait_for(lambda: seconds() >= before + 2, "the age to count up", timeout=5)


def test_points_leave_the_chart_as_they_leave_the_window(dash_duo, web_server, db_exec):
    old = insert_now(db_exec, 17.0, seconds_ago=892)
    fresh = insert_now(db_exec, 21.0)
    open_monitor(dash_duo, web_server.url)
    dash_duo.driver.find_element("xpath", "//*[@id='monitor-window']//label[text()='15 min']").click()
    wait_for(lambda: chart_ids(dash_duo) == [old, fresh], "both points in the 15 min window", 8)

    # No reading arrives: the browser's own clock moves the window on.
    wait_for(lambda: chart_ids(dash_duo) == [fresh], "the old point to leave the chart", 20)
    assert set(table_rows(dash_duo)) == {old, fresh}  # the table lists the latest, any age


@both_databases
def test_a_burst_of_writes_is_applied_without_reconnecting(dash_duo, web_server, live_env):
    """Frames that arrive faster than Dash runs callbacks are all applied, none lost."""
    app = create_db_app({"SQLALCHEMY_DATABASE_URI": live_env["DATABASE_URL"],
                         "REDIS_URL": live_env["REDIS_URL"]})
    open_monitor(dash_duo, web_server.url)
    with app.app_context():
        relay = Relay(redis.Redis.from_url(live_env["REDIS_URL"]), last_change_id())
        for i in range(120):  # the worker's path: commit, then publish at once
            newest = write_reading("sensor-1", 20 + i / 100)
            relay.run_once()
            time.sleep(0.005)

    wait_for(lambda: max(table_rows(dash_duo)) == newest, "the last reading of the burst")
    assert sorted(table_rows(dash_duo)) == list(range(newest - 49, newest + 1))
    assert len(chart_ids(dash_duo)) == 120
    assert "GET /ws/readings" not in web_server.output()  # the first socket is still open


def test_reconnects_after_the_server_drops_sockets(dash_duo, web_server, db_exec):
    insert_now(db_exec, 18.0)
    open_monitor(dash_duo, web_server.url)
    closed_before = web_server.output().count("GET /ws/readings")

    web_server.drop_sockets()
    # The server closes the socket when it next has something to say.
    first = insert_now(db_exec, 18.5)
    wait_for(lambda: web_server.output().count("GET /ws/readings") > closed_before,
             "the old socket to close")
    meanwhile = insert_now(db_exec, 19.5)  # while the page waits to reconnect
    dash_duo.wait_for_text_to_equal(LATEST, "19.5 °C", timeout=10)
    assert {first, meanwhile} <= set(table_rows(dash_duo))
    wait_for_socket(dash_duo)


@both_databases
def test_catches_up_after_a_server_restart(dash_duo, web_server, db_exec):
    insert_now(db_exec, 18.0)
    open_monitor(dash_duo, web_server.url)

    web_server.stop()
    wait_for(lambda: status(dash_duo) in ("reconnecting", "offline"),
             "the badge to notice")
    written = [insert_now(db_exec, t) for t in (18.1, 18.2, 18.3)]
    web_server.start()

    wait_for_socket(dash_duo, timeout=20)
    dash_duo.wait_for_text_to_equal(LATEST, "18.3 °C", timeout=5)
    assert set(written) <= set(table_rows(dash_duo))


def resources_loaded(dash_duo):
    return dash_duo.driver.execute_script('return performance.getEntriesByType("resource").length')


def test_no_http_request_while_readings_arrive(dash_duo, web_server, celery_worker):
    open_monitor(dash_duo, web_server.url)
    wait_for(lambda: table_rows(dash_duo), "the first worker reading", timeout=15)
    time.sleep(1)  # let the page settle (lazy chunks, fonts)
    dash_duo.driver.execute_script(
        "performance.setResourceTimingBufferSize(100000); performance.clearResourceTimings()")
    rows_before = set(table_rows(dash_duo))

    time.sleep(20)

    arrived = set(table_rows(dash_duo)) - rows_before
    assert len(arrived) >= 10, f"only {len(arrived)} readings arrived in 20 s"
    requests = dash_duo.driver.execute_script(
        'return performance.getEntriesByType("resource").map(e => e.name)')
    assert requests == []

    # Control: the check does see a request -- choosing a window asks the server.
    dash_duo.driver.find_element("xpath", "//*[@id='monitor-window']//label[text()='15 min']").click()
    wait_for(lambda: resources_loaded(dash_duo) > 0, "the control request to be seen")
