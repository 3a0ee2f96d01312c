"""The monitor's chart and times in headless Chromium: the window up to now, gaps, local time."""
import sqlite3
from datetime import datetime, timedelta, timezone

from tests.test_monitor_page import card, insert_now, open_monitor, table_rows, wait_for

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
    dash_duo.wait_for_contains_text(card(part="monitor-taken-at"), tokyo + " Asia/Tokyo")
    end = datetime.fromisoformat(layout_value(dash_duo, "xaxis.range[1]"))
    tokyo_now = datetime.now(timezone(timedelta(hours=9))).replace(tzinfo=None)
    assert abs(end - tokyo_now) < timedelta(seconds=10)
    assert "Asia/Tokyo" in layout_value(dash_duo, "xaxis.title.text")

    choose(dash_duo, "monitor-tz", "UTC")
    utc = taken.strftime("%Y-%m-%d %H:%M:%S")
    wait_for(lambda: table_rows(dash_duo)[reading][0] == utc, "the table in UTC")
    dash_duo.wait_for_contains_text(card(part="monitor-taken-at"), utc + " UTC")


def insert_history(live_env, days, every_s, sensor="sensor-1"):
    """Readings every `every_s` over the last `days`, 20 C plus a slow wave, in one transaction."""
    now = datetime.now(timezone.utc)
    rows = [(sensor, (now - timedelta(seconds=s)).strftime("%Y-%m-%d %H:%M:%S.%f"),
             20 + (s // every_s) % 7 / 10) for s in range(every_s, days * 86400, every_s)]
    with sqlite3.connect(live_env["DATABASE_URL"].removeprefix("sqlite:///")) as connection:
        connection.executemany(
            "INSERT INTO readings (sensor_id, taken_at, temperature_c) VALUES (?, ?, ?)", rows)
    return len(rows)


def trace(dash_duo, index):
    return dash_duo.driver.execute_script(
        f"const t = {GRAPH}.data[{index}]; return [Array.from(t.x), Array.from(t.y)];")


# The page's store as dash_renderer holds it (window.store, its redux store): the component
# with the id, wherever the layout has it.
STORE_DATA = """
const find = (node) => {
  if (!node || typeof node !== "object") return undefined;
  if (node.props && node.props.id === arguments[0]) return node.props.data;
  for (const child of Object.values(Array.isArray(node) ? node : node.props || node)) {
    const found = find(child);
    if (found !== undefined) return found;
  }
  return undefined;
};
return find(window.store.getState().layout);
"""


def stored_series(dash_duo, sensor="sensor-1"):
    return dash_duo.driver.execute_script(STORE_DATA, "monitor-data")["series"][sensor]


def mode(dash_duo, index):
    return dash_duo.driver.execute_script(f"return {GRAPH}.data[{index}].mode;")


def test_a_7_day_window_is_bucketed_and_still_live(dash_duo, web_server, db_exec, live_env):
    written = insert_history(live_env, days=7, every_s=60)
    assert written > 10_000
    open_monitor(dash_duo, web_server.url)
    assert mode(dash_duo, 0) == "lines+markers"  # 15 min: each reading a marker
    choose(dash_duo, "monitor-window", "7 d")
    wait_for(lambda: 900 < len(trace(dash_duo, 0)[1]) <= 2100, "a bucketed 7 d chart", 20)
    assert mode(dash_duo, 0) == "lines"  # ~2,000 means: markers would be a blur (and cost ~1 s)
    # Columns, not a dict per bucket: dash_renderer walks every object of the store on each change.
    columns = stored_series(dash_duo)["buckets"]
    assert isinstance(columns, dict) and sorted(columns) == ["max", "mean", "min", "n", "t"]
    assert len({len(c) for c in columns.values()}) == 1 and len(columns["t"]) > 900
    x, means = trace(dash_duo, 0)
    assert len(trace(dash_duo, 1)[1]) == len(means)  # the band's max, one per bucket
    assert all(20.0 <= m <= 20.6 for m in means if m is not None)
    dash_duo.wait_for_contains_text(card(part="monitor-range"), "20.0 °C to 20.6 °C")

    drawn = len(trace(dash_duo, 0)[1])
    insert_now(db_exec, 30.0)  # live, no request: the open bucket's max is the new reading
    wait_for(lambda: trace(dash_duo, 1)[1][-1] == 30.0, "the new reading in its bucket", 10)
    # Folded into its bucket, not drawn as a raw point after it (one more only if a bucket began).
    assert len(trace(dash_duo, 0)[1]) - drawn in (0, 1)
    dash_duo.wait_for_contains_text(card(part="monitor-range"), "to 30.0 °C")
    old = insert_now(db_exec, 10.0, seconds_ago=3 * 86400)  # into an old bucket, folded in exactly
    wait_for(lambda: 10.0 in trace(dash_duo, 2)[1], "the old bucket's new min", 10)
    columns = stored_series(dash_duo)["buckets"]
    assert len({len(c) for c in columns.values()}) == 1 and columns["min"].count(10.0) == 1
    start = columns["t"][columns["min"].index(10.0)]
    db_exec("DELETE FROM readings WHERE id = ?", (old,))  # the frame has no old value: approximate
    wait_for(lambda: start in stored_series(dash_duo).get("approx", []), "the bucket marked", 10)
