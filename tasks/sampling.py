"""Beat-driven sampling: read a sensor, validate, write, publish. The logic lives in readings/.

Each sample message carries its period slot, stamped when it is published (beat, retry or any
caller), so a second beat, a redelivery or a retry of the same (sensor, slot) stores nothing new.
"""
import logging
import time
from datetime import datetime, timezone

import redis
from celery import shared_task
from celery.exceptions import SoftTimeLimitExceeded
from celery.signals import before_task_publish
from celery.utils.time import get_exponential_backoff_interval
from sqlalchemy.exc import OperationalError

from readings import create_db_app, settings
from readings.feed import Relay, last_change_id
from readings.models import db, parse_utc
from readings.sampling import slot_of, write_sample
from readings.sources import InvalidReading, SourceError, source_for, validate

from . import TIMINGS
from .alerts import after_reading

log = logging.getLogger(__name__)
_state = {}
TASK_NAME = "tasks.sampling.sample"


@before_task_publish.connect(sender=TASK_NAME, weak=False)
def stamp_slot(body=None, **_):
    """Give a sample message its slot as it is published: a redelivery carries the same one."""
    _args, kwargs, _embed = body  # protocol 2; kwargs is this message's own dict
    if kwargs.get("slot") is None:
        kwargs["slot"] = slot_of(time.time(), TIMINGS.period_s)


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
        state["sources"][sensor_id] = source_for(
            sensor_id, settings.sensor_url(), TIMINGS.read_deadline_s)
    return state["sources"][sensor_id]


def take_reading(sensor_id):
    """Read and validate one temperature; None (logged) when there is nothing to store."""
    try:
        return validate(_source(_context(), sensor_id)())
    except SourceError as error:
        log.warning("sensor %s: %s; trying again next period", sensor_id, error)
    except InvalidReading as error:
        log.warning("sensor %s: rejected reading: %s", sensor_id, error)
    except SoftTimeLimitExceeded:
        log.warning("sensor %s: no reading within the task's time limit; next period", sensor_id)
    return None


@shared_task(bind=True, max_retries=None, acks_late=True,
             soft_time_limit=TIMINGS.soft_limit_s, time_limit=TIMINGS.hard_limit_s)
def sample(self, sensor_id, temperature_c=None, taken_at=None, slot=None):
    """Take one reading (or store the one a retry carries) and publish the change at once.

    A database error retries with exponential backoff, carrying the value, its time and its slot,
    so the reading that was taken is the one that gets stored, once. It retries for as long as
    the database refuses: a reading handed to the broker is never dropped.
    """
    if temperature_c is None:
        temperature_c = take_reading(sensor_id)
        if temperature_c is None:
            return None
        taken_at = datetime.now(timezone.utc).isoformat()
        # One line per reading taken: what bench/soak.py counts against what got stored.
        log.info("sensor %s: took %s C at %s, slot %s", sensor_id, temperature_c, taken_at, slot)
    state = _context()
    with state["app"].app_context():
        try:
            reading_id = write_sample(sensor_id, temperature_c, parse_utc(taken_at), slot)
        except (OperationalError, SoftTimeLimitExceeded) as error:
            db.session.rollback()
            raise _retry(self, sensor_id, temperature_c, taken_at, slot, error) from error
        if reading_id is None:
            log.info("sensor %s: slot %s already stored (a repeat); nothing to do", sensor_id, slot)
            return None
        _publish(state["relay"])
        after_reading(sensor_id)  # alerts: logs its own failures, never fails this task
    return reading_id


def _retry(task, sensor_id, temperature_c, taken_at, slot, error):
    # Countdowns stay under the broker's visibility timeout, or a waiting retry would be handed
    # out a second time. No expiry: this message carries a reading already taken.
    delay = get_exponential_backoff_interval(
        1, task.request.retries, TIMINGS.max_retry_countdown_s, full_jitter=True)
    log.warning("sensor %s: database error, retry in %.1f s (task %s: %s C at %s, slot %s): %s",
                sensor_id, delay, task.request.id, temperature_c, taken_at, slot, error)
    return task.retry(
        kwargs={"temperature_c": temperature_c, "taken_at": taken_at, "slot": slot},
        countdown=delay, expires=None, exc=error,
    )


def _publish(relay):
    # The web process's watcher relays anything missed here, so a Redis hiccup delays, never loses.
    # Nor does the reading's task fail after its commit because of some other row in the log.
    try:
        relay.run_once()
    except redis.RedisError as error:
        log.warning("could not publish to Redis now (%s); the web watcher will relay it", error)
    except Exception:
        log.exception("could not relay the change log; the reading is stored")
