"""The global parts of accessibility (issue 11 item 4) in real headless Chromium: the page's
language, WCAG AA contrast of what the browser draws for the feed-status badge and the alerts,
the navbar folding behind a toggler on a phone, and a visible focus for the keyboard."""
from selenium.webdriver.common.actions.action_builder import ActionBuilder
from selenium.webdriver.common.keys import Keys

from tests.conftest import wait_until

# assets/monitor.js STATUS_COLORS: the badge's colour in each state of the feed.
BADGE_COLORS = ["success", "secondary", "warning", "danger"]
AA_TEXT = 4.5  # WCAG 2 AA for text under 18.66 px bold (the badge is 12 px, the alert 16 px)

COLORS_JS = """
const style = getComputedStyle(arguments[0]);
return [style.color, style.backgroundColor, style.fontSize];
"""


def channel(value):
    c = value / 255
    return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4


def luminance(rgb):
    r, g, b = (channel(v) for v in rgb)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def parse_rgb(css):
    """(r, g, b) from getComputedStyle's "rgb(r, g, b)", refusing a see-through colour, whose
    contrast would depend on what lies beneath."""
    parts = [float(p) for p in css[css.index("(") + 1:-1].split(",")]
    assert len(parts) == 3 or parts[3] == 1, f"translucent colour {css}"
    return parts[:3]


def contrast(foreground, background):
    light, dark = sorted((luminance(parse_rgb(foreground)), luminance(parse_rgb(background))),
                         reverse=True)
    return (light + 0.05) / (dark + 0.05)


def test_contrast_formula_matches_wcag_reference_values():
    assert round(contrast("rgb(255, 255, 255)", "rgb(0, 0, 0)"), 2) == 21.0
    assert round(contrast("rgb(255, 255, 255)", "rgb(231, 76, 60)"), 2) == 3.82  # issue 11's 3.8


def open_page(dash_duo, server, path="/"):
    dash_duo.server_url = server.url + path
    dash_duo.wait_for_element("#feed-status" if path == "/" else "nav")


def test_the_page_says_its_language(dash_duo, web_server):
    open_page(dash_duo, web_server)
    assert dash_duo.driver.execute_script("return document.documentElement.lang") == "en"


def test_the_feed_status_badge_meets_aa_in_every_colour_it_takes(dash_duo, web_server):
    open_page(dash_duo, web_server)
    badge = dash_duo.find_element("#feed-status")
    assert "monitor-badge" in badge.get_attribute("class")
    for color in BADGE_COLORS:
        # The colour monitor.js gives each state, on the page's own badge and stylesheets.
        dash_duo.driver.execute_script(
            "const el = arguments[0];"
            "el.className = el.className.replace(/\\bbg-\\w+/, 'bg-' + arguments[1]);",
            badge, color)
        text, fill, size = dash_duo.driver.execute_script(COLORS_JS, badge)
        ratio = contrast(text, fill)
        assert ratio >= AA_TEXT, f"badge bg-{color}: {text} on {fill} at {size} is {ratio:.2f}:1"


def test_alerts_meet_aa(dash_duo, web_server):
    open_page(dash_duo, web_server)
    for color in ("danger", "warning", "success", "secondary"):
        alert = dash_duo.driver.execute_script(
            "const el = document.createElement('div');"
            "el.className = 'alert alert-' + arguments[0]; el.textContent = 'Something failed';"
            "document.querySelector('.container').appendChild(el); return el;", color)
        text, fill, size = dash_duo.driver.execute_script(COLORS_JS, alert)
        ratio = contrast(text, fill)
        assert ratio >= AA_TEXT, f"alert-{color}: {text} on {fill} at {size} is {ratio:.2f}:1"


def nav_links_shown(dash_duo):
    return [link.is_displayed() for link in dash_duo.find_elements("#navbar-collapse .nav-link")]


