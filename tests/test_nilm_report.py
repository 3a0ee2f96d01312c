"""python -m nilm.report: one self-contained HTML file with the exploratory analysis."""
import html
import re
import subprocess
import sys

import numpy as np
import pytest

from nilm import report, texts
from nilm.devices import REPO_ROOT, data_dir


def run_report(*args):
    return subprocess.run([sys.executable, "-m", "nilm.report", *args], cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def html_text(tmp_path_factory):
    output = tmp_path_factory.mktemp("report") / "nilm_report.html"
    done = run_report("--data", str(data_dir()), "-o", str(output))
    assert done.returncode == 0, done.stderr
    return output.read_text(encoding="utf-8")


def test_report_is_self_contained_with_plotly_inlined_once(html_text):
    assert not re.search(r"<script[^>]*\bsrc=", html_text)
    assert not re.search(r"<link[^>]*\bhref=", html_text)
    # The plotly.js bundle's licence banner appears once; every figure reuses it.
    assert html_text.count("plotly.js v") == 1
    assert html_text.count("Plotly.newPlot(") >= 9


def test_report_shows_every_part_the_issue_asks_for(html_text):
    for heading in ("What the data shows", "The single-device recordings",
                    "The main recording and its labels", "every state combination",
                    "How the model was judged"):
        assert heading in html_text
    for device in ("PC screen1", "PC screen2", "Temperature sensor"):
        assert f"{device}: levels and mixture" in html_text
    assert "Quantisation." in html_text and "12.21 mA" in html_text
    assert "Inrush spikes." in html_text and "5054" in html_text  # the sensor's switch-on
    assert "NilmModel: GMM states" in html_text and "Oracle" in html_text
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in html_text


def test_report_shows_the_stress_matrix_and_names_the_scenarios_below_target(html_text):
    from nilm.evaluate import load_results

    matrix = load_results()["stress"]
    section = html_text[html_text.index("How the model holds up under stress"):]
    for row in matrix["scenarios"]:
        assert f"<td>{row['name']}</td>" in section
        if row["reason"]:
            assert html.escape(row["reason"]) in section
    assert "near ceiling" in section


def test_report_says_which_parts_of_the_main_file_are_doubtful_and_why(html_text):
    from nilm import doubt
    from nilm.io import load_main
    from nilm.model import load

    main = load_main(data_dir())
    prediction = load().predict_details(main)
    segments = doubt.doubtful_segments(main.timestamp, prediction.states, prediction.confidence,
                                       prediction.runner_up)
    section = html_text[html_text.index("Which parts of the main file are doubtful"):]
    section = section[:section.index("</section>")]
    assert f"{doubt.share_doubtful(prediction.confidence):.1%} of the rows" in section
    assert f"({len(segments)} stretches" in section
    for segment in segments[:texts.MAX_DOUBTS]:
        assert html.escape(f"Chosen: {doubt.explanation(segment.chosen)}; "
                           f"runner-up: {doubt.explanation(segment.runner_up)}") in section


def test_report_cli_fails_cleanly_on_a_missing_data_directory(tmp_path):
    output = tmp_path / "r.html"
    done = run_report("--data", str(tmp_path / "nowhere"), "-o", str(output))
    assert done.returncode == 2
    assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1
    assert not output.exists()


def test_quantisation_step_and_effective_ratio_on_hand_made_values():
    step = report.quantisation_step([np.array([0.0, 12.21, 24.41]), np.array([36.62, 207.52])])
    assert step == pytest.approx(12.21, abs=0.01)
    ratio, (low, high) = report.effective_ratio([np.array([0.0, 100.0, 200.0])],
                                                [np.array([0.0, 70.7, 141.5])])
    assert ratio == pytest.approx(0.7073, abs=1e-3) and low <= ratio <= high


def test_ambiguous_pairs_lists_close_joint_states_nearest_first():
    combos = [((0, 0, 0), 0.0), ((2, 1, 0), 230.0), ((1, 2, 1), 232.0), ((2, 2, 1), 420.0),
              ((2, 2, 0), 410.0)]
    found = report.ambiguous_pairs(combos, tolerance=12.21)
    assert [(a, b) for a, _, b, _ in found] == [
        ("S1 ON · S2 IDLE · T OFF", "S1 IDLE · S2 ON · T ON"),
        ("S1 ON · S2 ON · T ON", "S1 ON · S2 ON · T OFF"),
    ]


def test_report_on_a_phone_has_no_overlapping_chart_text(html_text, dash_duo, tmp_path):
    """At 390 px, as a phone renders it (the viewport meta honoured): no chart text box overlaps
    another or the toolbar, and the page does not scroll sideways."""
    from tests.test_page_nilm_phone import as_phone, overlaps

    page = tmp_path / "report.html"
    page.write_text(html_text, encoding="utf-8")
    as_phone(dash_duo.driver)
    try:
        dash_duo.driver.get(page.as_uri())
        dash_duo.wait_for_element("#nilm-report-end", timeout=60)
        assert dash_duo.driver.execute_script("return window.innerWidth") == 390
        count, clashes = overlaps(dash_duo.driver, "main")
        assert count == html_text.count("Plotly.newPlot(")
        assert not clashes, "\n".join(clashes)
        assert dash_duo.driver.execute_script(
            "return document.documentElement.scrollWidth <= window.innerWidth")
    finally:
        dash_duo.driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})


def test_every_chart_in_the_report_is_described_in_words(html_text):
    """Issue 11 item 4: a screen reader gets each chart's text alternative, with its numbers."""
    described = re.findall(r'<div role="figure" aria-label="[^"]+" aria-describedby="([^"]+)">', html_text)
    assert len(described) == html_text.count("Plotly.newPlot(") >= 9
    assert len(set(described)) == len(described)
    for text_id in described:
        text = re.search(rf'<p id="{text_id}" class="visually-hidden">([^<]+)</p>', html_text)
        assert text and re.search(r"\d", text.group(1)), text_id  # words with numbers in them
