"""Issue 7.4: a reading handed to the broker is stored exactly once, whatever dies meanwhile."""
import base64
import json
import os
import re
import signal
import sqlite3
from datetime import datetime

import redis
from conftest import wait_until

from serve import start_embedded_redis, stop_all

RETRY_LOGGED = re.compile(r"retry in [\d.]+ s \(task (\S+): ([\d.]+) C at (\S+), slot")
RETRY_SENT = re.compile(r"Task tasks\.sampling\.sample\[(\S+)\] retry: Retry in")


def unacked_retries(client):
    """Retries (messages carrying a reading) a worker holds unacknowledged: [(headers, kwargs)]."""
    found = []
    for value in client.hvals("unacked"):
        message = json.loads(value)[0]
        _args, kwargs, _embed = json.loads(base64.b64decode(message["body"]))
        if kwargs.get("temperature_c") is not None:
            found.append((message["headers"], kwargs))
    return found


def readings_handed_to_broker(log):
    """taken_at of each reading whose retry Celery reports as sent."""
    taken = {task: at for task, _value, at in RETRY_LOGGED.findall(log)}
    return {taken[task] for task in RETRY_SENT.findall(log) if task in taken}


def stored_form(iso):
    return datetime.fromisoformat(iso).strftime("%Y-%m-%d %H:%M:%S.%f")


def test_a_retry_killed_with_its_worker_is_stored_once_after_a_restart(
        live_env, own_broker, request, db_exec):
    worker = request.getfixturevalue("celery_worker")
    wait_until(lambda: db_exec("SELECT count(*) FROM readings")[0][0] >= 1, timeout=30,
               what="a first reading")
    locker = sqlite3.connect(live_env["DATABASE_URL"].removeprefix("sqlite:///"),
                             isolation_level=None)
    locker.execute("BEGIN EXCLUSIVE")  # somebody holds the write lock past the busy timeout
    # The worker fetches a retry at once and holds it until its countdown is over: a crash then
    # leaves it in Redis's `unacked`, which only the visibility timeout gives back.
    wait_until(lambda: unacked_retries(own_broker), timeout=30, what="a retry held by the worker")
    retries = unacked_retries(own_broker)
    # It must never expire (Celery's retry would otherwise copy the beat message's expiry).
    assert all(h.get("expires") is None for h, _ in retries), retries
    assert all(isinstance(k.get("slot"), int) for _, k in retries), retries

    os.killpg(worker.proc.pid, signal.SIGKILL)  # the worker, its pool and its beat, mid-retry
    worker.proc.wait()
    handed = readings_handed_to_broker(worker.output())
    locker.execute("ROLLBACK")
    locker.close()
    worker.log.close()
    worker.start()

    def stored(at):
        return db_exec("SELECT count(*) FROM readings WHERE taken_at = ?", (stored_form(at),))[0][0]

    wait_until(lambda: all(stored(at) >= 1 for at in handed), timeout=90,
               what=f"the readings {sorted(handed)} to be stored after the restart")
    newest = db_exec("SELECT max(id) FROM readings")[0][0]
    wait_until(lambda: db_exec("SELECT max(id) FROM readings")[0][0] >= newest + 3, timeout=30,
               what="sampling to go on")
    assert {at: stored(at) for at in handed} == {at: 1 for at in handed}


def test_embedded_redis_keeps_a_queued_message_across_a_restart(tmp_path):
    proc, url = start_embedded_redis(tmp_path)
    try:
        client = redis.Redis.from_url(url)
        wait_until(client.ping, what="redis-server")
        client.lpush("celery", b"a queued retry")
        stop_all([proc])  # SIGTERM: Redis flushes its append-only file and exits
        port = int(url.rsplit(":", 1)[1].split("/")[0])
        proc, url = start_embedded_redis(tmp_path, port)
        wait_until(client.ping, what="redis-server again")
        assert client.lrange("celery", 0, -1) == [b"a queued retry"]
        assert any(tmp_path.rglob("*.aof*"))
    finally:
        stop_all([proc])
