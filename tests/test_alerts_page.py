"""Thresholds and alerts on the monitor page (issue 10 item 4, page side).

The pure parts without a browser: the form's parsing, the /ws/alerts frames, the hub's fan-out,
and assets/alerts.js's state and formatting under Node. The flows in headless Chromium against a
real `python app.py`, a real Redis and a real `celery -A tasks worker -B` (SAMPLE_PERIOD_S=1),
whose sampling of the simulated room (about 21 C) raises the alerts. The flow across two open
pages runs on SQLite and on PostgreSQL (both_databases); the others, the same on either, on
SQLite only.
"""
import json
import subprocess

import pytest
from conftest import REPO, both_databases, pytest_setup_options, wait_until
from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys

from pages.monitor_alerts import band_from_form, parse_limit
from readings import alerts
from readings.hub import Hub, alert_frame, alert_snapshot_frame
from tests import test_alerts_worker
from tests.test_accessibility import AA_TEXT, COLORS_JS, contrast
from tests.test_readings_feed import RecordingSocket

band = test_alerts_worker.band  # the fixture: set(low, high) for sensor-1, through the domain

# ---- the form: limits typed in the page's unit ----


def test_limits_are_read_in_the_pages_unit_and_stored_in_celsius():
    assert band_from_form("18", " 26.5 ", "C") == (18.0, 26.5)
    assert band_from_form("", "", "C") == (None, None)
    low, high = band_from_form("32", "212", "F")
    assert (low, high) == (0.0, 100.0)
    assert parse_limit("low", None, "F") is None


@pytest.mark.parametrize("low, high, unit, message", [
    ("20", "20", "C", "the low limit (20 C) must be below the high limit (20 C)"),
    ("25", "18", "C", "must be below the high limit"),
    ("", "151", "C", "high limit: 151.0 C is outside -50..150 C"),
    ("-60", "", "C", "low limit: -60.0 C is outside -50..150 C"),
    ("", "400", "F", "is outside -50..150 C"),
    ("warm", "", "C", "the low limit 'warm' is not a number"),
    ("", "nan", "C", "the high limit 'nan' is not a number"),
    ("", "1e999", "C", "is not a number"),
])
def test_a_bad_band_is_refused_with_the_reason(low, high, unit, message):
    with pytest.raises(alerts.ThresholdError) as refused:
        band_from_form(low, high, unit)
    assert message in str(refused.value)


# ---- frames and the hub ----

STARTED = {"event": "started", "alert": {
    "id": 7, "sensor_id": "lab", "kind": "high", "started_at": "2026-11-29T18:00:00.000Z",
    "ended_at": None, "value": 31.2, "details": "31.2 C is above the high limit 30 C"}}


def test_alert_frames_pass_the_published_shape_and_drop_anything_else():
    assert json.loads(alert_frame(json.dumps(STARTED))) == STARTED
    for bad in (b"not json", b"{}", json.dumps({"event": "opened", "alert": {"id": 1}}),
                json.dumps({"event": "ended", "alert": {"id": "7"}})):
        assert alert_frame(bad) is None


def test_the_snapshot_frame_has_the_open_alerts_the_log_and_every_band(db_app):
    alerts.set_threshold("lab", 18, None)
    alerts.reconcile("lab", {"low": (_at(0), 12.0, "12 C is below the low limit 18 C")}, _at(0))
    frame = json.loads(alert_snapshot_frame())
    assert frame["event"] == "snapshot"
    assert [a["kind"] for a in frame["open"]] == ["low"] and frame["log"] == frame["open"]
    assert frame["thresholds"] == {"lab": {"low_c": 18.0, "high_c": None}}


def _at(seconds):
    from datetime import datetime, timedelta, timezone
    return datetime(2026, 11, 29, 18, 0, tzinfo=timezone.utc) + timedelta(seconds=seconds)


def test_an_alert_client_gets_its_snapshot_first_then_what_came_meanwhile_then_live(db_app, redis_server):
    hub = Hub(db_app, redis_server.url)
    ws = RecordingSocket()
    client = hub.connect_alerts(ws)
    hub.on_message(b"alerts", json.dumps(STARTED))  # before the snapshot is read: in it
    client.forget_pending()
    snapshot = alert_snapshot_frame()
    ended = {"event": "ended", "alert": dict(STARTED["alert"], ended_at="2026-11-29T18:01:00.000Z")}
    hub.on_message(b"alerts", json.dumps(ended))  # while it is being sent
    client.start(snapshot)
    alerts.set_threshold("lab", None, 30)
    hub.on_message(b"thresholds", b"changed")  # the bands are read from the database
    hub.on_message(b"alerts", b"garbage")
    assert [f["event"] for f in ws.frames] == ["snapshot", "ended", "thresholds"]
    assert ws.frames[2]["thresholds"] == {"lab": {"low_c": None, "high_c": 30.0}}
    hub.drop_all()
    assert client.closed.is_set()


