"""The sampler's idempotency key and timings (readings.sampling), against a real SQLite file."""
from datetime import datetime, timezone

import pytest
from sqlalchemy import text

from readings.models import SampleSlot, db
from readings.sampling import slot_of, timings, write_sample

NOW = datetime(2026, 11, 29, 12, 0, tzinfo=timezone.utc)


def count(table):
    return db.session.execute(text(f"SELECT count(*) FROM {table}")).scalar()


def test_slot_of_cuts_time_into_periods():
    assert [slot_of(t, 10) for t in (0, 9.99, 10, 25)] == [0, 0, 1, 2]
    assert slot_of(1_764_000_000.5, 2) == 882_000_000


def test_a_second_write_for_the_same_slot_stores_nothing(db_app):
    first = write_sample("s1", 21.0, NOW, slot=7)
    assert write_sample("s1", 22.0, NOW, slot=7) is None  # second beat, redelivery, retry
    assert db.session.get(SampleSlot, ("s1", 7)).reading_id == first
    assert count("readings") == 1 and count("reading_changes") == 1  # the feed saw one change


def test_other_slots_and_other_sensors_are_stored(db_app):
    ids = [write_sample("s1", 21.0, NOW, 7), write_sample("s1", 21.0, NOW, 8),
           write_sample("s2", 21.0, NOW, 7)]
    assert None not in ids and len(set(ids)) == 3


def test_writes_without_a_slot_are_never_refused(db_app):
    assert None not in (write_sample("s1", 21.0, NOW), write_sample("s1", 21.0, NOW))
    assert count("readings") == 2 and count("sample_slots") == 0


def test_rows_written_by_hand_share_a_slot_freely(db_app):
    db.session.execute(text(
        "INSERT INTO readings (sensor_id, taken_at, temperature_c) VALUES ('s1', :t, 20.0)"),
        {"t": NOW.strftime("%Y-%m-%d %H:%M:%S")})
    db.session.commit()
    assert write_sample("s1", 21.0, NOW, slot=7) is not None
    db.session.execute(text(
        "INSERT INTO readings (sensor_id, taken_at, temperature_c) VALUES ('s1', :t, 20.0)"),
        {"t": NOW.strftime("%Y-%m-%d %H:%M:%S")})
    db.session.commit()
    assert count("readings") == 3


def test_a_refused_row_is_not_mistaken_for_a_repeat(db_app):
    # The guard triggers refuse this; that is an error to report, not a slot already stored.
    with pytest.raises(Exception, match="temperature_c"):
        write_sample("s1", float("inf"), NOW, slot=9)
    assert count("readings") == 0 and count("sample_slots") == 0


@pytest.mark.parametrize("period", [0.5, 1, 2, 10, 60, 3600])
def test_timings_keep_every_wait_inside_the_broker_visibility_timeout(period):
    t = timings(period, env={})
    assert t.read_deadline_s <= min(3.0, period / 3)
    assert t.soft_limit_s < t.hard_limit_s
    assert t.max_retry_countdown_s + t.hard_limit_s < t.visibility_timeout_s


def test_the_read_deadline_is_configurable_and_checked():
    assert timings(10, env={"SENSOR_DEADLINE_S": "1.5"}).read_deadline_s == 1.5
    with pytest.raises(ValueError, match="SENSOR_DEADLINE_S"):
        timings(10, env={"SENSOR_DEADLINE_S": "-1"})
