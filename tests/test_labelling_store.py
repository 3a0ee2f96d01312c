"""The labelling job store and the job itself, in-process on a throwaway SQLite database and the
test Redis: upload in, analysis and labelled CSV out, errors, size caps, expiry, the wait."""
import json
import threading
import time
import zlib

import pytest
import redis

from labelling import analysis, jobs, routes, store
from nilm.devices import MAIN_GLOB, find_file
from nilm.io import InputError, read_recording
from nilm.label import label_bytes


@pytest.fixture(scope="module")
def main_bytes(nilm_data_dir):
    return find_file(nilm_data_dir, MAIN_GLOB).read_bytes()


def new_job(name, data, now=None):
    return store.create_job(name, store.compress_chunks([data], name), now=now)


def stored_row(job_id):
    return store.db.session.get(store.LabellingJob, job_id)


def test_compress_chunks_refuses_past_the_limit_and_keeps_every_byte():
    data = b"1536129671.0,24.41,17.3\n" * 1000
    chunks = [data[i:i + 777] for i in range(0, len(data), 777)]
    assert zlib.decompress(store.compress_chunks(chunks, "a.csv")) == data
    with pytest.raises(store.TooLarge, match=r"a.csv is 0.0 MB; the limit is 50 MB"):
        store.compress_chunks(chunks, "a.csv", max_bytes=len(data) - 1)


def test_a_job_runs_once_stores_its_result_and_drops_its_upload(db_app, main_bytes):
    job_id = new_job("main.csv", main_bytes)
    assert store.outcome(job_id) == store.Outcome("main.csv", store.QUEUED, None)
    assert analysis.run(job_id) is True
    assert analysis.run(job_id) is False  # a redelivered message finds it taken
    outcome = store.outcome(job_id)
    assert outcome.state == store.DONE and outcome.finished and outcome.error is None
    row = stored_row(job_id)
    assert row.upload is None and row.started_at <= row.finished_at
    result = json.loads(store.analysis_json(job_id))
    assert set(result["figures"]) == set(analysis.GRAPHS)
    assert result["summary"][0] == ["rows", f"{len(read_recording(main_bytes)):,}"]
    name, chunks = store.labelled_chunks(job_id)
    assert name == "main_labelled.csv"
    assert b"".join(chunks) == label_bytes(main_bytes, "main.csv")


def test_bad_input_fails_the_job_with_nilm_io_s_message(db_app):
    data = b"1536129671.0,24.41,17.3\n1536129672.0,12.21,abc\n"
    with pytest.raises(InputError) as expected:
        read_recording(data, "bad.csv")
    job_id = new_job("bad.csv", data)
    analysis.run(job_id)
    assert store.outcome(job_id) == store.Outcome("bad.csv", store.FAILED, str(expected.value))
    assert store.labelled_chunks(job_id) is None and not store.has_labelled(job_id)


def test_a_result_over_the_cap_is_refused_with_a_message(db_app, main_bytes, monkeypatch):
    monkeypatch.setenv("NILM_JOB_RESULT_MAX_BYTES", "1000")
    job_id = new_job("main.csv", main_bytes)
    analysis.run(job_id)
    outcome = store.outcome(job_id)
    assert outcome.state == store.FAILED and "too large to keep" in outcome.error
    assert outcome.error.startswith("main.csv: ")  # shown as it is: it names the file
    assert store.labelled_chunks(job_id) is None


def test_expired_jobs_are_pruned_when_a_new_one_is_made(db_app, monkeypatch):
    monkeypatch.setenv("NILM_JOB_TTL_S", "60")
    now = time.time()
    old = new_job("old.csv", b"x", now=now - 61)
    recent = new_job("recent.csv", b"x", now=now - 59)
    assert store.outcome(old) is not None  # made after nothing had expired
    new_job("new.csv", b"x", now=now)
    assert store.outcome(old) is None
    assert store.outcome(recent).name == "recent.csv"
    assert store.prune(now + 120) == 2  # recent and new