# ---- assets/alerts.js under Node: its state and formatting, no browser ----

NODE_HARNESS = """
const window = {WebSocket: class {}, location: {}, dash_clientside: {}};
global.window = window; global.WebSocket = window.WebSocket;
for (const file of process.argv.slice(1)) {  // monitor.js first: alerts.js uses its formatter
  require("vm").runInThisContext(require("fs").readFileSync(file, "utf8"));
}
const alerts = window.dash_clientside.alerts;
const input = JSON.parse(require("fs").readFileSync(0, "utf8"));
const out = input.map(([name, args]) => {
  if (name === "frames") return args.reduce(alerts.applyFrame, {open: [], log: [], thresholds: {}});
  return alerts[name](...args);
});
process.stdout.write(JSON.stringify(out));
"""


def run_js(calls, tz="UTC"):
    result = subprocess.run(["node", "-e", NODE_HARNESS, str(REPO / "assets" / "monitor.js"),
                             str(REPO / "assets" / "alerts.js")],
                            input=json.dumps(calls), capture_output=True, text=True, check=True,
                            env={"TZ": tz, "PATH": "/usr/bin:/bin"})
    return json.loads(result.stdout)


def alert(alert_id, started, ended=None, kind="high"):
    return {"id": alert_id, "sensor_id": "lab", "kind": kind, "started_at": started,
            "ended_at": ended, "value": None, "details": ""}


def test_alerts_js_applies_frames_and_an_end_is_final():
    a1 = alert(1, "2026-11-29T18:00:00.000Z")
    a1_end = dict(a1, ended_at="2026-11-29T18:05:00.000Z")
    a2 = alert(2, "2026-11-29T18:10:00.000Z", kind="stale")
    bands = {"lab": {"low_c": 18, "high_c": None}}
    snapshot = {"event": "snapshot", "open": [a1], "log": [a1], "thresholds": bands}
    [started, ended, late_start, resnap, bands] = run_js([
        ["frames", [snapshot, {"event": "started", "alert": a2}]],
        ["frames", [snapshot, {"event": "ended", "alert": a1_end}]],
        ["frames", [snapshot, {"event": "ended", "alert": a1_end}, {"event": "started", "alert": a1}]],
        ["frames", [snapshot, {"event": "started", "alert": a2},
                    {"event": "snapshot", "open": [], "log": [a2, a1_end], "thresholds": {}}]],
        ["frames", [snapshot, {"event": "thresholds", "thresholds": {"lab": {"low_c": 1, "high_c": 2}}}]],
    ])
    assert [a["id"] for a in started["open"]] == [1, 2] and [a["id"] for a in started["log"]] == [2, 1]
    assert ended["open"] == [] and ended["log"] == [a1_end]
    assert late_start["open"] == [] and late_start["log"] == [a1_end]  # a start after its end
    assert resnap == {"open": [], "log": [a2, a1_end], "thresholds": {}}  # a reconnect's snapshot wins
    assert bands["thresholds"] == {"lab": {"low_c": 1, "high_c": 2}} and bands["open"] == [a1]


def test_alerts_js_writes_times_as_the_monitor_does_in_the_chosen_zone():
    iso = "2026-11-29T18:00:05.250Z"
    assert run_js([["formatTime", [iso, "utc"]], ["formatTime", [iso, "local"]]],
                  tz="Asia/Kolkata") == ["2026-11-29 18:00:05", "2026-11-29 23:30:05"]
    assert run_js([["limitText", [26.6666667, "C"]], ["limitText", [0, "F"]],
                   ["limitText", [None, "C"]]]) == ["26.67", "32", ""]


# ---- in the browser: a real server, a real worker, real Redis ----

def open_monitor(driver, url):
    driver.get(url)
    wait(lambda: driver.execute_script("return window.wattsonThresholds !== undefined"
                                       " && document.querySelector('#alerts-log') !== null"),
         "the monitor page with its bands")


def banners(driver):
    return driver.execute_script(
        "return Array.from(document.querySelectorAll('#alerts-banner [role=alert]'), e => e.textContent)")


def log_rows(driver):
    return driver.execute_script(
        "return Array.from(document.querySelectorAll('#alerts-log tbody tr'),"
        " tr => Array.from(tr.cells, td => td.textContent))")


def find(driver, selector):
    return driver.find_element(By.CSS_SELECTOR, selector)


def save_band(driver, low, high):
    for field, text in (("#alerts-low", low), ("#alerts-high", high)):
        element = find(driver, field)
        element.send_keys(Keys.CONTROL, "a")  # clear() does not reach React's state
        element.send_keys(Keys.BACKSPACE, text)
    find(driver, "#alerts-save").click()


def message(driver):
    return find(driver, "#alerts-band-message").text


def wait(check, what, timeout=60):
    wait_until(check, timeout=timeout, interval=0.2, what=what)


@pytest.fixture
def second_browser():
    """Another headless Chromium: a second person with the monitor open."""
    driver = webdriver.Chrome(options=pytest_setup_options())
    yield driver
    driver.quit()


