"""The monitor's view in the URL and in the browser's storage, in headless Chromium."""
from pages.monitor_view import view_from_query
from tests.test_monitor_chart import choose
from tests.test_monitor_page import card, insert_now, latest_text, open_monitor, wait_for


def test_a_query_names_a_view_and_bad_values_are_named():
    view, problems = view_from_query({"sensor": ["lab", "office"], "window": "15m", "unit": "F",
                                      "tz": "utc"}, ["office", "attic", "lab"])
    assert view == {"sensors": ["office", "lab"], "window": "15m", "unit": "F", "tz": "utc"}
    assert problems == []
    view, problems = view_from_query({"window": "2y", "sensor": "attic"}, ["lab"])
    assert view == {"sensors": [], "window": "1h", "unit": "C", "tz": "local"}  # []: every sensor
    assert problems == ["Ignored window=2y: expected one of 15m, 1h, 24h, 7d, 30d.",
                        "Ignored sensor=attic: no such sensor."]


def shown_cards(dash_duo):
    """The sensors with a card, in the page's order."""
    return dash_duo.driver.execute_script(
        "return Array.from(document.querySelectorAll('.monitor-sensor-card'), c => c.dataset.sensor)")


def checked(dash_duo, toggle):
    return dash_duo.find_element(f"#{toggle} label.active").text


def current_query(dash_duo):
    return dash_duo.driver.execute_script("return window.location.search")


def test_a_link_opens_its_view_and_choices_update_the_url(dash_duo, web_server, db_exec):
    insert_now(db_exec, 20.0)
    insert_now(db_exec, 25.0, sensor="office")
    open_monitor(dash_duo, web_server.url + "/?sensor=office&window=15m&unit=F&tz=utc")
    wait_for(lambda: shown_cards(dash_duo) == ["office"], "only the office's card")
    dash_duo.wait_for_text_to_equal(card("office"), "77.0 °F")
    assert (checked(dash_duo, "monitor-window"), checked(dash_duo, "monitor-tz")) == ("15 min", "UTC")
    dash_duo.wait_for_contains_text(card("office", "monitor-taken-at"), "UTC")

    dash_duo.driver.execute_script("window.monitorTestMark = 1")  # gone if the page reloads
    choose(dash_duo, "monitor-unit", "°C")
    choose(dash_duo, "monitor-window", "24 h")
    wait_for(lambda: current_query(dash_duo) == "?sensor=office&window=24h&unit=C&tz=utc",
             "the URL to follow the choices")
    dash_duo.wait_for_text_to_equal(card("office"), "25.0 °C")
    assert dash_duo.driver.execute_script("return window.monitorTestMark") == 1  # no reload

    # A bare "/" in the same browser opens the last view chosen.
    open_monitor(dash_duo, web_server.url + "/")
    wait_for(lambda: current_query(dash_duo) == "?sensor=office&window=24h&unit=C&tz=utc",
             "the stored view restored")
    wait_for(lambda: shown_cards(dash_duo) == ["office"], "the stored sensors restored")
    assert checked(dash_duo, "monitor-window") == "24 h"


def test_a_link_with_bad_values_says_so_and_shows_the_defaults(dash_duo, web_server, db_exec):
    insert_now(db_exec, 20.0)
    open_monitor(dash_duo, web_server.url + "/?window=2y&unit=K")
    dash_duo.wait_for_contains_text("#monitor-url-note", "Ignored window=2y")
    dash_duo.wait_for_contains_text("#monitor-url-note", "Ignored unit=K")
    assert latest_text(dash_duo) == "20.0 °C"
    assert checked(dash_duo, "monitor-window") == "1 h"
