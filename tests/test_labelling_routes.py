"""/nilm's upload and download routes and the labelling worker, as real processes: web servers
(`python app.py`) on one database, a worker on the `labelling` queue, the sampling worker, Redis."""
import http.client
import json
import socket
import urllib.error
import urllib.parse
import urllib.request
from datetime import datetime, timezone
from pathlib import Path

import pytest
from conftest import WebServer, wait_until
from test_page_nilm import cli_labels

from nilm.devices import MAIN_GLOB, find_file
from readings.settings import MAX_CONTENT_LENGTH, NILM_UPLOAD_MAX_BYTES


@pytest.fixture(scope="module")
def main_file(nilm_data_dir):
    return find_file(nilm_data_dir, MAIN_GLOB)


@pytest.fixture
def second_web_server(live_env, tmp_path, web_server):
    """Another web process on the same database and Redis (as behind a load balancer)."""
    server = WebServer(live_env, tmp_path / "web2.log").start()
    yield server
    server.stop()


def post_upload(server, data, name, headers=None):
    """(status, JSON answer) of POST /nilm/upload with data as the body."""
    request = urllib.request.Request(
        f"{server.url}/nilm/upload?{urllib.parse.urlencode({'name': name})}", data=data,
        headers={"Content-Type": "application/octet-stream", **(headers or {})}, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=120) as reply:
            return reply.status, json.load(reply)
    except urllib.error.HTTPError as error:
        return error.code, json.load(error)


def download(server, job_id):
    """The labelled CSV once the job is done (tests may poll; the page never does)."""
    found = []

    def done():
        with urllib.request.urlopen(f"{server.url}/nilm/download/{job_id}", timeout=30) as reply:
            found.append(reply.read())
            return True

    wait_until(done, timeout=120, interval=0.2, what=f"the labels of job {job_id}")
    return found[0]


def test_labels_uploaded_to_one_web_process_download_from_another(
        web_server, second_web_server, labelling_worker, main_file):
    status, answer = post_upload(web_server, main_file.read_bytes(), main_file.name)
    assert status == 200 and answer["name"] == main_file.name
    assert download(second_web_server, answer["job"]) == cli_labels(main_file)
    assert "tasks.labelling.label" in labelling_worker.output()


def test_an_upload_from_another_site_is_refused(web_server, db_exec, main_file):
    status, answer = post_upload(web_server, main_file.read_bytes(), "main.csv",
                                 headers={"Origin": "http://elsewhere.example"})
    assert status == 403 and "this site's own pages" in answer["error"]
    assert db_exec("SELECT count(*) FROM labelling_jobs") == [(0,)]


def vm_rss_mb(pid):
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError(f"no VmRSS for {pid}")


def post_raw(url, path, headers, chunks):
    """(status, body) of the answer to a POST sending chunks after headers, stopping quietly
    when the server closes the connection (what a refusal before reading looks like)."""
    parts = urllib.parse.urlsplit(url)
    with socket.create_connection((parts.hostname, parts.port), timeout=60) as conn:
        conn.sendall(f"POST {path} HTTP/1.1\r\nHost: {parts.netloc}\r\n".encode()
                     + "".join(f"{k}: {v}\r\n" for k, v in headers.items()).encode() + b"\r\n")
        try:
            for chunk in chunks:
                conn.sendall(chunk)
        except (BrokenPipeError, ConnectionResetError):
            pass
        reply = http.client.HTTPResponse(conn)
        reply.begin()
        return reply.status, reply.read()


def declaring(size, sent, content_type="application/octet-stream"):
    """Headers declaring size bytes, and a body of only the first sent of them."""
    mb = b" " * 2**20
    return {"Content-Type": content_type, "Content-Length": size}, (mb for _ in range(sent // 2**20))


def chunked(size):
    """A chunked body (no declared length) of size bytes."""
    mb = b"1" * 2**20
    for _ in range(size // 2**20):
        yield b"%x\r\n" % len(mb) + mb + b"\r\n"
    yield b"0\r\n\r\n"


def test_an_upload_over_50_mb_is_refused_before_it_is_read(web_server, db_exec):
    before = vm_rss_mb(web_server.proc.pid)
    # Declares 400 MB and sends 64 MB of it: a server reading the body would block here for
    # the rest (and hold it); a refusal answers at once from the Content-Length.
    status, answer = post_raw(web_server.url, "/nilm/upload?name=big.csv",
                              *declaring(400 * 2**20, 64 * 2**20))
    assert status == 413 and b"big.csv is 400.0 MB; the limit is 50 MB." in answer
    status, _ = post_raw(web_server.url, "/nilm/upload?name=big.csv",
                         *declaring(NILM_UPLOAD_MAX_BYTES + 1, 0))
    assert status == 413
    # Without a length it is read until it passes the limit, compressed, and then refused.
    status, answer = post_raw(web_server.url, "/nilm/upload?name=big.csv",
                              {"Transfer-Encoding": "chunked"}, chunked(NILM_UPLOAD_MAX_BYTES + 2**20))
    assert status == 413 and b"the limit is 50 MB" in answer
    # Dash's own callback endpoint keeps Flask's MAX_CONTENT_LENGTH, sized for callbacks (JSON
    # parsed whole), not for uploads.
    assert MAX_CONTENT_LENGTH <= NILM_UPLOAD_MAX_BYTES // 8
    status, _ = post_raw(web_server.url, "/_dash-update-component",
                         *declaring(MAX_CONTENT_LENGTH + 1, 0, "application/json"))
    assert status == 413
    assert vm_rss_mb(web_server.proc.pid) - before < 32
    assert db_exec("SELECT count(*) FROM labelling_jobs") == [(0,)]
    assert urllib.request.urlopen(web_server.url + "/nilm", timeout=30).status == 200


def long_recording(main_file, copies):
    """The main recording repeated copies times, each copy later than the one before."""
    lines = main_file.read_text().splitlines()
    first, last = float(lines[0].split(",")[0]), float(lines[-1].split(",")[0])
    span = last - first + 1.0
    out = []
    for copy in range(copies):
        for line in lines:
            stamp, rest = line.split(",", 1)
            out.append(f"{float(stamp) + copy * span:.2f},{rest}")
    return ("\n".join(out) + "\n").encode()


def test_sensors_are_sampled_while_a_big_upload_is_labelled(
        web_server, celery_worker, labelling_worker, db_exec, main_file):
    data = long_recording(main_file, 150)  # ~14 MB: seconds of labelling
    status, answer = post_upload(web_server, data, "long.csv")
    assert status == 200
    labelled = download(web_server, answer["job"])
    assert labelled.count(b"\n") == data.count(b"\n") + 1  # a header, then every row
    ((started, finished),) = db_exec("SELECT started_at, finished_at FROM labelling_jobs")
    # The job must be long next to SAMPLE_PERIOD_S (1 s) for the check below to mean anything.
    assert finished - started > 2.5
    stamps = [datetime.fromisoformat(t).replace(tzinfo=timezone.utc).timestamp()
              for (t,) in db_exec("SELECT taken_at FROM readings")]
    during = [t for t in stamps if started <= t <= finished]
    assert len(during) >= 1, (started, finished, stamps)
