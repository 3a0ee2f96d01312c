"""Alert tasks: evaluate after each reading and on a beat (stale sensors), call the webhook.
The rules live in readings/alerts.py; these only schedule them and deliver what they report.
"""
import functools
import logging
from datetime import datetime, timezone

import redis
import sqlalchemy
from celery import shared_task
from sqlalchemy.exc import OperationalError

from readings import alerts, create_db_app, settings
from readings.models import db

from . import TIMINGS

log = logging.getLogger(__name__)
STALE_AFTER_S = alerts.stale_after_s(TIMINGS.period_s)


# The beat's tasks share the worker's processes with sampling: they must not wait out somebody's
# long write lock (a sample would miss its period); they run again next time anyway.
BEAT_LOCK_WAIT_MS = 200


@functools.cache
def flask_app():
    """One Flask app per worker process for the beat's alert and retention tasks (the sampler's
    own app keeps the usual busy timeout for the readings it must not lose, and migrates: a
    migration waits for any lock, so these never start one)."""
    app = create_db_app(upgrade=False)
    with app.app_context():
        if db.engine.dialect.name == "sqlite":
            sqlalchemy.event.listen(db.engine, "checkout", _short_lock_wait)
    return app


def _short_lock_wait(dbapi_connection, _record, _proxy):
    cursor = dbapi_connection.cursor()
    cursor.execute(f"PRAGMA busy_timeout={BEAT_LOCK_WAIT_MS}")
    cursor.close()


@functools.cache
def _redis():
    return redis.Redis.from_url(settings.redis_url())


def after_reading(sensor_id):
    """Evaluate the sensor's alerts after its reading is stored (in an app context). Never raises:
    the reading is stored whatever happens here, and the next reading or beat evaluates again."""
    try:
        announce(alerts.evaluate_sensor(sensor_id, datetime.now(timezone.utc), STALE_AFTER_S))
    except Exception:
        db.session.rollback()
        log.exception("sensor %s: could not evaluate alerts; the reading is stored", sensor_id)


def announce(events):
    """Publish each alert change on Redis and hand it to the webhook task; failures are logged."""
    if not events:
        return
    for event in events:
        log.info("alert %s: %s", event["event"], event["alert"])
    try:
        alerts.publish(_redis(), events)
    except (redis.RedisError, ValueError) as error:
        log.warning("could not publish %d alert change(s) on Redis: %s", len(events), error)
    url = alerts.webhook_url()
    for event in events if url else ():
        try:
            send_webhook.delay(url, event)
        except Exception:
            log.exception("could not queue the webhook for alert %s", event["alert"]["id"])


@shared_task(ignore_result=True)
def check():
    """Every period: stale sensors, and readings the worker did not write itself."""
    with flask_app().app_context():
        try:
            events = alerts.evaluate_all(settings.sensors(), datetime.now(timezone.utc), STALE_AFTER_S)
        except OperationalError as error:
            log.warning("alerts: database busy or not migrated yet (%s); checking again next period", error)
            return
        announce(events)


# A webhook gets as long as a sensor read: a slow one never holds the worker for long. Retry
# countdowns stay under the broker's visibility timeout (see readings.sampling.Timings), or a
# waiting retry would be handed out twice.
@shared_task(ignore_result=True, autoretry_for=(OSError,), max_retries=8, retry_backoff=1,
             retry_backoff_max=int(TIMINGS.max_retry_countdown_s),
             soft_time_limit=TIMINGS.soft_limit_s, time_limit=TIMINGS.hard_limit_s)
def send_webhook(url, event):
    alerts.post_json(url, event, TIMINGS.read_deadline_s)
