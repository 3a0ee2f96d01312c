"""Peak memory of the web process and of the labelling worker while large uploads reach /nilm.

    .venv/bin/python bench/nilm_upload_memory.py [--uploads 4] [--mb 49] [--concurrency 1]

The product as processes (embedded Redis, `python app.py` on a throwaway SQLite database, a
worker `celery -A tasks worker -Q labelling -c CONCURRENCY`): --uploads copies of a synthetic
aggregate of about --mb MB (nilm.synth, laid out like the recordings) are posted at the same
moment to POST /nilm/upload as the page posts them (the raw file as the body), and each answer's
job is then awaited through the page's callback, as the browser asks for it. Prints the web
process's growth (VmHWM minus its RSS before; target: no more than twice one file's size), the
labelling pool's peak (VmHWM of each pool process), and when each result arrived. Every job must
end in a result, or the run fails.
"""
import argparse
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


def children(pid):
    return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def wait_for(url, timeout=60):
    deadline = time.monotonic() + timeout
    while True:
        try:
            return urllib.request.urlopen(url, timeout=5)
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def callback_body(port, job_id):
    """The JSON body Dash's renderer posts when nilm-job changes, from the app's own dependencies."""
    deps = json.load(wait_for(f"http://127.0.0.1:{port}/_dash-dependencies"))
    show = next(d for d in deps if any(i["id"] == "nilm-job" for i in d["inputs"]))
    outputs = [dict(zip(("id", "property"), part.rsplit(".", 1)))
               for part in show["output"].strip(".").split("...")]
    return json.dumps({
        "output": show["output"], "outputs": outputs,
        "inputs": [{"id": "nilm-job", "property": "data", "value": {"job": job_id}},
                   {"id": "nilm-sample", "property": "n_clicks", "value": None}],
        "changedPropIds": ["nilm-job.data"], "state": [],
    }).encode()


def request(port, method, path, body, content_type):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=900)
    conn.request(method, path, body=body, headers={"Content-Type": content_type})
    response = conn.getresponse()
    answer = response.read()
    conn.close()
    return response.status, answer


def upload_and_wait(port, path, started, results, index):
    status, answer = request(port, "POST", f"/nilm/upload?name={path.name}", path.read_bytes(),
                             "application/octet-stream")
    if status != 200:
        results[index] = (time.perf_counter() - started, status, False)
        return
    body = callback_body(port, json.loads(answer)["job"])
    status, answer = request(port, "POST", "/_dash-update-component", body, "application/json")
    results[index] = (time.perf_counter() - started, status,
                      status == 200 and b"nilm-summary-cards" in answer)


def run(concurrency, path, uploads, workdir):
    port = free_port()
    redis_proc, redis_url = start_embedded_redis(workdir, free_port())
    env = dict(os.environ, PORT=str(port), REDIS_URL=redis_url,
               DATABASE_URL=f"sqlite:///{workdir / f'wattson-{concurrency}.db'}")
    log = open(workdir / "services.log", "ab")
    worker = start([sys.executable, "-m", "celery", "-A", "tasks", "worker", "-Q", "labelling",
                    "-c", str(concurrency), "-n", "labelling@%h", "--loglevel", "INFO"],
                   env, cwd=REPO, stdout=log, stderr=log)
    web = start([sys.executable, "app.py"], env, cwd=REPO, stdout=log, stderr=log)
    try:
        wait_for(f"http://127.0.0.1:{port}/nilm")
        deadline = time.monotonic() + 120
        while "ready." not in (workdir / "services.log").read_text():
            if time.monotonic() > deadline:
                sys.exit(f"the labelling worker did not start; see {workdir / 'services.log'}")
            time.sleep(0.2)
        before = status_mb(web.pid, "VmRSS")
        results = [None] * uploads
        started = time.perf_counter()
        threads = [threading.Thread(target=upload_and_wait, args=(port, path, started, results, i))
                   for i in range(uploads)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        web_peak = status_mb(web.pid, "VmHWM")
        pool_peaks = [status_mb(child, "VmHWM") for child in children(worker.pid)]
    finally:
        stop_all([redis_proc, worker, web])
    if not all(r and r[2] for r in results):
        sys.exit(f"an upload failed: {results}; see {workdir / 'services.log'}")
    file_mb = path.stat().st_size / 2**20
    times = ", ".join(f"{r[0]:.1f}" for r in sorted(results))
    print(f"{uploads} uploads of {file_mb:.1f} MiB, labelling concurrency {concurrency}:"
          f" web process grew {web_peak - before:.0f} MiB (VmHWM {web_peak:.0f} MiB, {before:.0f}"
          f" before; target <= {2 * file_mb:.0f} MiB, twice one file);"
          f" labelling pool peaks {', '.join(f'{p:.0f}' for p in pool_peaks)} MiB;"
          f" results after {times} s")


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
