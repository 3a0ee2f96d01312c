"""The readings domain: table and change log, the feed to Redis, the WebSocket, the sensors.

Shared by the web app and the worker; knows nothing of Dash.
"""
import threading

import redis
from flask import Flask

from . import settings
from .models import init_db


def create_db_app(config=None, upgrade=True):
    """A Flask app bound to the database: the worker's context, and the base of the web app."""
    app = Flask(__name__, instance_path=str(settings.INSTANCE_DIR))
    app.config.from_mapping(settings.flask_config())
    app.config.from_mapping(config or {})
    init_db(app, upgrade)
    return app


def start_live_feed(app, check_interval_s=0.1):
    """Start this web process's Redis subscription and its watcher for outside writers."""
    from . import feed, socket
    from .hub import Hub

    hub = Hub(app, app.config["REDIS_URL"])
    socket.init_app(app, hub)
    hub.start()
    stop = threading.Event()
    redis_client = redis.Redis.from_url(app.config["REDIS_URL"])
    threading.Thread(
        target=feed.watch,
        args=(app, redis_client, check_interval_s, stop),
        name="readings-watch",
        daemon=True,
    ).start()
    return hub
