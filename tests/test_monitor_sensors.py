"""Every sensor together on the monitor, in headless Chromium against real processes: a trace and
a card each, a new sensor live, stale per card, the user's zoom kept, thresholds, the CSV link."""
import csv
import io
import time
import urllib.request
from datetime import datetime, timedelta, timezone

from selenium.webdriver.common.action_chains import ActionChains

from tests.conftest import wait_until
from tests.test_monitor_chart import GRAPH, as_utc, choose, layout_value
from tests.test_monitor_page import (
    card,
    card_text,
    insert_now,
    open_monitor,
    resources_loaded,
    table_cells,
    wait_for,
)
from tests.test_monitor_url import shown_cards


def trace_names(dash_duo):
    """The sensors of the chart's line traces (one line and two band traces per sensor)."""
    return dash_duo.driver.execute_script(f"return {GRAPH}.data.filter((t, i) => i % 3 === 0)"
                                          ".map(t => t.name)")


def line_y(dash_duo, sensor):
    return dash_duo.driver.execute_script(
        f"const t = {GRAPH}.data.find(t => t.name === arguments[0] && t.showlegend !== false);"
        "return t && Array.from(t.y).filter(y => y !== null);", sensor)


def test_every_sensor_on_one_chart_configured_first(dash_duo, web_server, db_exec):
    bulk = insert_now(db_exec, 30.0, sensor="bulk")  # hand-written, alphabetically first
    insert_now(db_exec, 20.0)
    zone = insert_now(db_exec, 25.0, sensor="zone-2")
    open_monitor(dash_duo, web_server.url)
    wait_for(lambda: shown_cards(dash_duo) == ["sensor-1", "bulk", "zone-2"], "a card each")
    wait_for(lambda: trace_names(dash_duo) == ["sensor-1", "bulk", "zone-2"], "a trace each")
    dash_duo.wait_for_text_to_equal(card("bulk"), "30.0 °C")
    assert line_y(dash_duo, "zone-2") == [25.0]
    assert "not configured" in card_text(dash_duo, "bulk", "monitor-label").lower()
    assert table_cells(dash_duo)[bulk][1:] == ("bulk", "30.0 °C")
    assert table_cells(dash_duo)[zone][1:] == ("zone-2", "25.0 °C")

    # The legend hides a sensor, and a redraw (a new reading) keeps it hidden.
    legend_items = dash_duo.driver.find_elements("css selector", "#monitor-graph .legend .legendtoggle")
    legend_items[1].click()
    visible = lambda: dash_duo.driver.execute_script(f"return {GRAPH}.data.map(t => t.visible)")
    wait_for(lambda: visible()[3] == "legendonly", "bulk hidden by the legend")
    insert_now(db_exec, 26.0, sensor="zone-2")
    wait_for(lambda: line_y(dash_duo, "zone-2") == [25.0, 26.0], "the redraw")
    assert visible()[3:6] == ["legendonly"] * 3 and visible()[0] is True


def test_a_link_names_the_sensors_shown(dash_duo, web_server, db_exec):
    insert_now(db_exec, 20.0)
    insert_now(db_exec, 25.0, sensor="zone-2")
    insert_now(db_exec, 30.0, sensor="bulk")
    open_monitor(dash_duo, web_server.url + "/?sensor=zone-2&sensor=sensor-1")
    wait_for(lambda: shown_cards(dash_duo) == ["sensor-1", "zone-2"], "the two named sensors")
    assert trace_names(dash_duo) == ["sensor-1", "zone-2"]
    assert {sensor for _, sensor, _ in table_cells(dash_duo).values()} == {"sensor-1", "zone-2"}

    insert_now(db_exec, 31.0, sensor="bulk")  # not in the view: stays out of it
    insert_now(db_exec, 26.0, sensor="zone-2")
    dash_duo.wait_for_text_to_equal(card("zone-2"), "26.0 °C")
    assert shown_cards(dash_duo) == ["sensor-1", "zone-2"]


def test_a_sensor_first_seen_in_the_data_appears_live(dash_duo, web_server, db_exec):
    insert_now(db_exec, 20.0)
    open_monitor(dash_duo, web_server.url)
    wait_for(lambda: shown_cards(dash_duo) == ["sensor-1"], "the one card")
    time.sleep(1)  # let the page settle (lazy chunks, fonts)
    dash_duo.driver.execute_script(
        "performance.setResourceTimingBufferSize(100000); performance.clearResourceTimings()")

    attic = insert_now(db_exec, 17.5, sensor="attic")
    dash_duo.wait_for_text_to_equal(card("attic"), "17.5 °C", timeout=10)
    wait_for(lambda: trace_names(dash_duo) == ["sensor-1", "attic"], "a trace for the new sensor")
    assert line_y(dash_duo, "attic") == [17.5]
    assert table_cells(dash_duo)[attic][1] == "attic"
    assert resources_loaded(dash_duo) == 0  # no request: the browser added it


def test_a_silent_sensor_is_marked_stale_on_its_card_and_named_by_the_badge(
        dash_duo, web_server, celery_worker, db_exec):
    insert_now(db_exec, 25.0, sensor="zone-2", seconds_ago=60)  # 60 periods ago
    open_monitor(dash_duo, web_server.url)
    badge = lambda: dash_duo.find_element("#feed-status").text
    wait_for(lambda: badge() == "live · stale: zone-2", "the badge to name the stale sensor", 30)
    wait_for(lambda: (card_text(dash_duo, "zone-2", "monitor-stale") or "").startswith("stale"),
             "the stale card to say so", 30)
    assert not dash_duo.driver.find_elements("css selector", card("sensor-1", "monitor-stale"))

    insert_now(db_exec, 25.5, sensor="zone-2")  # it speaks: fresh again, then stale 2.5 s later
    wait_for(lambda: badge() == "live", "zone-2 fresh", 30)
    wait_for(lambda: badge() == "live · stale: zone-2", "zone-2 stale again", 30)


