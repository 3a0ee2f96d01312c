"""The monitor's 30 d window: from opening the page to the drawn chart, in headless Chromium.

Fills a temporary database (SQLite, or PostgreSQL on a throwaway cluster as the tests make it:
tests/pg.py) with 30 days of readings from 3 sensors every 10 s (~780,000 rows, in one
transaction), starts a real Redis and web server (`python app.py`) on it, and opens
`/?window=30d` in headless Chromium `--runs` times, each a fresh page load. A run ends when the
chart's band holds the window's buckets (readings/buckets.py); then where the time went: the
page's callback (the server's snapshot), the chart's Plotly draws, and the components
dash_renderer drew. Also times the server's bucket query of every sensor alone, in process.

    .venv/bin/python bench/long_window.py [--runs 5] [--days 30] [--period 10] [--db postgresql]

Target: median <= 1.5 s on the 2-core machine.
"""
import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import datetime, timedelta, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from serve import free_port, start, start_embedded_redis, stop_all  # noqa: E402
from tests.pg import PgCluster, shell  # noqa: E402

SENSORS = ("lab", "office", "cellar")


def fill(db_url, redis_url, days, period_s):
    """The schema (by the app's own migrations), then the readings in one transaction."""
    from readings import create_db_app

    create_db_app({"SQLALCHEMY_DATABASE_URI": db_url, "REDIS_URL": redis_url})
    now = datetime.now(timezone.utc)
    rows = [(sensor, now - timedelta(seconds=s), 20 + (s // 600) % 30 / 10 + i)
            for i, sensor in enumerate(SENSORS) for s in range(0, days * 86400, period_s)]
    connection = shell(db_url)
    try:
        if db_url.startswith("sqlite"):
            connection.execute("BEGIN")
            connection.executemany(
                "INSERT INTO readings (sensor_id, taken_at, temperature_c) VALUES (?, ?, ?)",
                [(sensor, at.strftime("%Y-%m-%d %H:%M:%S.%f"), value) for sensor, at, value in rows])
            connection.execute("COMMIT")
        else:
            with connection.cursor().copy(
                    "COPY readings (sensor_id, taken_at, temperature_c) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
            connection.execute("VACUUM ANALYZE readings")  # what autovacuum soon does
    finally:
        connection.close()
    return len(rows)


def query_seconds(db_url, redis_url, days, runs):
    """The database's part of a page's long window: the buckets of each of the sensors."""
    from readings import create_db_app, store
    from readings.buckets import bucket_size

    app = create_db_app({"SQLALCHEMY_DATABASE_URI": db_url, "REDIS_URL": redis_url}, upgrade=False)
    times = []
    with app.app_context():
        for _ in range(runs):
            end = datetime.now(timezone.utc)
            begin = time.perf_counter()
            for sensor in SENSORS:
                store.buckets(sensor, end - timedelta(days=days), end, bucket_size(days * 86400))
            times.append(time.perf_counter() - begin)
    return statistics.median(times)


def wait_for_web(url, timeout_s=120):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url + "healthz", timeout=2):
                return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"the web server did not answer at {url}")


# Counted from the page's start, before any of its scripts: each Plotly.react (a full chart
# draw), and each component dash_renderer draws anew (one store update that every component on
# the page then checks: the cost grows with the square of their number).
COUNTERS = """
window.benchCounts = {reacts: 0, components: 0};
let plotly, store;
Object.defineProperty(window, "Plotly", {configurable: true, get: () => plotly, set(value) {
  plotly = value;
  const react = value.react;
  value.react = function () { window.benchCounts.reacts += 1; return react.apply(this, arguments); };
}});
Object.defineProperty(window, "store", {configurable: true, get: () => store, set(value) {
  store = value;
  const dispatch = value.dispatch;
  value.dispatch = function (action) {
    if (action && action.type === "RESET_COMPONENT_STATE") window.benchCounts.components += 1;
    return dispatch.apply(this, arguments);
  };
}});
"""
# The chart is drawn: its band holds the window's buckets. Then what it took: the page's
# callback (request to response, ms from the start of the load) and the counts.
DRAWN = """
const g = document.querySelector("#monitor-graph .js-plotly-plot");
if (!(g && g.data && g.data[1].y.length > 1000 && g.querySelector(".main-svg .trace"))) return null;
const call = performance.getEntriesByType("resource").find((e) => e.name.includes("_dash-update-component"));
return Object.assign({callback: call ? [call.startTime, call.responseEnd] : null,
                      drawn: performance.now()}, window.benchCounts);
"""


def browser_runs(url, runs):
    """Each run: seconds to the drawn chart, and what the page reported (DRAWN)."""
    from selenium import webdriver
    from selenium.webdriver.support.ui import WebDriverWait

    options = webdriver.ChromeOptions()
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--window-size=1400,1000"):
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options)
    driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": COUNTERS})
    measured = []
    try:
        driver.get(url)  # once, so the browser has the scripts cached as a returning user would
        for _ in range(runs):
            driver.get("about:blank")
            begin = time.perf_counter()
            driver.get(url)
            report = WebDriverWait(driver, 60, poll_frequency=0.01).until(
                lambda d: d.execute_script(DRAWN))
            measured.append((time.perf_counter() - begin, report))
    finally:
        driver.quit()
    return measured


