"""Long windows bucketed in the database: readings.buckets and readings.store.buckets."""
import json
from datetime import datetime, timedelta, timezone

from conftest import both_databases

from readings import store
from readings.buckets import MAX_POINTS, bucket_size, bucket_start

T0 = datetime(2026, 11, 29, 12, 0, tzinfo=timezone.utc)  # a multiple of every bucket size


def test_short_windows_are_raw_and_long_ones_stay_under_the_cap():
    assert bucket_size(900) is None and bucket_size(3600) is None
    for window_s in (86400, 7 * 86400, 30 * 86400, 365 * 86400):
        assert window_s / bucket_size(window_s) <= MAX_POINTS
    assert bucket_size(86400) == 60
    assert bucket_start(3725, 60) == 3720


@both_databases
def test_buckets_give_min_mean_max_and_count(db_app):
    for seconds, value in ((0, 20.0), (10, 22.0), (59, 21.0), (60, 30.0), (200, 10.0)):
        store.write_reading("sensor-1", value, T0 + timedelta(seconds=seconds))
    store.write_reading("other", 99.0, T0)
    t0_ms = int(T0.timestamp() * 1000)

    got = [dict(b, mean=round(b["mean"], 9)) for b in
           store.buckets("sensor-1", T0, T0 + timedelta(seconds=180), 60)]

    assert got == [
        {"t": t0_ms, "min": 20.0, "mean": 21.0, "max": 22.0, "n": 3},
        {"t": t0_ms + 60_000, "min": 30.0, "mean": 30.0, "max": 30.0, "n": 1},
    ]  # the reading at 200 s is after the end


@both_databases
def test_buckets_are_plain_json_numbers(db_app):
    store.write_reading("sensor-1", 20.5, T0)
    (bucket,) = store.buckets("sensor-1", T0, T0 + timedelta(seconds=60), 60)
    assert json.loads(json.dumps(bucket)) == bucket  # no Decimal from the database's avg


@both_databases
def test_buckets_cut_at_the_range_and_an_empty_bucket_is_left_out(db_app):
    for seconds, value in ((-30, 5.0), (20, 19.0), (40, 21.0), (150, 25.0), (260, 27.0)):
        store.write_reading("sensor-1", value, T0 + timedelta(seconds=seconds))
    t0_ms = int(T0.timestamp() * 1000)

    got = store.buckets("sensor-1", T0 + timedelta(seconds=30), T0 + timedelta(seconds=240), 60)

    assert [(b["t"], b["min"], b["max"], b["n"]) for b in got] == [
        (t0_ms, 21.0, 21.0, 1),  # the reading at 20 s is before the start, in the same bucket
        (t0_ms + 120_000, 25.0, 25.0, 1),  # no bucket at 60 s: nothing was read in it
    ]
    assert store.buckets("sensor-1", T0, T0, 60) == []
