"""The first load's weight (issue 11 item 3) against a real web server: responses compressed in
what the browser accepts, the export still streamed when compressed, and static URLs cached for
as long as their content cannot change."""
import gzip
import os
import re
import signal
import sqlite3
import subprocess

import brotli
import plotly.graph_objects as go
import pytest
import requests
from plotly.basedatatypes import BaseTraceType
from plotly.offline import get_plotlyjs_version

from tests.conftest import PYTHON, REPO, free_port, uses_instance_dir, wait_until

# dcc.Graph's own plotly.js, which the page no longer loads (still served, fingerprinted or not).
PLOTLY = "/_dash-component-suites/plotly/package_data/plotly.min.js"
BUNDLE = "/assets/vendor/plotly-cartesian.min.js"


def fetch(server, path, encoding, **headers):
    """The reply with its body as sent (not decoded), asking for `encoding`."""
    reply = requests.get(server.url + path, headers={"Accept-Encoding": encoding, **headers},
                         stream=True, timeout=60)
    reply.sent = reply.raw.read(decode_content=False)
    return reply


def decode(reply):
    encoding = reply.headers.get("Content-Encoding")
    return {"br": brotli.decompress, "gzip": gzip.decompress, None: bytes}[encoding](reply.sent)


def page_urls(server):
    html = requests.get(server.url + "/", timeout=60).text
    return re.findall(r'(?:src|href)="(/[^"]+)"', html)


def bundle_url(server):
    """The one plotly.js the page names: the vendored bundle, with its version stamp."""
    [url] = [u for u in page_urls(server) if "plotly" in u]
    assert url.startswith(BUNDLE + "?m="), url
    return url


@pytest.mark.parametrize("encoding", ["br", "gzip"])
@pytest.mark.parametrize("what", ["page", "plotly.js"])
def test_the_page_and_the_plotly_bundle_are_compressed(web_server, what, encoding):
    path = "/" if what == "page" else bundle_url(web_server)
    plain = fetch(web_server, path, "identity")
    packed = fetch(web_server, path, f"{encoding}, deflate")
    assert plain.headers.get("Content-Encoding") is None
    assert packed.headers["Content-Encoding"] == encoding  # brotli too: not sent as a stream
    assert "Accept-Encoding" in packed.headers["Vary"]  # a shared cache keeps both apart
    if what == "plotly.js":  # 1.5 MB as it is, the bulk of the first load
        assert decode(packed) == plain.sent
        assert len(packed.sent) < len(plain.sent) / 2.5
        assert int(packed.headers["Content-Length"]) == len(packed.sent)
        again = fetch(web_server, path, f"{encoding}, deflate")  # from the compressed cache
        assert again.sent == packed.sent
    else:  # the page carries a per-request id, so only its frame compares
        assert decode(packed).startswith(b'<!DOCTYPE html>\n<html lang="en">')
        assert decode(packed).rstrip().endswith(b"</html>")


def test_a_range_of_the_bundle_leaves_its_compressed_copy_whole(web_server):
    url = bundle_url(web_server)
    plain = fetch(web_server, url, "identity").sent
    part = fetch(web_server, url, "identity", Range="bytes=0-99999")
    assert part.status_code == 206 and part.sent == plain[:100_000]
    fetch(web_server, url, "br", Range="bytes=0-99999")  # first of its URL and encoding
    assert decode(fetch(web_server, url, "br")) == plain


def test_a_compressed_export_is_still_streamed_and_whole(web_server, db_exec):
    count = 20_000
    db_exec("WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i + 1 < ?) "
            "INSERT INTO readings (sensor_id, taken_at, temperature_c) "
            "SELECT 'bulk', strftime('%Y-%m-%d %H:%M:%f', '2026-11-28 12:00:00', i || ' seconds'), "
            "i % 100 FROM n", (count,))
    path = "/api/readings.csv?from=2026-11-28T00:00:00Z&to=2026-11-29T00:00:00Z"
    plain = fetch(web_server, path, "identity")
    # gzip even where brotli is accepted: brotli's encoder would hold the export back.
    for accepted in ("gzip", "br, gzip"):
        with requests.get(web_server.url + path, headers={"Accept-Encoding": accepted},
                          stream=True, timeout=60) as reply:
            assert reply.headers["Content-Encoding"] == "gzip"
            assert reply.headers.get("Transfer-Encoding") == "chunked"
            assert "Content-Length" not in reply.headers
            chunks = list(reply.raw.read_chunked(decode_content=False))
        assert len(chunks) > 1  # sent as it is compressed, not gathered first
        reply.sent = b"".join(chunks)
        assert decode(reply) == plain.sent
    assert plain.sent.count(b"\n") == count + 1


def test_fingerprinted_component_urls_and_versioned_assets_are_immutable(web_server):
    urls = page_urls(web_server)
    suites = [u for u in urls if u.startswith("/_dash-component-suites/")]
    assets = [u for u in urls if u.startswith("/assets/")]
    assert suites and all("?m=" in u for u in assets) and any(".css?" in u for u in assets)
    for url in suites + assets:
        reply = requests.get(web_server.url + url, timeout=60)
        assert reply.status_code == 200, url
        assert reply.headers["Cache-Control"] == "public, max-age=31536000, immutable", url