def test_the_navbar_folds_behind_a_toggler_on_a_phone(dash_duo, web_server):
    dash_duo.driver.set_window_size(390, 844)
    try:
        open_page(dash_duo, web_server)
        toggler = dash_duo.find_element("#navbar-toggler")
        assert toggler.is_displayed()
        assert nav_links_shown(dash_duo) and not any(nav_links_shown(dash_duo))
        toggler.click()
        wait_until(lambda: all(nav_links_shown(dash_duo)), timeout=10, what="the menu to open")
        toggler.click()
        wait_until(lambda: not any(nav_links_shown(dash_duo)), timeout=10,
                   what="the menu to close")
    finally:
        dash_duo.driver.set_window_size(1400, 1000)


def test_on_a_desktop_the_links_show_without_a_toggler(dash_duo, web_server):
    open_page(dash_duo, web_server)
    assert not dash_duo.find_element("#navbar-toggler").is_displayed()
    assert nav_links_shown(dash_duo) and all(nav_links_shown(dash_duo))


def test_the_keyboard_reaches_the_nav_links_and_sees_where_it_is(dash_duo, web_server):
    open_page(dash_duo, web_server)
    # Start where a person does, at the top: a click in the middle of the (tall) monitor page
    # lands among its controls, and Tab would go on from there.
    dash_duo.driver.execute_script("window.scrollTo(0, 0)")
    top = ActionBuilder(dash_duo.driver)
    top.pointer_action.move_to_location(5, 5).click()
    top.perform()
    reached = {}
    for _ in range(8):
        dash_duo.driver.switch_to.active_element.send_keys(Keys.TAB)
        focused = dash_duo.driver.switch_to.active_element
        outline = dash_duo.driver.execute_script(
            "const s = getComputedStyle(arguments[0]); return [s.outlineStyle, s.outlineWidth];",
            focused)
        reached[focused.text] = outline
    for name in ("Wattson", "Monitor"):
        assert name in reached, f"Tab never reached {name}: {list(reached)}"
        style, width = reached[name]
        assert style != "none" and float(width.rstrip("px")) >= 2, (name, style, width)


# Every piece of text under arguments[0] that is drawn (not in a chart's SVG, not visually
# hidden): its colour, the background layers beneath it up to the first opaque one, its size and
# weight. Translucent layers are blended in Python.
TEXTS_JS = """
const out = [];
for (const el of document.querySelectorAll(arguments[0] + ' *')) {
    if (el.closest('svg') || el.closest('.visually-hidden') || !el.getClientRects().length) continue;
    if (!Array.from(el.childNodes).some(n => n.nodeType === 3 && n.textContent.trim())) continue;
    const style = getComputedStyle(el);
    if (style.visibility === 'hidden' || Number(style.opacity) === 0) continue;
    const layers = [];
    for (let node = el; node; node = node.parentElement) {
        const bg = getComputedStyle(node).backgroundColor;
        if (bg !== 'rgba(0, 0, 0, 0)' && bg !== 'transparent') {
            layers.push(bg);
            if (!bg.startsWith('rgba')) break;
        }
    }
    out.push([el.tagName + '#' + el.id + '.' + el.className, style.color, layers,
              parseFloat(style.fontSize), Number(style.fontWeight), el.textContent.trim().slice(0, 300)]);
}
return out;
"""


def rgba(css):
    parts = [float(p) for p in css[css.index("(") + 1:-1].split(",")]
    return parts[:3], (parts[3] if len(parts) == 4 else 1.0)


def blend(top, below):
    (rgb, alpha) = rgba(top)
    return [alpha * c + (1 - alpha) * b for c, b in zip(rgb, below)]


def drawn_contrast(color, layers):
    """Contrast of a text colour over its background layers (top first), white beneath all."""
    background = [255.0, 255.0, 255.0]
    for layer in reversed(layers):
        background = blend(layer, background)
    text = blend(color, background)
    as_css = "rgb({}, {}, {})".format
    return contrast(as_css(*text), as_css(*background))


def test_drawn_contrast_blends_translucent_layers():
    assert round(drawn_contrast("rgb(0, 0, 0)", ["rgba(0, 0, 0, 0.5)"]), 2) == round(
        contrast("rgb(0, 0, 0)", "rgb(127.5, 127.5, 127.5)"), 2)  # half-black on white: mid grey
    assert drawn_contrast("rgba(0, 0, 0, 0)", ["rgb(255, 255, 255)"]) == 1.0


