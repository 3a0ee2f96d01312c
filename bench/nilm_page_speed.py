"""Speed of the /nilm page: server time per upload, and upload-to-drawn-plots in Chromium.

    .venv/bin/python bench/nilm_page_speed.py [--runs 5] [--rows 200000] [--no-browser]

Server: what the upload callback does (decode the data URL, parse, predict, build the figures)
plus the JSON encoding Dash applies to its outputs; median of --runs, for the main recording and
for a synthetic aggregate of --rows rows (nilm.synth, laid out like the recordings).
Browser: the page served in-process, headless Chromium; once the page has loaded (plotly.js
included), the time from handing the file to the upload's <input type=file> until the summary
and every figure's traces are drawn (target for the
main recording <= 2 s). Median of --runs.
"""
import argparse
import base64
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import dash  # noqa: E402
from label_speed import write_synthetic  # noqa: E402  (bench/ is this script's folder)
from plotly.io.json import to_json_plotly  # noqa: E402

from nilm.devices import MAIN_GLOB, data_dir, find_file  # noqa: E402
from nilm.io import read_recording  # noqa: E402
from serve import free_port  # noqa: E402

GRAPHS = ("aggregate", "timeline", "shares", "levels")


def make_app():
    app = dash.Dash(__name__, use_pages=True, pages_folder="")
    import pages.nilm as page
    # Imported by hand (no pages folder, so no monitor page and its database): register its layout.
    dash.page_registry["pages.nilm"]["layout"] = page.layout
    app.layout = dash.html.Div(dash.page_container)
    return app, page


def server_seconds(page, path):
    """Seconds of one upload's server work, and the size of the response in MB."""
    contents = "data:text/csv;base64," + base64.b64encode(path.read_bytes()).decode()
    start = time.perf_counter()
    result = page.analyse(read_recording(page.decode_upload(contents, path.name), path.name))
    body = to_json_plotly([result[key] for key in GRAPHS])
    return time.perf_counter() - start, len(body) / 1e6


def browser_seconds(url, path, runs):
    from selenium import webdriver
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    options = webdriver.ChromeOptions()
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--window-size=1400,1000"):
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options)
    drawn = ["#nilm-summary-cards"] + [f"#nilm-{g} .main-svg .trace" for g in GRAPHS]
    times = []
    try:
        for _ in range(runs):
            driver.get(url)  # a fresh page each run: nothing drawn yet
            # The page is loaded: the upload is there and plotly.js has arrived.
            WebDriverWait(driver, 20).until(
                lambda d: d.find_elements(By.CSS_SELECTOR, "#nilm-upload input[type=file]")
                and d.execute_script("return window.Plotly !== undefined"))
            start = time.perf_counter()
            driver.find_element(By.CSS_SELECTOR, "#nilm-upload input[type=file]").send_keys(str(path))
            WebDriverWait(driver, 120, poll_frequency=0.01).until(
                lambda d: all(d.find_elements(By.CSS_SELECTOR, css) for css in drawn))
            times.append(time.perf_counter() - start)
    finally:
        driver.quit()
    return statistics.median(times)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--no-browser", action="store_true")
    args = parser.parse_args(argv)
    app, page = make_app()
    main_file = find_file(data_dir(), MAIN_GLOB)
    with tempfile.TemporaryDirectory() as tmp:
        big = Path(tmp) / f"synthetic_{args.rows}.csv"
        write_synthetic(big, args.rows)
        files = {"main recording": main_file, f"{args.rows:,} rows": big}
        page.analyse(read_recording(main_file))  # load the model once, as a server does
        for label, path in files.items():
            runs = [server_seconds(page, path) for _ in range(args.runs)]
            seconds = statistics.median(r[0] for r in runs)
            print(f"server, {label} ({path.stat().st_size / 1e6:.1f} MB): median {seconds:.3f} s,"
                  f" figures {runs[0][1]:.2f} MB of JSON")
        if args.no_browser:
            return 0
        port = free_port()
        threading.Thread(target=app.run, kwargs=dict(port=port, threaded=True), daemon=True).start()
        time.sleep(1.0)
        for label, path in files.items():
            seconds = browser_seconds(f"http://127.0.0.1:{port}/nilm", path, args.runs)
            target = " (target <= 2 s)" if path == main_file else ""
            print(f"browser, {label}: upload to drawn plots, median {seconds:.3f} s{target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
