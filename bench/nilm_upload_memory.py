"""Peak memory of a real `python app.py` while several large uploads reach /nilm at once.

    .venv/bin/python bench/nilm_upload_memory.py [--uploads 4] [--mb 49] [--concurrency 1 4]

For each NILM_LABEL_CONCURRENCY given, a fresh web server (embedded Redis, throwaway SQLite):
--uploads copies of a synthetic aggregate of about --mb MB (nilm.synth, laid out like the
recordings) are posted at the same moment to the upload callback, exactly as the browser posts
them (a data URL inside Dash's JSON body). Prints the server's peak resident memory (VmHWM,
target < 1.5 GB with the default bound of 1), its RSS before the uploads, and when each answer
arrived (seconds from the posts). Every answer must be a result (no alert), or the run fails.
"""
import argparse
import base64
import http.client
import json
import os
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from label_speed import write_synthetic  # noqa: E402  (bench/ is this script's folder)

from serve import free_port, start, start_embedded_redis, stop_all  # noqa: E402

BYTES_PER_ROW = 30.5  # write_synthetic's rows, on average


def status_mb(pid, key):
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {key} for process {pid}")


def wait_for(url, timeout=60):
    deadline = time.monotonic() + timeout
    while True:
        try:
            return urllib.request.urlopen(url, timeout=5)
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def upload_body(port, path):
    """The JSON body Dash's renderer posts for an upload, built from the app's own dependencies."""
    deps = json.load(wait_for(f"http://127.0.0.1:{port}/_dash-dependencies"))
    upload = next(d for d in deps if any(i["id"] == "nilm-upload" for i in d["inputs"]))
    outputs = [dict(zip(("id", "property"), part.rsplit(".", 1)))
               for part in upload["output"].strip(".").split("...")]
    contents = "data:text/csv;base64," + base64.b64encode(path.read_bytes()).decode()
    body = {
        "output": upload["output"], "outputs": outputs,
        "inputs": [{"id": "nilm-upload", "property": "contents", "value": contents},
                   {"id": "nilm-sample", "property": "n_clicks", "value": None}],
        "changedPropIds": ["nilm-upload.contents"],
        "state": [{"id": "nilm-upload", "property": "filename", "value": path.name}],
    }
    return json.dumps(body).encode()


def post(port, body, started, results, index):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=900)
    conn.request("POST", "/_dash-update-component", body=body,
                 headers={"Content-Type": "application/json"})
    response = conn.getresponse()
    answer = response.read()
    conn.close()
    ok = response.status == 200 and b"nilm-summary-cards" in answer
    results[index] = (time.perf_counter() - started, response.status, ok, len(answer))


def run(concurrency, path, uploads, workdir):
    port = free_port()
    redis_proc, redis_url = start_embedded_redis(workdir, free_port())
    env = dict(os.environ, PORT=str(port), REDIS_URL=redis_url,
               DATABASE_URL=f"sqlite:///{workdir / f'wattson-{concurrency}.db'}",
               NILM_LABEL_CONCURRENCY=str(concurrency))
    web = start([sys.executable, "app.py"], env, cwd=REPO, stdout=open(workdir / "web.log", "ab"),
                stderr=open(workdir / "web.log", "ab"))
    try:
        body = upload_body(port, path)
        before = status_mb(web.pid, "VmRSS")
        results = [None] * uploads
        started = time.perf_counter()
        threads = [threading.Thread(target=post, args=(port, body, started, results, i))
                   for i in range(uploads)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        peak = status_mb(web.pid, "VmHWM")
    finally:
        stop_all([redis_proc, web])
    if not all(r and r[2] for r in results):
        sys.exit(f"an upload failed: {results}; see {workdir / 'web.log'}")
    times = ", ".join(f"{r[0]:.1f}" for r in sorted(results))
    print(f"NILM_LABEL_CONCURRENCY={concurrency}: {uploads} uploads of "
          f"{path.stat().st_size / 1e6:.1f} MB: server peak {peak:.0f} MiB = {peak * 2**20 / 1e9:.2f} GB"
          f" (VmHWM; target < 1.5 GB), {before:.0f} MiB before; answers after {times} s")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--uploads", type=int, default=4)
    parser.add_argument("--mb", type=float, default=49)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        path = workdir / "big.csv"
        write_synthetic(path, int(args.mb * 1e6 / BYTES_PER_ROW))
        for concurrency in args.concurrency:
            run(concurrency, path, args.uploads, workdir)


if __name__ == "__main__":
    main()
