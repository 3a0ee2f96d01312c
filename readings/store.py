"""Reading and writing readings: the one write path for the app, and read helpers for the page."""
from datetime import datetime, timedelta, timezone

from flask import current_app
from sqlalchemy import select

from .feed import last_change_id, reading_dict
from .models import Reading, db

__all__ = ["write_reading", "sensor_ids", "window", "latest", "last_change_id", "as_dict"]


def as_dict(reading):
    return reading_dict(reading.id, reading.sensor_id, reading.taken_at, reading.temperature_c)


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


def sensor_ids():
    """Configured sensors plus any that appear in the table (people may add their own)."""
    present = db.session.execute(select(Reading.sensor_id).distinct()).scalars()
    return sorted(set(current_app.config.get("SENSORS", [])) | set(present))


def window(sensor_id, seconds, now=None):
    """Readings of one sensor taken in the last `seconds`, oldest first."""
    cutoff = (now or datetime.now(timezone.utc)) - timedelta(seconds=seconds)
    query = (
        select(Reading)
        .where(Reading.sensor_id == sensor_id, Reading.taken_at >= cutoff)
        .order_by(Reading.taken_at, Reading.id)
    )
    return [as_dict(r) for r in db.session.execute(query).scalars()]


def latest(sensor_id, n=50):
    """The n newest readings of one sensor, newest first."""
    query = (
        select(Reading)
        .where(Reading.sensor_id == sensor_id)
        .order_by(Reading.taken_at.desc(), Reading.id.desc())
        .limit(n)
    )
    return [as_dict(r) for r in db.session.execute(query).scalars()]