def test_the_download_of_an_expired_job_says_so(db_app, main_bytes):
    db_app.register_blueprint(routes.bp)
    client = db_app.test_client()
    job_id = new_job("main.csv", main_bytes)
    analysis.run(job_id)
    assert client.head(f"/nilm/download/{job_id}").status_code == 200
    reply = client.get(f"/nilm/download/{job_id}")
    assert reply.status_code == 200 and reply.data == label_bytes(main_bytes, "main.csv")
    assert reply.headers["Content-Disposition"] == "attachment; filename*=UTF-8''main_labelled.csv"
    store.prune(time.time() + store.job_ttl_s() + 1)
    assert client.head(f"/nilm/download/{job_id}").status_code == 404
    reply = client.get(f"/nilm/download/{job_id}")
    assert reply.status_code == 404 and reply.text == routes.GONE


def test_wait_returns_when_the_worker_announces_the_end(db_app, main_bytes):
    job_id = new_job("main.csv", main_bytes)
    client = redis.Redis.from_url(db_app.config["REDIS_URL"])

    def worker():  # what tasks.labelling.label does, from another thread and its own session
        with db_app.app_context():
            time.sleep(0.5)
            analysis.run(job_id)
            jobs.announce(client, job_id)

    thread = threading.Thread(target=worker)
    thread.start()
    outcome = jobs.wait(job_id, timeout_s=120)
    thread.join()
    assert outcome.state == store.DONE
    assert jobs.wait(job_id, timeout_s=120).state == store.DONE  # finished: no wait at all


def test_wait_gives_up_on_a_job_that_does_not_end_and_knows_a_missing_one(db_app):
    job_id = new_job("stuck.csv", b"x")
    assert jobs.wait(job_id, timeout_s=1).state == store.QUEUED
    assert jobs.wait("no-such-job", timeout_s=1) is None


def test_labelled_name_follows_the_upload():
    assert store.labelled_name("main.csv") == "main_labelled.csv"
    assert store.labelled_name("week 1.txt") == "week 1_labelled.txt"
    assert store.labelled_name("readings") == "readings_labelled.csv"


def test_analyse_accepts_every_layout_nilm_io_reads(main_bytes):
    dressed = ("\ufefftimestamp;max;eff\r\n"
               + main_bytes.decode().replace(",", ";").replace("\n", "\r\n")).encode()
    first, labelled = analysis.analyse(read_recording(main_bytes, "a.csv"))
    second, _ = analysis.analyse(read_recording(dressed, "b.csv"))
    assert first["summary"] == second["summary"]
    assert first["figures"]["aggregate"].to_json() == second["figures"]["aggregate"].to_json()
    assert labelled == label_bytes(main_bytes, "a.csv")


def test_a_job_round_trips_on_postgresql(pg_url, redis_server, main_bytes):
    from readings import create_db_app

    app = create_db_app({"SQLALCHEMY_DATABASE_URI": pg_url, "REDIS_URL": redis_server.url})
    with app.app_context():
        job_id = new_job("main.csv", main_bytes)
        analysis.run(job_id)
        assert jobs.wait(job_id, timeout_s=60).state == store.DONE
        name, chunks = store.labelled_chunks(job_id)
        assert b"".join(chunks) == label_bytes(main_bytes, "main.csv")
        assert json.loads(store.analysis_json(job_id))["summary"][0][0] == "rows"
        assert store.prune(time.time() + store.job_ttl_s() + 1) == 1
        store.db.session.remove()
        store.db.engine.dispose()


def test_a_result_stored_by_an_older_release_is_recognised(db_app, main_bytes):
    """Jobs outlive a deploy (NILM_JOB_TTL_S): one whose stored analysis lacks a part today's page
    shows gets the page's "upload it again" message instead of a failing callback."""
    job_id = new_job("main.csv", main_bytes)
    analysis.run(job_id)
    today = json.loads(store.analysis_json(job_id))
    assert analysis.complete(today)
    for key in analysis.KEYS:
        assert not analysis.complete({k: v for k, v in today.items() if k != key}), key
    older = dict(today, figures={k: v for k, v in today["figures"].items() if k != "devices"})
    assert not analysis.complete(older)
    assert "upload the file again" in analysis.OUTDATED
