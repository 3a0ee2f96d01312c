"""Issue 7.3: no doubled readings. The embedded beat dies with its worker; a second beat, a
redelivery or a retry of the same (sensor, slot) stores nothing new."""
import os
import signal

import pytest
from celery import Celery
from conftest import PYTHON, Service, wait_until


def children(pid):
    """Pids of the processes whose parent is pid."""
    found = []
    for entry in os.listdir("/proc"):
        try:
            with open(f"/proc/{entry}/stat") as stat:
                if int(stat.read().rsplit(")", 1)[1].split()[1]) == pid:
                    found.append(int(entry))
        except (OSError, ValueError, IndexError):
            pass
    return found


def command_line(pid):
    with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
        return cmdline.read().replace(b"\0", b" ").decode(errors="replace")


def alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_the_embedded_beat_dies_with_its_worker(live_env, own_broker, request):
    worker = request.getfixturevalue("celery_worker")
    wait_until(lambda: len(children(worker.proc.pid)) >= 2, timeout=30, what="pool and beat")
    beats = [p for p in children(worker.proc.pid) if "beat" in command_line(p).lower()]
    assert beats, [command_line(p) for p in children(worker.proc.pid)]
    os.kill(worker.proc.pid, signal.SIGKILL)  # the main process only, as an OOM killer would
    worker.proc.wait()
    wait_until(lambda: not any(alive(p) for p in beats), timeout=15, what="the beat to stop")


def test_two_beats_store_one_reading_per_sensor_per_slot(
        live_env, own_broker, tmp_path, request, db_exec):
    live_env["SENSORS"] = "sensor-1,sensor-2"
    first = request.getfixturevalue("celery_worker")
    second = Service([PYTHON, "-m", "celery", "-A", "tasks", "worker", "-B", "--concurrency", "1",
                      "--loglevel", "INFO", "-n", "second@%h",
                      "--schedule", str(tmp_path / "second-schedule")],
                     live_env, tmp_path / "second.log",
                     ready=lambda: "ready." in (tmp_path / "second.log").read_text())
    second.start()
    try:
        wait_until(lambda: "already stored" in first.output() + second.output(), timeout=60,
                   what="the two beats to sample the same slot")
        wait_until(lambda: db_exec("SELECT count(*) FROM sample_slots")[0][0] >= 8, timeout=60,
                   what="eight slots sampled")
    finally:
        second.stop()
    first.stop()
    readings = db_exec("SELECT sensor_id, count(*) FROM readings GROUP BY sensor_id")
    slots = db_exec("SELECT sensor_id, count(*) FROM sample_slots GROUP BY sensor_id")
    assert readings == slots  # every reading is its slot's only one
    unclaimed = db_exec("SELECT count(*) FROM readings WHERE id NOT IN "
                        "(SELECT reading_id FROM sample_slots)")
    assert unclaimed == [(0,)]


@pytest.mark.parametrize("carried", [
    {"temperature_c": 19.5, "taken_at": "2026-11-29T10:00:00+00:00"},  # a retry's message
    {},  # a beat message: the reading is taken when it runs, each time it runs
])
def test_a_redelivered_message_stores_nothing_new(live_env, own_broker, request, db_exec, carried):
    worker = request.getfixturevalue("celery_worker")
    client = Celery(broker=live_env["REDIS_URL"])
    slot = 12345  # long past: no beat message shares it
    for _ in range(2):  # the same message, as Redis gives it back after a lost ack
        client.send_task("tasks.sampling.sample", args=("sensor-1",), task_id="same-id",
                         kwargs=dict(carried, slot=slot))
    wait_until(lambda: f"slot {slot} already stored" in worker.output(), timeout=30,
               what="the repeat to be recognised")
    reading = db_exec("SELECT reading_id FROM sample_slots WHERE slot = ?", (slot,))
    assert len(reading) == 1
    rows = db_exec("SELECT taken_at FROM readings WHERE id = ?", (reading[0][0],))
    if carried:
        assert rows == [("2026-11-29 10:00:00.000000",)]
    newest = db_exec("SELECT max(id) FROM readings")[0][0]
    wait_until(lambda: db_exec("SELECT max(id) FROM readings")[0][0] > newest, timeout=30,
               what="sampling to go on")
    assert "Traceback" not in worker.output()