def test_every_text_on_nilm_meets_aa(dash_duo, web_server, labelling_worker, tmp_path):
    """/nilm with a result, the doubt list, the preview, the stress matrix and an error alert."""
    from tests.test_page_nilm import open_page, upload, wait_for_plots

    open_page(dash_duo, web_server)
    dash_duo.find_element("#nilm-sample").click()
    wait_for_plots(dash_duo)
    bad = tmp_path / "bad.csv"
    bad.write_bytes(b"1536129671.0,24.41,17.3\n1536129672.0,12.21,abc\n")
    upload(dash_duo, bad)
    dash_duo.wait_for_contains_text("#nilm-alert", "bad.csv line 2", timeout=60)
    texts = dash_duo.driver.execute_script(TEXTS_JS, "body")
    # What the page shows after the sample is among the texts checked: its name, the doubt list,
    # the preview, the stress table and the alert.
    shown = " | ".join(t[5] for t in texts)
    for part in ("Results for ", "Chosen: ", "runner-up: ", "only_screen1", "bad.csv line 2"):
        assert part in shown, part
    failing = []
    for where, color, layers, size, weight, text in texts:
        large = size >= 24 or (size >= 18.66 and weight >= 700)
        ratio = drawn_contrast(color, layers)
        if ratio < (3.0 if large else AA_TEXT):
            failing.append(f"{where} {text!r}: {color} on {layers} at {size}px is {ratio:.2f}:1")
    assert len(texts) > 50 and not failing, "\n".join(failing)


def test_the_monitor_chart_is_described_in_words(dash_duo, web_server, db_exec):
    """Issue 11 item 4: the chart has a text alternative a screen reader reads, kept current."""
    db_exec("INSERT INTO readings (sensor_id, temperature_c) VALUES ('sensor-1', 21.5)")
    open_page(dash_duo, web_server)
    # Read in one script each time: React may put a new node in an element's place between two
    # WebDriver calls (a stale element), while a person's screen reader reads the page as it is.
    role, described_by = dash_duo.driver.execute_script(
        "const figure = document.getElementById('monitor-graph').parentElement;"
        "return [figure.getAttribute('role'), figure.getAttribute('aria-describedby')];")
    assert role == "figure"

    def summary():
        return dash_duo.driver.execute_script(
            "const e = document.getElementById(arguments[0]); return e ? e.textContent : '';", described_by)

    wait_until(lambda: "latest 21.5 °C" in summary(), timeout=30, what="the summary to name the reading")
    text = summary()
    assert text.startswith("Temperature over the last 1 hour (") and "sensor-1: 21.5 °C" in text, text
    db_exec("INSERT INTO readings (sensor_id, temperature_c) VALUES ('sensor-1', 23.0)")
    wait_until(lambda: "latest 23.0 °C" in summary(), timeout=30,
               what="the summary to follow a pushed reading")


# The controls a person can type in or choose with that have no accessible name: no <label for>,
# no wrapping <label>, no aria-label or aria-labelledby.
UNNAMED_JS = """
const controls = 'input, select, textarea, [role="combobox"], [role="listbox"]';
return Array.from(document.querySelectorAll(controls)).filter(function (e) {
  // Not exposed to assistive technology (a dropdown's internal focus target), so no name needed.
  if (e.type === "hidden" || e.closest('[aria-hidden="true"]')) return false;
  const byFor = e.id && document.querySelector('label[for="' + CSS.escape(e.id) + '"]');
  const named = byFor || e.closest("label") || (e.getAttribute("aria-label") || "").trim()
    || e.getAttribute("aria-labelledby");
  return !named;
}).map((e) => e.outerHTML.slice(0, 300));
"""


def test_every_input_on_the_monitor_is_labelled(dash_duo, web_server, db_exec):
    """Issue 11 item 4: every input labelled (the sensor chooser, the toggles, the threshold form)."""
    db_exec("INSERT INTO readings (sensor_id, temperature_c) VALUES ('sensor-1', 21.5)")
    open_page(dash_duo, web_server)
    dash_duo.wait_for_element("#monitor-graph .main-svg", timeout=30)
    assert dash_duo.driver.execute_script("return document.querySelectorAll('input').length") > 3
    assert dash_duo.driver.execute_script(UNNAMED_JS) == []