def x_range(dash_duo):
    return [as_utc(t) for t in layout_value(dash_duo, "xaxis.range")]


def test_the_users_zoom_stops_the_slide_until_a_double_click(dash_duo, web_server, db_exec):
    for seconds_ago in range(600, 0, -30):
        insert_now(db_exec, 20 + seconds_ago / 600, seconds_ago=seconds_ago)
    open_monitor(dash_duo, web_server.url)
    choose(dash_duo, "monitor-tz", "UTC")
    choose(dash_duo, "monitor-window", "15 min")
    wait_for(lambda: x_range(dash_duo)[1] - x_range(dash_duo)[0] == timedelta(minutes=15), "15 min")

    drag = dash_duo.find_element("#monitor-graph .nsewdrag")
    ActionChains(dash_duo.driver).move_to_element(drag).move_by_offset(-200, 0).click_and_hold() \
        .move_by_offset(150, 0).release().perform()  # a box zoom in x
    wait_for(lambda: x_range(dash_duo)[1] - x_range(dash_duo)[0] < timedelta(minutes=5), "the zoom")
    zoomed = x_range(dash_duo)
    time.sleep(3)  # three clock ticks: the slide would have moved it
    insert_now(db_exec, 21.0)  # and a redraw
    wait_for(lambda: 21.0 in line_y(dash_duo, "sensor-1"), "the new reading drawn")
    assert x_range(dash_duo) == zoomed

    ActionChains(dash_duo.driver).move_to_element(drag).double_click().perform()
    wait_for(lambda: x_range(dash_duo)[1] - x_range(dash_duo)[0] == timedelta(minutes=15), "the reset")
    end = x_range(dash_duo)[1]
    assert abs(end - datetime.now(timezone.utc)) < timedelta(seconds=5)
    wait_for(lambda: x_range(dash_duo)[1] >= end + timedelta(seconds=2), "the slide again")


THRESHOLDS = """
window.wattsonThresholds = {"sensor-1": {"low_c": 18, "high_c": 26},
                            "zone-2": {"low_c": null, "high_c": 30}, "elsewhere": {"low_c": 0}};
window.dispatchEvent(new CustomEvent("wattson:thresholds"));
"""


def shapes(dash_duo):
    return dash_duo.driver.execute_script(
        f"return {GRAPH}.layout.shapes.map(s => [s.type, s.y0, s.y1, s.line.dash || null])")


def test_thresholds_announced_by_the_page_are_drawn_as_bands(dash_duo, web_server, db_exec):
    insert_now(db_exec, 22.0)
    insert_now(db_exec, 24.0, sensor="zone-2")
    open_monitor(dash_duo, web_server.url)
    wait_for(lambda: trace_names(dash_duo) == ["sensor-1", "zone-2"], "both sensors")
    assert shapes(dash_duo) == []

    dash_duo.driver.execute_script(THRESHOLDS)
    wait_for(lambda: len(shapes(dash_duo)) == 2, "the bands")
    assert shapes(dash_duo) == [["rect", 18, 26, None], ["line", 30, 30, "dash"]]
    low, high = layout_value(dash_duo, "yaxis.range")
    assert low < 18 and high > 30  # the y-axis shows the bands

    choose(dash_duo, "monitor-unit", "°F")
    wait_for(lambda: [round(y, 1) for y in shapes(dash_duo)[0][1:3]] == [64.4, 78.8], "bands in °F")
    insert_now(db_exec, 23.0)  # every figure drawn carries them
    wait_for(lambda: 73.4 in [round(y, 1) for y in line_y(dash_duo, "sensor-1")], "a redraw")
    assert len(shapes(dash_duo)) == 2

    dash_duo.driver.execute_script(
        "window.wattsonThresholds = {}; window.dispatchEvent(new CustomEvent('wattson:thresholds'))")
    wait_for(lambda: shapes(dash_duo) == [], "the bands removed")


def download(dash_duo):
    """The CSV behind the link, fetched with the browser's cookies: [(sensor, temperature)]."""
    href = dash_duo.find_element("#monitor-download").get_attribute("href")
    cookies = "; ".join(f"{c['name']}={c['value']}" for c in dash_duo.driver.get_cookies())
    with urllib.request.urlopen(urllib.request.Request(href, headers={"Cookie": cookies}),
                                timeout=30) as response:
        rows = list(csv.DictReader(io.StringIO(response.read().decode())))
    return [(r["sensor_id"], float(r["temperature_c"])) for r in rows]


def test_the_csv_link_downloads_the_current_view(dash_duo, web_server, db_exec):
    insert_now(db_exec, 19.0, seconds_ago=2 * 3600)  # before the 1 h window
    insert_now(db_exec, 20.0, seconds_ago=60)
    insert_now(db_exec, 21.0, seconds_ago=30)
    insert_now(db_exec, 25.0, sensor="zone-2", seconds_ago=30)
    open_monitor(dash_duo, web_server.url + "/?sensor=sensor-1&window=1h")
    wait_until(lambda: download(dash_duo) == [("sensor-1", 20.0), ("sensor-1", 21.0)],
               timeout=10, what="the shown sensor's readings in the window")
    href = dash_duo.find_element("#monitor-download").get_attribute("href")
    assert "sensor=sensor-1&from=" in href and "Z&to=" in href

    choose(dash_duo, "monitor-window", "24 h")  # the view changes: so does the link
    wait_until(lambda: download(dash_duo)[0] == ("sensor-1", 19.0), timeout=10,
               what="the 24 h window's readings")
    assert ("zone-2", 25.0) not in download(dash_duo)
