"""Beat-driven sampling: read a sensor, validate, write, publish. The logic lives in readings/."""
import logging
from datetime import datetime, timezone

import redis
from celery import shared_task
from celery.utils.time import get_exponential_backoff_interval
from sqlalchemy.exc import OperationalError

from readings import create_db_app, settings
from readings.feed import Relay, last_change_id
from readings.models import db, parse_utc
from readings.sources import InvalidReading, SourceError, source_for, validate
from readings.store import write_reading

log = logging.getLogger(__name__)
_state = {}


def _context():
    """One Flask app, sensor sources and relay per worker process, made on first use."""
    if not _state:
        flask_app = create_db_app()
        with flask_app.app_context():
            cursor = last_change_id()
        _state["app"] = flask_app
        _state["relay"] = Relay(redis.Redis.from_url(settings.redis_url()), cursor)
        _state["sources"] = {}
    return _state


def _source(state, sensor_id):
    if sensor_id not in state["sources"]:
        state["sources"][sensor_id] = source_for(sensor_id, settings.sensor_url())
    return state["sources"][sensor_id]


def take_reading(sensor_id):
    """Read and validate one temperature; None (logged) when there is nothing to store."""
    try:
        return validate(_source(_context(), sensor_id)())
    except SourceError as error:
        log.warning("sensor %s: %s; trying again next period", sensor_id, error)
    except InvalidReading as error:
        log.warning("sensor %s: rejected reading: %s", sensor_id, error)
    return None


@shared_task(bind=True, max_retries=8)
def sample(self, sensor_id, temperature_c=None, taken_at=None):
    """Take one reading (or store the one a retry carries) and publish the change at once.

    A database error retries with exponential backoff, carrying the value and its time, so the
    reading that was taken is the one that gets stored.
    """
    if temperature_c is None:
        temperature_c = take_reading(sensor_id)
        if temperature_c is None:
            return None
        taken_at = datetime.now(timezone.utc).isoformat()
    state = _context()
    with state["app"].app_context():
        try:
            reading_id = write_reading(sensor_id, temperature_c, parse_utc(taken_at))
        except OperationalError as error:
            db.session.rollback()
            delay = get_exponential_backoff_interval(1, self.request.retries, 30, full_jitter=True)
            log.warning("sensor %s: database error, retry in %.1f s: %s", sensor_id, delay, error)
            raise self.retry(
                kwargs={"temperature_c": temperature_c, "taken_at": taken_at},
                countdown=delay,
                expires=None,  # the beat message expires after a period; the reading it took must not
                exc=error,
            ) from error
        _publish(state["relay"])
    return reading_id


def _publish(relay):
    # The web process's watcher relays anything missed here, so a Redis hiccup delays, never loses.
    try:
        relay.run_once()
    except redis.RedisError as error:
        log.warning("could not publish to Redis now (%s); the web watcher will relay it", error)
