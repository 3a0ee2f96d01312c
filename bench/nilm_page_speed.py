"""Speed of the /nilm page: a labelling job's work, and upload-to-drawn-plots in Chromium.

    .venv/bin/python bench/nilm_page_speed.py [--runs 5] [--rows 200000] [--no-browser]

Job: what the labelling worker does with an upload (parse, predict, build the figures, encode
them as JSON, compress the result); median of --runs, for the main recording and for a synthetic
aggregate of --rows rows (nilm.synth, laid out like the recordings).
Browser: the product as it runs, each part a process: embedded Redis, `python app.py` on a
throwaway SQLite database, a worker on the `labelling` queue (`celery -A tasks worker -Q labelling
-c 1`), and headless Chromium. Once the page has loaded (plotly.js included), the time from handing
the file to the upload's <input type=file> until the summary and every figure's traces are drawn:
the POST to /nilm/upload, the job on the worker, the callback's wait and its answer. One upload
first, not counted (the worker process loads the model on its first job, once), then the median
of --runs (target for the main recording <= 1.0 s).
"""
import argparse
import os
import statistics
import sys
import tempfile
import time
import urllib.request
import zlib
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from label_speed import write_synthetic  # noqa: E402  (bench/ is this script's folder)
from plotly.io.json import to_json_plotly  # noqa: E402

from labelling.analysis import GRAPHS, analyse  # noqa: E402
from nilm.devices import MAIN_GLOB, data_dir, find_file  # noqa: E402
from nilm.io import read_recording  # noqa: E402
from serve import free_port, start, start_embedded_redis, stop_all  # noqa: E402


def job_seconds(path):
    """Seconds of one labelling job's work, and the size of its figures' JSON in MB."""
    start_s = time.perf_counter()
    analysis, labelled = analyse(read_recording(path.read_bytes(), path.name))
    body = to_json_plotly(analysis)
    zlib.compress(body.encode(), 1), zlib.compress(labelled, 1)
    return time.perf_counter() - start_s, len(body) / 1e6


def start_product(workdir):
    """Redis, the web app and a labelling worker as processes; (url, processes)."""
    port = free_port()
    redis_proc, redis_url = start_embedded_redis(workdir, free_port())
    env = dict(os.environ, PORT=str(port), REDIS_URL=redis_url,
               DATABASE_URL=f"sqlite:///{workdir / 'wattson.db'}")
    log = open(workdir / "services.log", "ab")
    procs = [redis_proc]
    procs.append(start([sys.executable, "-m", "celery", "-A", "tasks", "worker", "-Q", "labelling",
                        "-c", "1", "-n", "labelling@%h"], env, cwd=REPO, stdout=log, stderr=log))
    procs.append(start([sys.executable, "app.py"], env, cwd=REPO, stdout=log, stderr=log))
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            urllib.request.urlopen(url + "/nilm", timeout=5)
            return url, procs
        except OSError:
            if time.monotonic() > deadline:
                stop_all(procs)
                raise
            time.sleep(0.2)


def browser_seconds(url, path, runs):
    """Median seconds from handing the file to the page until every plot is drawn (after one
    uncounted run), and the uncounted first run's."""
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
        for _ in range(runs + 1):
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
    return statistics.median(times[1:]), times[0]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--no-browser", action="store_true")
    args = parser.parse_args(argv)
    main_file = find_file(data_dir(), MAIN_GLOB)
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        big = workdir / f"synthetic_{args.rows}.csv"
        write_synthetic(big, args.rows)
        files = {"main recording": main_file, f"{args.rows:,} rows": big}
        job_seconds(main_file)  # load the model once, as a worker does
        for label, path in files.items():
            runs = [job_seconds(path) for _ in range(args.runs)]
            seconds = statistics.median(r[0] for r in runs)
            print(f"job, {label} ({path.stat().st_size / 1e6:.1f} MB): median {seconds:.3f} s,"
                  f" figures {runs[0][1]:.2f} MB of JSON")
        if args.no_browser:
            return 0
        url, procs = start_product(workdir)
        try:
            for label, path in files.items():
                seconds, first = browser_seconds(f"{url}/nilm", path, args.runs)
                target = " (target <= 1.0 s)" if path == main_file else ""
                print(f"browser, {label}: upload to drawn plots, median {seconds:.3f} s{target};"
                      f" first upload {first:.3f} s")
        finally:
            stop_all(procs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
