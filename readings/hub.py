"""One Redis subscription per web process, fanned out to every connected WebSocket client.

The hub keeps the id of the last change it handed out. Duplicates (several relays publish the
same change) are dropped; a jump in ids, or a fresh subscription after a Redis restart, is filled
from the change log, so each client sees every change once, in order.
"""
import json
import logging
import queue
import threading

import redis

from .feed import CHANNEL, changes_since, last_change_id
from .models import db

log = logging.getLogger(__name__)


class Client:
    """A connected socket's inbox. A client that falls too far behind is dropped; it reconnects
    with the last id it saw and replays from the log, so dropping it loses nothing."""

    def __init__(self, max_backlog=10_000):
        self.inbox = queue.SimpleQueue()
        self.max_backlog = max_backlog
        self.dropped = threading.Event()

    def put(self, changes):
        if self.inbox.qsize() > self.max_backlog:
            self.drop()
        self.inbox.put(changes)

    def drop(self):
        self.dropped.set()
        self.inbox.put([])  # wake the socket's thread so it closes now

    def take(self, timeout):
        """Every change waiting, as one list; [] after timeout."""
        try:
            changes = list(self.inbox.get(timeout=timeout))
        except queue.Empty:
            return []
        while True:
            try:
                changes.extend(self.inbox.get_nowait())
            except queue.Empty:
                return changes


class Hub:
    def __init__(self, app, redis_url, retry_s=1.0):
        self.app = app
        self.redis_url = redis_url
        self.retry_s = retry_s
        self.clients = set()
        self.lock = threading.Lock()
        self.last_id = 0
        self.subscribed = threading.Event()

    def start(self):
        with self.app.app_context():
            self.last_id = last_change_id()
            db.session.remove()
        threading.Thread(target=self._run, name="readings-hub", daemon=True).start()

    def connect(self):
        client = Client()
        with self.lock:
            self.clients.add(client)
        return client

    def disconnect(self, client):
        with self.lock:
            self.clients.discard(client)

    def drop_all(self):
        """Close every socket (clients reconnect and replay): used before maintenance."""
        with self.lock:
            for client in self.clients:
                client.drop()

    def _run(self):
        while True:
            try:
                self._listen()
            except Exception:
                log.warning("Redis subscription lost; resubscribing", exc_info=True)
            self.subscribed.clear()
            threading.Event().wait(self.retry_s)

    def _listen(self):
        connection = redis.Redis.from_url(self.redis_url, health_check_interval=10)
        pubsub = connection.pubsub(ignore_subscribe_messages=True)
        pubsub.subscribe(CHANNEL)
        pubsub.get_message(timeout=1.0)  # the subscribe confirmation: we are listening from here
        self.subscribed.set()
        self._catch_up()  # whatever happened while we were not subscribed
        for message in pubsub.listen():
            self.receive(message["data"])

    def receive(self, data):
        try:
            change_id = int(json.loads(data)["id"])
        except (ValueError, KeyError, TypeError):
            log.warning("ignoring malformed message on %r: %.200r", CHANNEL, data)
            return
        if change_id > self.last_id:
            # Read the log rather than trust the message: fills any gap, and in id order.
            self._catch_up()

    def _catch_up(self):
        with self.app.app_context():
            while True:
                changes = changes_since(self.last_id)
                if not changes:
                    break
                self._dispatch(changes)
            db.session.remove()

    def _dispatch(self, changes):
        self.last_id = changes[-1]["id"]
        with self.lock:
            clients = list(self.clients)
        for client in clients:
            client.put(changes)
