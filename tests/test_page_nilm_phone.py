"""/nilm on a 390 x 844 phone (issue 11 item 4), in real headless Chromium: no text box of a chart
(legend, annotations such as the spike note and subplot titles, titles, axis titles, tick labels)
overlaps another or the plotly toolbar (modebar). Boxes are the browser's own
(getBoundingClientRect on the drawn SVG elements). The report's twin is in test_nilm_report.py."""
import itertools

from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.keys import Keys

from tests import test_page_nilm
from tests.test_page_nilm import GRAPHS, open_page, upload, wait_for_plots

main_file = test_page_nilm.main_file  # the fixture

PHONE = {"width": 390, "height": 844, "deviceScaleFactor": 1, "mobile": True}

# Every text box of every plot under `root`: (plot index, kind, group, box, text). Tick labels of
# one axis are one group (plotly spaces them itself); everything else is a group of its own.
BOXES_JS = """
const plots = document.querySelectorAll(arguments[0] + ' .js-plotly-plot');
const found = [];
plots.forEach(function (plot, p) {
    let n = 0;
    function add(kind, group, el) {
        const r = el.getBoundingClientRect();
        if (r.width > 0 && r.height > 0) {
            found.push([p, kind, group, [r.left, r.top, r.right, r.bottom],
                        (el.textContent || '').slice(0, 60)]);
        }
    }
    plot.querySelectorAll('.modebar').forEach(function (el) { add('modebar', 'm' + n++, el); });
    plot.querySelectorAll('g.legend').forEach(function (el) { add('legend', 'l' + n++, el); });
    plot.querySelectorAll('g.annotation').forEach(function (el) { add('annotation', 'a' + n++, el); });
    plot.querySelectorAll('.infolayer g[class$="title"] text').forEach(function (el) {
        add('title', 't' + n++, el);
    });
    plot.querySelectorAll('g[class$="axislayer-above"]').forEach(function (layer) {
        const group = 'k' + n++;
        layer.querySelectorAll('g[class$="tick"] text').forEach(function (el) { add('tick', group, el); });
    });
});
return [plots.length, found];
"""


def overlaps(driver, root):
    """(number of plots, [description of each pair of text boxes that overlap])."""
    count, boxes = driver.execute_script(BOXES_JS, root)
    clashes = []
    for a, b in itertools.combinations(boxes, 2):
        (pa, ka, ga, ra, ta), (pb, kb, gb, rb, tb) = a, b
        if pa != pb or ga == gb:
            continue
        # One pixel of slack: neighbouring boxes may share an edge.
        if ra[0] < rb[2] - 1 and rb[0] < ra[2] - 1 and ra[1] < rb[3] - 1 and rb[1] < ra[3] - 1:
            clashes.append(f"plot {pa}: {ka} {ta!r} {ra} overlaps {kb} {tb!r} {rb}")
    return count, clashes


def as_phone(driver):
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", PHONE)


def test_no_chart_text_overlaps_on_a_phone(dash_duo, web_server, labelling_worker, nilm_data_dir):
    as_phone(dash_duo.driver)
    try:
        open_page(dash_duo, web_server)
        assert dash_duo.driver.execute_script("return window.innerWidth") == 390
        dash_duo.find_element("#nilm-sample").click()
        wait_for_plots(dash_duo)
        dash_duo.wait_for_element("#nilm-stress .main-svg .hm", timeout=30)
        count, clashes = overlaps(dash_duo.driver, "#_pages_content")
        assert count == len(GRAPHS) + 1  # and the stress matrix
        assert not clashes, "\n".join(clashes)
        # Nothing wider than the phone (a long file name wraps): no sideways scrolling, no zoom-out.
        assert dash_duo.driver.execute_script(
            "return [window.innerWidth, document.documentElement.scrollWidth]") == [390, 390]
    finally:
        dash_duo.driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})


def test_the_overlap_check_sees_an_overlap(dash_duo, web_server, labelling_worker, nilm_data_dir):
    """The check above can fail: the old layout's legend beside the modebar, on the stress figure
    moved under the toolbar."""
    as_phone(dash_duo.driver)
    try:
        open_page(dash_duo, web_server)
        dash_duo.wait_for_element("#nilm-stress .main-svg .hm", timeout=30)
        dash_duo.driver.execute_script(
            "const plot = document.querySelector('#nilm-stress .js-plotly-plot');"
            "return Plotly.relayout(plot, {'modebar.orientation': 'h', 'xaxis.side': 'top',"
            " 'margin.t': 20, 'margin.r': 10});")
        count, clashes = overlaps(dash_duo.driver, "#nilm-stress")
        assert count == 1 and clashes
    finally:
        dash_duo.driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})


def test_upload_input_is_labelled_and_the_page_is_keyboard_reachable(dash_duo, web_server,
                                                                     labelling_worker, main_file):
    open_page(dash_duo, web_server)
    label = dash_duo.driver.execute_script(
        "return document.querySelector('#nilm-upload input[type=file]').getAttribute('aria-label')")
    assert label == "Upload an aggregate recording (CSV)"
    upload(dash_duo, main_file)
    wait_for_plots(dash_duo)
    # Each chart is described for screen readers by a paragraph with its key numbers.
    for graph in GRAPHS:
        described = dash_duo.driver.execute_script(
            "const wrap = document.querySelector(arguments[0]).parentElement;"
            "const text = document.getElementById(wrap.getAttribute('aria-describedby'));"
            "return [wrap.getAttribute('role'), text.className, text.textContent];", graph)
        assert described[0] == "figure" and "visually-hidden" in described[1], graph
        assert any(ch.isdigit() for ch in described[2]) and len(described[2]) > 40, (graph, described)
    # Tab reaches the upload zone, the sample button and the download button, in that order.
    dash_duo.driver.execute_script("document.querySelector('nav a').focus()")  # the top
    reached = []
    while "nilm-download-button" not in reached and len(reached) < 80:
        # To the page, not to the focused element: keys sent to a file input choose a file.
        ActionChains(dash_duo.driver).send_keys(Keys.TAB).perform()
        focused = dash_duo.driver.switch_to.active_element
        reached.append(focused.get_attribute("id") or focused.get_attribute("aria-label") or "")
    wanted = ["Upload an aggregate recording (CSV)", "nilm-sample", "nilm-download-button"]
    positions = [reached.index(w) for w in wanted if w in reached]
    assert len(positions) == len(wanted) and positions == sorted(positions), reached
