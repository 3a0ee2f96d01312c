"""The readings domain: table and change log, the feed to Redis, the WebSocket, the sensors.

Shared by the web app and the worker; knows nothing of Dash.
"""
import threading

import redis
from flask import Flask, current_app

from . import settings
from .models import db, init_db


def create_db_app(config=None, upgrade=True):
    """A Flask app bound to the database: the worker's context, and the base of the web app."""
    app = Flask(__name__, instance_path=str(settings.INSTANCE_DIR))
    app.config.from_mapping(settings.flask_config())
    app.config.from_mapping(config or {})
    init_db(app, upgrade)
    return app


def redis_client(app=None):
    """The process's one Redis client for the app (default: the current one): its connection
    pool serves every thread, so the relay, band announcements and labelling waits share it."""
    app = app or current_app
    if "redis_client" not in app.extensions:  # two threads racing here make one spare client
        app.extensions["redis_client"] = redis.Redis.from_url(app.config["REDIS_URL"])
    return app.extensions["redis_client"]


def start_live_feed(app, check_interval_s=0.1):
    """Start this web process's Redis subscription and its relay for outside writers: a LISTEN
    connection on PostgreSQL, a check every check_interval_s on SQLite."""
    from . import feed, pg, socket
    from .hub import Hub

    hub = Hub(app, app.config["REDIS_URL"])
    socket.init_app(app, hub)
    hub.start()
    stop = threading.Event()
    with app.app_context():
        on_postgresql = pg.is_postgresql()
        relay = feed.Relay(redis_client(app), feed.last_change_id())
        db.session.remove()
    if on_postgresql:
        target, args = pg.listen, (app, relay, stop)
    else:
        target, args = feed.watch, (app, relay, check_interval_s, stop)
    threading.Thread(target=target, args=args, name="readings-relay", daemon=True).start()
    return hub
