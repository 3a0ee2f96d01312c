"""The change feed: read the change log, publish it on Redis, and catch up after gaps.

The log (reading_changes) is the truth; Redis only carries news. Any number of relays may publish
the same change: whoever receives drops ids it has already seen and reads the log to fill gaps.

`readings` is public, so a row may hold anything a writer gave SQLite. Every row is read through
`reading_dict`, which never fails: a value it cannot read makes the reading invalid, with the
reason, and every field JSON-safe. Every message is encoded by `encode`, which refuses NaN and
Infinity rather than send a frame that is not JSON.
"""
import json
import logging
import math
import time

from sqlalchemy import func, select, type_coerce
from sqlalchemy.types import NullType

from . import pg
from .models import ReadingChange, db, parse_utc

CHANNEL = "readings"
BATCH = 1000  # changes read from the log at a time (replays, the hub catching up)
log = logging.getLogger(__name__)


def encode(message):
    """The one way a message becomes text: strict JSON (no NaN / Infinity)."""
    return json.dumps(message, allow_nan=False)


def now_ms():
    """The server's clock, as browsers judge staleness by it: epoch milliseconds."""
    return int(time.time() * 1000)


def raw(column):
    """A column as the driver returns it, before a type conversion that a stored value could fail."""
    return type_coerce(column, NullType()).label(column.key)


def iso_utc(moment):
    """'2026-11-29T03:00:00.123Z', or None."""
    if moment is None:
        return None
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def as_text(value):
    """Any stored value as text a person can read: bytes decoded with replacement characters."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).decode("utf-8", errors="replace")
    return str(value)


def finite(value):
    """The value when it is a finite number, else None."""
    is_number = isinstance(value, (int, float)) and not isinstance(value, bool)
    return float(value) if is_number and math.isfinite(value) else None


def reading_dict(reading_id, sensor_id, taken_at, temperature_c):
    """A reading as clients receive it, from the raw column values, whatever a writer stored."""
    moment = parse_utc(taken_at)  # None, never an error, for anything unreadable
    temperature = finite(temperature_c)
    problems = []
    if not isinstance(sensor_id, str) or not sensor_id.strip():
        problems.append("sensor_id is not non-empty text")
    if moment is None:
        problems.append("taken_at is not a readable time")
    if temperature is None:
        problems.append("temperature_c is not a finite number")
    reading = {
        "id": reading_id,
        "sensor_id": as_text(sensor_id),
        "taken_at": iso_utc(moment),
        "temperature_c": temperature,
        "valid": not problems,
    }
    if problems:
        reading["reason"] = "; ".join(problems)
    return reading


def time_order(reading):
    """Sort key: by time then id; a reading without a readable time sorts before all others."""
    return (reading["taken_at"] is not None, reading["taken_at"] or "", reading["id"])


# A change's id, for clients, the hub and replays, is its seq: the order changes became visible in
# (readings/pg.py), which on SQLite is the row id.
_CHANGE_COLUMNS = (
    ReadingChange.seq, ReadingChange.op, ReadingChange.reading_id,
    raw(ReadingChange.sensor_id), raw(ReadingChange.taken_at), raw(ReadingChange.temperature_c),
)


def change_dict(change_id, op, reading_id, sensor_id, taken_at, temperature_c):
    """A change-log row as the JSON-ready message every client receives."""
    return {"id": change_id, "op": op,
            "reading": reading_dict(reading_id, sensor_id, taken_at, temperature_c)}


def changes_since(since_id, limit=BATCH):
    """Changes with id (seq) > since_id, in delivery order (needs an app context). Fewer than
    `limit` means the log ends there (for now)."""
    query = (
        select(*_CHANGE_COLUMNS)
        .where(ReadingChange.seq > since_id)
        .order_by(ReadingChange.seq)
        .limit(limit)
    )
    return [change_dict(*row) for row in db.session.execute(query)]


def last_change_id():
    return db.session.execute(select(func.max(ReadingChange.seq))).scalar() or 0


def publish(redis_client, changes):
    """Send each change on the channel, in order, in one round trip."""
    pipe = redis_client.pipeline(transaction=False)
    for change in changes:
        pipe.publish(CHANNEL, encode(change))
    pipe.execute()


class Relay:
    """Publishes what the log has gained since this relay last published.

    The cursor moves only after Redis took the messages, so a Redis outage delays news but
    loses none.
    """

    def __init__(self, redis_client, cursor):
        self.redis = redis_client
        self.cursor = cursor

    def run_once(self):
        if pg.is_postgresql():
            pg.assign_order()  # every relay orders what has committed before it reads
        published = 0
        while True:
            changes = changes_since(self.cursor)
            db.session.rollback()  # end the read transaction: the next check must see new commits
            if not changes:
                return published
            publish(self.redis, changes)
            self.cursor = changes[-1]["id"]
            published += len(changes)


def watch(app, relay, interval_s, stop_event):
    """SQLite: relay writes made outside the app (sqlite3 shell, other programs) within interval_s.
    (PostgreSQL wakes the relay by NOTIFY instead: pg.listen.)

    Runs on the server in a thread; the browser never asks. Errors are logged and retried, and
    the relay's cursor only moves on success, so nothing is skipped.
    """
    with app.app_context():
        while not stop_event.wait(interval_s):
            try:
                relay.run_once()
            except Exception:  # a locked database or a Redis restart: try again next tick
                log.warning("change relay failed; retrying", exc_info=True)
                db.session.rollback()
                stop_event.wait(min(5.0, interval_s * 20))
