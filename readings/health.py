"""GET /healthz for load balancers: can this process serve pages, and how fresh is the data?

503 only when the database is unreachable. Redis down is reported as "degraded" with a 200: pages
still work, the feed catches up from the change log when Redis is back, and a Redis blip must not
make a load balancer take every web process out at once.
"""
import logging
import os
from datetime import datetime, timezone

import redis
from flask import Blueprint, current_app, jsonify
from sqlalchemy import create_engine, select
from sqlalchemy.pool import NullPool

from .models import Reading, db

REDIS_TIMEOUT_S = 0.5
log = logging.getLogger(__name__)
blueprint = Blueprint("health", __name__)


def init_app(app):
    # A fresh database connection per check, not one from the pool: a pooled SQLite connection
    # keeps reading a file that was deleted or replaced, and would report it healthy.
    with app.app_context():
        url = db.engine.url
    # A host that drops packets must not hold a check for minutes (SQLite's own timeout is 5 s).
    connect_args = {"connect_timeout": 3} if url.get_backend_name() == "postgresql" else {}
    app.extensions["health"] = {
        "engine": create_engine(url, poolclass=NullPool, connect_args=connect_args),
        "redis": redis.Redis.from_url(app.config["REDIS_URL"], socket_timeout=REDIS_TIMEOUT_S,
                                      socket_connect_timeout=REDIS_TIMEOUT_S),
        "status": None,
    }
    app.register_blueprint(blueprint)


def newest_reading_age_s(engine, now=None):
    """Seconds since the newest reading was taken (the one with the highest id: the primary key
    finds it without a scan), or None when there are none."""
    with engine.connect() as connection:
        taken_at = connection.execute(
            select(Reading.taken_at).order_by(Reading.id.desc()).limit(1)).scalar()
    if taken_at is None:
        return None
    return round(((now or datetime.now(timezone.utc)) - taken_at).total_seconds(), 3)


def check(engine, redis_client):
    """The report and its HTTP status."""
    report = {"database": "ok", "redis": "ok", "newest_reading_age_s": None}
    try:
        report["newest_reading_age_s"] = newest_reading_age_s(engine)
    except Exception as error:  # any driver's "cannot connect", "no such table", ...
        report["database"] = "down"
        report["database_error"] = type(error).__name__  # the name only, never the trace
    try:
        redis_client.ping()
    except redis.RedisError:
        report["redis"] = "down"
    if report["database"] == "down":
        report["status"] = "down"
    else:
        report["status"] = "ok" if report["redis"] == "ok" else "degraded"
    return report, 503 if report["status"] == "down" else 200


@blueprint.get("/healthz")
def healthz():
    state = current_app.extensions["health"]
    report, status = check(state["engine"], state["redis"])
    hub = current_app.extensions.get("readings_hub")
    report.update(
        pid=os.getpid(),  # which process answered: many share one address
        subscribed=bool(hub and hub.subscribed.is_set()),
        clients=len(hub.clients) if hub else 0,
    )
    if report["status"] != state["status"]:  # one line per change of state, not per check
        level = logging.INFO if report["status"] == "ok" else logging.WARNING
        log.log(level, "health: %s (database %s, redis %s)",
                report["status"], report["database"], report["redis"])
        state["status"] = report["status"]
    return jsonify(report), status