def test_an_asset_without_its_version_is_revalidated_every_time(web_server):
    first = requests.get(web_server.url + "/assets/app.css", timeout=60)
    assert first.headers["Cache-Control"] == "no-cache"
    assert first.headers["ETag"]
    again = requests.get(web_server.url + "/assets/app.css", timeout=60,
                         headers={"If-None-Match": first.headers["ETag"]})
    assert again.status_code == 304
    assert again.content == b""


def test_pages_and_the_api_are_not_cached_as_static(web_server):
    for path in ("/", "/api/readings", "/_dash-layout"):
        reply = requests.get(web_server.url + path, timeout=60)
        assert reply.status_code == 200, path
        assert "immutable" not in reply.headers.get("Cache-Control", ""), path


def test_only_immutable_urls_are_served_from_the_compressed_cache(web_server):
    # The page carries a per-request id: two compressed answers must differ.
    first, second = (decode(fetch(web_server, "/", "br")) for _ in range(2))
    assert first != second
    # Any version stamp is a fingerprint to Dash (check_fingerprint): the same file is served.
    stamped = PLOTLY.replace("plotly.min.js", "plotly.v9_9_9m1.min.js")
    plain = fetch(web_server, stamped, "identity").sent
    for _ in range(2):  # the second from the cache, still whole
        assert decode(fetch(web_server, stamped, "br")) == plain


def trace_types_drawn():
    """The plotly trace types our code builds (`go.Scatter(...)` and the like), by their type."""
    names = set()
    for package in ("readings", "nilm", "labelling", "pages"):
        for source in (REPO / package).rglob("*.py"):
            names |= set(re.findall(r"\bgo\.([A-Z]\w*)\(", source.read_text()))
    classes = [getattr(go, name) for name in names]
    return {cls().type for cls in classes if issubclass(cls, BaseTraceType)}


def test_the_page_draws_with_the_vendored_bundle_alone(dash_duo, web_server, db_exec):
    db_exec("INSERT INTO readings (sensor_id, temperature_c) VALUES ('sensor-1', 21.5)")
    dash_duo.driver.get(web_server.url + "/")
    dash_duo.wait_for_element("#monitor-graph .main-svg .scatterlayer .trace", timeout=30)
    dash_duo.wait_for_text_to_equal('.monitor-sensor-card[data-sensor="sensor-1"] .monitor-latest', "21.5 °C",
                                    timeout=30)
    loaded = dash_duo.driver.execute_script(
        "return performance.getEntriesByType('resource').map(r => new URL(r.name).pathname)")
    assert [path for path in loaded if "plotly" in path] == [BUNDLE]  # not dcc's 4.8 MB too
    version, traces = dash_duo.driver.execute_script(
        "return [Plotly.version, Object.keys(Plotly.PlotSchema.get().traces)]")
    # The figures plotly for Python builds are for its own plotly.js major version.
    assert version.split(".")[0] == get_plotlyjs_version().split(".")[0], version
    drawn = trace_types_drawn()
    assert {"scatter", "bar", "heatmap"} <= drawn  # the scan finds what the pages use
    assert drawn <= set(traces), f"not in the bundle: {drawn - set(traces)}"


@uses_instance_dir
@pytest.mark.usefixtures("kill_leftovers")
def test_make_run_says_what_matters_and_not_each_sample_or_request(tmp_path):
    """Issue 11 item 6: the terminal of `make run` once readings flow and a page was loaded."""
    port = free_port()
    env = dict(os.environ, PORT=str(port), SAMPLE_PERIOD_S="1",
               DATABASE_URL=f"sqlite:///{tmp_path / 'run.db'}")
    env.pop("REDIS_URL", None)
    log = tmp_path / "run.log"
    proc = subprocess.Popen([PYTHON, "serve.py"], cwd=REPO, env=env, start_new_session=True,
                            stdout=open(log, "wb"), stderr=subprocess.STDOUT)
    try:
        wait_until(lambda: "Wattson on " in log.read_text(), timeout=120, what="the URL")
        for path in ("/", "/assets/app.css", "/healthz"):
            requests.get(f"http://127.0.0.1:{port}{path}", timeout=30)

        def readings():
            with sqlite3.connect(tmp_path / "run.db") as db:
                return db.execute("SELECT count(*) FROM readings").fetchone()[0]

        wait_until(lambda: readings() >= 3, timeout=60, what="readings from the worker")
    finally:
        os.killpg(proc.pid, signal.SIGINT)
        assert proc.wait(timeout=60) == 0
    text = log.read_text()
    assert "Task tasks" not in text and "succeeded in" not in text  # Celery's lines per sample
    assert '"GET /' not in text  # no request log
    assert "development server" not in text.lower()
    assert "setup plugin" not in text
    assert text.count("Wattson on ") == 1