# Counts the page's "wattson:thresholds" events from its very start (before any asset runs).
COUNT_EVENTS = ("window.thresholdEvents = [];"
                "window.addEventListener('wattson:thresholds',"
                " () => window.thresholdEvents.push(JSON.stringify(window.wattsonThresholds)));")


def test_a_band_set_on_the_page_is_stored_announced_and_a_bad_one_is_refused(
        dash_duo, web_server, db_exec, band):
    band(10, None)
    driver = dash_duo.driver
    driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": COUNT_EVENTS})
    open_monitor(driver, web_server.url + "/?unit=F")
    events = lambda: driver.execute_script("return window.thresholdEvents")  # noqa: E731
    assert [json.loads(e) for e in events()] == [{"sensor-1": {"low_c": 10.0, "high_c": None}}]
    wait(lambda: find(driver, "#alerts-low").get_attribute("value") == "50", "the band in F")

    save_band(driver, "64.4", "78.8")  # °F, as the page shows
    wait(lambda: ": saved" in message(driver), "the saved message")
    low, high = db_exec("SELECT low_c, high_c FROM sensor_thresholds WHERE sensor_id = 'sensor-1'")[0]
    assert (round(low, 6), round(high, 6)) == (18.0, 26.0)
    wait(lambda: len(events()) >= 2, "the thresholds event after saving")
    assert json.loads(events()[-1]) == {"sensor-1": {"low_c": low, "high_c": high}}

    for bad_low, bad_high, reason in (("80", "70", "must be below the high limit"),
                                      ("", "warm", "the high limit 'warm' is not a number"),
                                      ("", "400", "is outside -50..150 C")):
        save_band(driver, bad_low, bad_high)
        wait(lambda reason=reason: reason in message(driver), f"the message {reason!r}")
        assert message(driver).startswith("Not saved:")
        assert db_exec("SELECT low_c, high_c FROM sensor_thresholds") == [(low, high)]
        assert find(driver, "#alerts-high").get_attribute("value") == bad_high  # kept
    assert len(events()) == 2


def shows_open_high_alert(driver):
    wait(lambda: any("sensor-1 · high" in b for b in banners(driver)), "the banner")
    wait(lambda: log_rows(driver)[:1] and log_rows(driver)[0][:2] == ["sensor-1", "high"],
         "the log row")
    assert log_rows(driver)[0][3] == "open" and "above the high limit 0 C" in banners(driver)[0]


def shows_ended_high_alert(driver):
    wait(lambda: banners(driver) == [], "the banner to go")
    wait(lambda: log_rows(driver)[0][3] != "open", "the end in the log")
    assert log_rows(driver)[0][:2] == ["sensor-1", "high"]


@both_databases  # the live path end to end: worker, alerts channel, hub, two pages' sockets
def test_an_alert_from_the_worker_reaches_every_open_page_and_its_end_removes_the_banner(
        live_env, dash_duo, second_browser, band, request, db_exec):
    # Two browsers redrawing every second starved each other on the shared 2 cores (a command
    # waited minutes for a renderer); one reading in 5 s is plenty for an alert.
    live_env["SAMPLE_PERIOD_S"] = "5"
    web_server = request.getfixturevalue("web_server")
    request.getfixturevalue("celery_worker")
    pages = [dash_duo.driver, second_browser]
    for driver in pages:
        open_monitor(driver, web_server.url)
    band(None, 0.0)  # the simulated room is around 21 C: high at the next reading
    for driver in pages:
        shows_open_high_alert(driver)
    (alert_id,) = db_exec("SELECT id FROM alerts WHERE ended_at IS NULL")[0]
    text, fill, _ = pages[0].execute_script(COLORS_JS, find(pages[0], f"#alerts-banner-{alert_id}"))
    assert contrast(text, fill) >= AA_TEXT

    open_monitor(second_browser, web_server.url)  # a page opened while the alert is open
    wait(lambda: len(banners(second_browser)) == 1, "the open alert on a fresh page")

    band(None, 100.0)
    for driver in pages:
        shows_ended_high_alert(driver)


def test_an_end_while_the_page_is_disconnected_is_not_lost(
        dash_duo, web_server, celery_worker, db_exec, band):
    band(None, 0.0)
    wait(lambda: db_exec("SELECT count(*) FROM alerts WHERE ended_at IS NULL") == [(1,)], "the alert")
    driver = dash_duo.driver
    open_monitor(driver, web_server.url)
    wait(lambda: len(banners(driver)) == 1, "the banner")
    web_server.stop()  # the page's socket goes down and stays down
    band(None, 100.0)
    wait(lambda: db_exec("SELECT count(*) FROM alerts WHERE ended_at IS NULL") == [(0,)], "the end")
    assert len(banners(driver)) == 1  # nothing told the page yet
    web_server.start()  # same port: the page reconnects and receives a snapshot first
    shows_ended_high_alert(driver)
