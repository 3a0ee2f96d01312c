"""The change feed: read the change log, publish it on Redis, and catch up after gaps.

The log (reading_changes) is the truth; Redis only carries news. Any number of relays may publish
the same change: whoever receives drops ids it has already seen and reads the log to fill gaps.
"""
import json
import logging

from sqlalchemy import func, select

from .models import ReadingChange, db

CHANNEL = "readings"
log = logging.getLogger(__name__)


def iso_utc(moment):
    """'2026-11-29T03:00:00.123Z', or None."""
    if moment is None:
        return None
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def reading_dict(reading_id, sensor_id, taken_at, temperature_c):
    return {
        "id": reading_id,
        "sensor_id": sensor_id,
        "taken_at": iso_utc(taken_at),
        "temperature_c": temperature_c,
    }


def change_dict(change):
    """A change-log row as the JSON-ready message every client receives."""
    return {
        "id": change.id,
        "op": change.op,
        "reading": reading_dict(
            change.reading_id, change.sensor_id, change.taken_at, change.temperature_c
        ),
    }


def changes_since(since_id, limit=1000):
    """Changes with id > since_id, oldest first (needs an app context)."""
    query = (
        select(ReadingChange)
        .where(ReadingChange.id > since_id)
        .order_by(ReadingChange.id)
        .limit(limit)
    )
    return [change_dict(c) for c in db.session.execute(query).scalars()]


def last_change_id():
    return db.session.execute(select(func.max(ReadingChange.id))).scalar() or 0


def publish(redis_client, changes):
    """Send each change on the channel, in order, in one round trip."""
    pipe = redis_client.pipeline(transaction=False)
    for change in changes:
        pipe.publish(CHANNEL, json.dumps(change))
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
        published = 0
        while True:
            changes = changes_since(self.cursor)
            db.session.rollback()  # end the read transaction: the next check must see new commits
            if not changes:
                return published
            publish(self.redis, changes)
            self.cursor = changes[-1]["id"]
            published += len(changes)


def watch(app, redis_client, interval_s, stop_event):
    """Relay writes made outside the app (sqlite3 shell, psql, other hosts) within interval_s.

    Runs on the server in a thread; the browser never asks. Errors are logged and retried, and
    the relay's cursor only moves on success, so nothing is skipped.
    """
    with app.app_context():
        relay = Relay(redis_client, last_change_id())
        db.session.rollback()
        while not stop_event.wait(interval_s):
            try:
                relay.run_once()
            except Exception:  # a locked database or a Redis restart: try again next tick
                log.warning("change relay failed; retrying", exc_info=True)
                db.session.rollback()
                stop_event.wait(min(5.0, interval_s * 20))
