"""Reading and writing readings: the one write path for the app, and read helpers for the page.

Reads go through feed.reading_dict, so a row no one can read is an invalid reading, not an error.
"""
from datetime import datetime, timedelta, timezone

from flask import current_app
from sqlalchemy import func, select, union_all

from .buckets import bucket_ranges, bucket_start, epoch_s, json_list
from .feed import iso_utc, last_change_id, raw, reading_dict, time_order
from .models import Reading, db, parse_utc

__all__ = ["write_reading", "sensor_ids", "window", "buckets", "latest", "freshest",
           "last_change_id"]

_COLUMNS = (Reading.id, raw(Reading.sensor_id), raw(Reading.taken_at), raw(Reading.temperature_c))


def write_reading(sensor_id, temperature_c, taken_at=None):
    """Insert and commit one reading; returns its id. The triggers log it for the feed."""
    reading = Reading(
        sensor_id=sensor_id,
        temperature_c=temperature_c,
        taken_at=taken_at or datetime.now(timezone.utc),
    )
    db.session.add(reading)
    db.session.commit()
    return reading.id


def configured_sensors():
    return list(current_app.config.get("SENSORS", []))


def sensor_ids():
    """Configured sensors in their configured order, then any others the table holds (people may
    add their own), by name. Ids that are not text (a BLOB written by hand) are no sensor."""
    configured = configured_sensors()
    others = {s for s in _present_sensor_ids() if isinstance(s, str) and s.strip()} - set(configured)
    return configured + sorted(others)


def _present_sensor_ids():
    """Each distinct sensor_id, found one index lookup at a time (the next one after the last),
    since a DISTINCT reads the whole table: a few sensors, millions of rows."""
    first = select(func.min(Reading.sensor_id)).scalar_subquery()
    found = select(first.label("sensor_id")).cte("found", recursive=True)
    following = (select(func.min(Reading.sensor_id))
                 .where(Reading.sensor_id > found.c.sensor_id).scalar_subquery())
    found = found.union_all(select(following).where(found.c.sensor_id.is_not(None)))
    return db.session.execute(
        select(raw(found.c.sensor_id)).where(found.c.sensor_id.is_not(None))).scalars()


def _readings(query):
    return [reading_dict(*row) for row in db.session.execute(query)]


def window(sensor_id, seconds, now=None):
    """The valid readings of one sensor taken in the last `seconds` (to the millisecond, as
    clients see times), oldest first."""
    cutoff = (now or datetime.now(timezone.utc)) - timedelta(seconds=seconds)
    query = select(*_COLUMNS).where(Reading.sensor_id == sensor_id,
                                    Reading.taken_s >= epoch_s(cutoff))
    first = iso_utc(cutoff)  # the rows of the cutoff's second that come before it are dropped
    return sorted((r for r in _readings(query) if r["valid"] and r["taken_at"] >= first),
                  key=time_order)


def buckets(sensor_id, start, end, size_s):
    """Min / mean / max / count of one sensor's valid readings per bucket of `size_s` seconds,
    taken in [start, end) (aware datetimes, to the whole second), oldest first:
    {"t": bucket start in epoch ms, ...}.

    Per bucket, one range scan of the (sensor_id, taken_s, temperature_c) index: the table itself
    is not read, and nothing is sorted (a GROUP BY on the bucket number made SQLite sort every
    row of the window: twice the time). A value that is not a finite number (text, a BLOB, NULL,
    NaN, infinity: see feed.reading_dict) is left out, as is a time the database cannot read
    (its taken_s is NULL)."""
    first, stop = epoch_s(start), epoch_s(end)
    if first >= stop:
        return []
    ranges = bucket_ranges(first, stop, size_s)
    value = Reading.temperature_c
    stats = (
        select(json_list(func.min(value), func.avg(value), func.max(value), func.count()))
        .where(Reading.sensor_id == sensor_id, Reading.taken_s >= ranges.c.low,
               Reading.taken_s < ranges.c.high, value.between(-1e308, 1e308))
        .scalar_subquery()
    )
    rows = db.session.execute(select(ranges.c.low, stats).order_by(ranges.c.low))
    return [{"t": bucket_start(low, size_s) * 1000, "min": low_c, "mean": mean, "max": high_c, "n": n}
            for low, (low_c, mean, high_c, n) in rows if n]


def latest(sensor_id, n=50):
    """The n newest readings of one sensor, newest first, invalid ones included (with reasons).

    Newest by the instant (taken_s), not by taken_at's text, which on SQLite is as written: a
    time with an offset sorts where its text does. A time no one can read (taken_s NULL: old
    poison rows on SQLite) comes after every readable one."""
    query = (
        select(*_COLUMNS)
        .where(Reading.sensor_id == sensor_id)
        .order_by(Reading.taken_s.desc().nulls_last(), Reading.taken_at.desc(), Reading.id.desc())
        .limit(n)
    )
    return sorted(_readings(query), key=time_order, reverse=True)


def _valid(sensor_id):
    return (Reading.sensor_id == sensor_id, Reading.taken_s.is_not(None),
            Reading.temperature_c.between(-1e308, 1e308))


def _newest_second(sensor_id):
    """The rows of a sensor's newest second that holds a valid reading (an index lookup)."""
    second = (select(Reading.taken_s).where(*_valid(sensor_id))
              .order_by(Reading.taken_s.desc()).limit(1).scalar_subquery())
    return select(raw(Reading.sensor_id), raw(Reading.taken_at)).where(*_valid(sensor_id),
                                                                       Reading.taken_s == second)


def freshest(sensor_ids):
    """{sensor: when its newest valid reading was taken (ISO text), or None}, in one statement."""
    found = dict.fromkeys(sensor_ids)
    if found:
        rows = db.session.execute(union_all(*(_newest_second(s) for s in found)))
        for sensor, taken_at in rows:
            moment = parse_utc(taken_at)
            if moment and (found[sensor] is None or moment > found[sensor]):
                found[sensor] = moment
    return {sensor: iso_utc(moment) for sensor, moment in found.items()}
