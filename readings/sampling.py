"""The domain side of sampling: how long a reading may take, which period slot a moment falls in,
and the timings the broker and the worker must respect so that no reading is lost or doubled.

Every duration derives from the sampling period, so a short test period and a long production one
keep the same proportions.
"""
import math
import os
from dataclasses import dataclass

from sqlalchemy.exc import IntegrityError

from .migrate import SQLITE_BUSY_MS
from .models import Reading, SampleSlot, db

# SQLite's busy timeout (readings.models): a write may wait this long for a lock before failing.
DB_BUSY_S = SQLITE_BUSY_MS / 1000


def slot_of(epoch_s, period_s):
    """The period slot a moment (seconds since the epoch) falls in: one reading per sensor each."""
    return math.floor(epoch_s / period_s)


@dataclass(frozen=True)
class Timings:
    """Deadlines for one sample, all in seconds."""

    period_s: float
    read_deadline_s: float  # the whole HTTP exchange with a sensor

    @property
    def soft_limit_s(self):
        # The read, then a write that may wait out one busy timeout; then Celery interrupts.
        return self.read_deadline_s + DB_BUSY_S + 1.0

    @property
    def hard_limit_s(self):
        return self.soft_limit_s + 2.0

    @property
    def max_retry_countdown_s(self):
        return max(1.0, min(30.0, self.period_s / 2))

    @property
    def visibility_timeout_s(self):
        # A delivered message returns to the queue once this long has passed without its ack: it
        # must outlast a retry's countdown plus a whole run, or a live task would run twice.
        return self.max_retry_countdown_s + self.hard_limit_s + 2.0

    @property
    def restore_interval_s(self):
        # How often a worker looks for messages a dead worker left unacknowledged.
        return max(1.0, min(5.0, self.period_s / 2))


def timings(period_s, env=os.environ):
    """SENSOR_DEADLINE_S if set, else a third of a period, at most 3 s: well under one period."""
    deadline = float(env.get("SENSOR_DEADLINE_S") or min(3.0, period_s / 3))
    if not 0 < deadline:
        raise ValueError(f"SENSOR_DEADLINE_S must be a positive number of seconds, not {deadline}")
    return Timings(period_s, deadline)



def write_sample(sensor_id, temperature_c, taken_at, slot=None):
    """Store one sampled reading and claim its (sensor, slot) in the same transaction; the new
    reading's id, or None when that slot is already stored (a second beat, a redelivery, a retry
    after its commit). A reading without a slot (written directly, not sampled) claims nothing.

    The key lives in sample_slots, not in readings, so rows written by hand are never refused.
    """
    reading = Reading(sensor_id=sensor_id, temperature_c=temperature_c, taken_at=taken_at)
    db.session.add(reading)
    try:
        if slot is not None:
            db.session.flush()
            db.session.add(SampleSlot(sensor_id=sensor_id, slot=slot, reading_id=reading.id))
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        if slot is not None and db.session.get(SampleSlot, (sensor_id, slot)) is not None:
            return None
        raise
    return reading.id