def breakdown(measured):
    """Medians of where a load's time went, in the page's own clock (ms from its start)."""
    def median_of(key):
        return statistics.median(key(report) for _, report in measured)
    called = [r for _, r in measured if r["callback"]]
    parts = [f"chart drawn at {median_of(lambda r: r['drawn']):.0f} ms"]
    if called:
        parts.append("page callback {:.0f}-{:.0f} ms".format(
            statistics.median(r["callback"][0] for r in called),
            statistics.median(r["callback"][1] for r in called)))
    parts.append(f"Plotly.react calls {median_of(lambda r: r['reacts']):.0f}")
    parts.append(f"components drawn {median_of(lambda r: r['components']):.0f}")
    return "; ".join(parts)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--period", type=int, default=10)
    parser.add_argument("--db", default="sqlite", choices=["sqlite", "postgresql"])
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        redis_proc, redis_url = start_embedded_redis(Path(tmp) / "redis")
        procs = [redis_proc]
        cluster = PgCluster().start() if args.db == "postgresql" else None
        try:
            db_url = cluster.create_database() if cluster else f"sqlite:///{Path(tmp) / 'long.db'}"
            begin = time.perf_counter()
            count = fill(db_url, redis_url, args.days, args.period)
            print(f"{args.db}: {count:,} rows inserted in {time.perf_counter() - begin:.1f} s",
                  flush=True)
            print(f"buckets of {len(SENSORS)} sensors' {args.days} d in the database: median "
                  f"{query_seconds(db_url, redis_url, args.days, args.runs):.3f} s", flush=True)
            env = dict(os.environ, DATABASE_URL=db_url, REDIS_URL=redis_url, PORT=str(free_port()),
                       SENSORS=",".join(SENSORS), SAMPLE_PERIOD_S=str(args.period))
            env.pop("SENSOR_URL", None)
            procs.append(start([sys.executable, "app.py"], env, cwd=REPO,
                               stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT))
            url = f"http://127.0.0.1:{env['PORT']}/"
            wait_for_web(url)
            measured = browser_runs(url + f"?window={args.days}d", args.runs)
            times = [seconds for seconds, _ in measured]
            print(f"browser, open /?window={args.days}d to the drawn chart: median "
                  f"{statistics.median(times):.3f} s (runs {', '.join(f'{t:.2f}' for t in times)};"
                  " target <= 1.5 s)")
            print(f"  where it went (medians): {breakdown(measured)}")
        finally:
            stop_all(procs)
            if cluster:
                cluster.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
