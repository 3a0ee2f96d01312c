"""Issue 7.2: a trickling sensor must not stall the worker (real worker, real HTTP device)."""
from conftest import trickle, wait_until


def count(db_exec, sensor):
    return db_exec("SELECT count(*) FROM readings WHERE sensor_id = ?", (sensor,))[0][0]


def test_a_trickling_sensor_does_not_stall_a_good_one(live_env, http_device, request, db_exec):
    # One byte every 2 s: under any per-read timeout, so only a total deadline stops it.
    device = http_device(lambda path: (200, trickle(2.0) if path == "/slow" else b"21.5"))
    live_env.update(SENSORS="good,slow", SENSOR_URL=device + "/{sensor}")
    worker = request.getfixturevalue("celery_worker")

    def slow_misses():
        return worker.output().count("sensor slow: ")

    wait_until(lambda: count(db_exec, "good") >= 1, timeout=30, what="a first good reading")
    first_good, first_misses = count(db_exec, "good"), slow_misses()
    wait_until(lambda: slow_misses() >= first_misses + 6, timeout=60,
               what="the slow sensor to miss six more periods")
    # Each beat tick sends both samples: the good sensor got one per tick while the slow trickled.
    assert count(db_exec, "good") - first_good >= slow_misses() - first_misses - 1
    assert count(db_exec, "slow") == 0
    assert "sensor slow: http://127.0.0.1" in worker.output()  # each miss says why
