"""The page's feed-status badge and its resync, in headless Chromium against real processes."""
import time
from pathlib import Path

from tests.conftest import both_databases, wait_until
from tests.test_monitor_page import LATEST, card_text, insert_now, open_monitor, status, table_rows


def wait_for_status(dash_duo, expected, timeout=30):
    wait_until(lambda: status(dash_duo) == expected, timeout=timeout, interval=0.1,
               what=f"feed-status {expected!r} (it says {status(dash_duo)!r})")


def test_status_says_whether_readings_arrive(dash_duo, web_server, celery_worker):
    open_monitor(dash_duo, web_server.url)
    wait_for_status(dash_duo, "live")  # the worker samples every second in tests

    celery_worker.stop()  # the socket stays up; the sensors fall silent
    wait_for_status(dash_duo, "stale")

    celery_worker.start()  # a reading arrives
    wait_for_status(dash_duo, "live", timeout=60)

    web_server.stop()
    wait_for_status(dash_duo, "reconnecting")
    wait_for_status(dash_duo, "offline")
    web_server.start()
    wait_for_status(dash_duo, "live", timeout=60)


@both_databases
def test_a_reading_by_hand_makes_a_stale_page_live(dash_duo, web_server, db_exec):
    insert_now(db_exec, 20.0, seconds_ago=60)
    open_monitor(dash_duo, web_server.url)
    wait_for_status(dash_duo, "stale")
    insert_now(db_exec, 21.0)
    wait_for_status(dash_duo, "live")
    wait_for_status(dash_duo, "stale")  # 2.5 periods later, with no other reading


def test_a_database_reset_under_an_open_page_reloads_its_snapshot(dash_duo, web_server, db_exec,
                                                                   live_env):
    for value in (18.0, 19.0, 20.0):
        insert_now(db_exec, value)
    open_monitor(dash_duo, web_server.url)
    dash_duo.wait_for_text_to_equal(LATEST, "20.0 °C")

    web_server.stop()
    database = Path(live_env["DATABASE_URL"].removeprefix("sqlite:///"))
    for path in database.parent.glob(database.name + "*"):  # the file, its WAL and shared memory
        path.unlink()
    web_server.start()  # a new, empty database: its change ids start again from 1
    fresh = insert_now(db_exec, 25.0)

    dash_duo.wait_for_text_to_equal(LATEST, "25.0 °C", timeout=30)
    wait_until(lambda: list(table_rows(dash_duo)) == [fresh], timeout=10, what="only the new row")
    later = insert_now(db_exec, 26.0)  # and it carries on live
    dash_duo.wait_for_text_to_equal(LATEST, "26.0 °C", timeout=15)
    assert set(table_rows(dash_duo)) == {fresh, later}


SKEW = "const real = Date.now; Date.now = () => real() + {ms}; window.Date.now = Date.now;"


def skew_browser_clock(dash_duo, ms):
    """Every page the browser opens from now on believes it is `ms` later than it is."""
    dash_duo.driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument",
                                    {"source": SKEW.format(ms=ms)})


def test_status_and_age_are_judged_by_the_server_clock_not_the_browsers(dash_duo, web_server,
                                                                          db_exec):
    insert_now(db_exec, 20.0, seconds_ago=30)
    skew_browser_clock(dash_duo, -3_600_000)  # an hour slow: by its own clock, 30 s is the future
    open_monitor(dash_duo, web_server.url)
    assert dash_duo.driver.execute_script("return Date.now()") < (time.time() - 3000) * 1000
    wait_for_status(dash_duo, "stale")
    wait_until(lambda: 29 <= int(card_text(dash_duo, part="monitor-age").split()[0]) <= 45,
               timeout=10, what="the age by the server's clock")

    skew_browser_clock(dash_duo, 7_200_000)  # on top: an hour fast, a fresh reading looks old
    dash_duo.driver.refresh()
    open_monitor(dash_duo, web_server.url)
    insert_now(db_exec, 21.0)
    wait_for_status(dash_duo, "live")
