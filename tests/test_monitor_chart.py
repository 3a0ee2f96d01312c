"""The monitor's chart and times in headless Chromium: the window up to now, gaps, local time."""
from datetime import datetime, timedelta, timezone

from tests.test_monitor_page import insert_now, open_monitor, table_rows, wait_for

GRAPH = "document.querySelector('#monitor-graph .js-plotly-plot')"


def layout_value(dash_duo, path):
    return dash_duo.driver.execute_script(f"return {GRAPH}.layout.{path}")


def choose(dash_duo, toggle, label):
    dash_duo.driver.find_element("xpath", f"//*[@id='{toggle}']//label[text()='{label}']").click()


def as_utc(plotly_text):
    return datetime.fromisoformat(plotly_text).replace(tzinfo=timezone.utc)


def stored_time(db_exec, reading_id):
    (text,) = db_exec("SELECT taken_at FROM readings WHERE id = ?", (reading_id,))[0]
    return datetime.fromisoformat(text).replace(tzinfo=timezone.utc)


def test_the_x_axis_spans_the_window_up_to_now_and_moves(dash_duo, web_server, db_exec):
    insert_now(db_exec, 20.0, seconds_ago=120)  # one old reading: the axis must not stop at it
    open_monitor(dash_duo, web_server.url)
    choose(dash_duo, "monitor-tz", "UTC")
    choose(dash_duo, "monitor-window", "15 min")

    def span():
        start, end = (as_utc(t) for t in layout_value(dash_duo, "xaxis.range"))
        return start, end

    wait_for(lambda: span()[1] - span()[0] == timedelta(minutes=15), "a 15 min axis")
    start, end = span()
    assert abs(end - datetime.now(timezone.utc)) < timedelta(seconds=5)
    wait_for(lambda: span()[1] >= end + timedelta(seconds=2), "the axis to move with time")


def test_a_gap_breaks_the_line(dash_duo, web_server, db_exec):
    before = insert_now(db_exec, 20.0, seconds_ago=60)
    after = insert_now(db_exec, 21.0, seconds_ago=30)  # 30 s apart: far more than 2.5 periods
    close = insert_now(db_exec, 21.2, seconds_ago=29)
    open_monitor(dash_duo, web_server.url)
    ids = lambda: dash_duo.driver.execute_script(f"return Array.from({GRAPH}.data[0].customdata)")
    wait_for(lambda: ids() == [before, None, after, close], "a break in the line")
    y = dash_duo.driver.execute_script(f"return {GRAPH}.data[0].y")
    assert y[1] is None and y[0] == 20.0
    low, high = layout_value(dash_duo, "yaxis.range")
    assert high - low >= 2.0  # 1.2 C of data, drawn on at least 2 C


def test_times_are_local_with_a_utc_toggle(dash_duo, web_server, db_exec):
    dash_duo.driver.execute_cdp_cmd("Emulation.setTimezoneOverride", {"timezoneId": "Asia/Tokyo"})
    reading = insert_now(db_exec, 20.0)
    taken = stored_time(db_exec, reading)
    open_monitor(dash_duo, web_server.url)
    tokyo = (taken + timedelta(hours=9)).strftime("%Y-%m-%d %H:%M:%S")

    dash_duo.wait_for_contains_text("#monitor-zone", "Asia/Tokyo")
    wait_for(lambda: table_rows(dash_duo)[reading][0] == tokyo, "the table in Tokyo time")
    dash_duo.wait_for_contains_text("#monitor-taken-at", tokyo + " Asia/Tokyo")
    end = datetime.fromisoformat(layout_value(dash_duo, "xaxis.range[1]"))
    tokyo_now = datetime.now(timezone(timedelta(hours=9))).replace(tzinfo=None)
    assert abs(end - tokyo_now) < timedelta(seconds=10)
    assert "Asia/Tokyo" in layout_value(dash_duo, "xaxis.title.text")

    choose(dash_duo, "monitor-tz", "UTC")
    utc = taken.strftime("%Y-%m-%d %H:%M:%S")
    wait_for(lambda: table_rows(dash_duo)[reading][0] == utc, "the table in UTC")
    dash_duo.wait_for_contains_text("#monitor-taken-at", utc + " UTC")
