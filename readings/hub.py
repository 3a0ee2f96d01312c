"""One Redis subscription per web process, fanned out to every connected WebSocket client.

The hub keeps the id of the last change it handed out. Duplicates (several relays publish the
same change) are dropped; a jump in ids, or a fresh subscription after a Redis restart, is filled
from the change log, so each client sees every change once, in order.

The same subscription carries the alerts channel (starts and ends, as the worker publishes them)
and the thresholds channel (a band was saved) to the /ws/alerts clients. Alerts have no log to
replay from, so a client starts from a snapshot, and after a fresh subscription every client gets
a new snapshot: whatever was published while the hub was not listening is in it.
"""
import json
import logging
import threading
from socket import MSG_DONTWAIT

import redis
from wsproto.frame_protocol import FrameProtocol

from . import alerts
from .feed import BATCH, CHANNEL, changes_since, encode, last_change_id, now_ms
from .models import db
from .retention import pruned_through

log = logging.getLogger(__name__)


def frame(prev, changes, resync=False):
    """The one message shape clients receive: changes after `prev`, the id they end at, and the
    server's clock. `resync` tells a client that its `since` could not be served: reload the
    snapshot, the socket carries on from `last`."""
    last = changes[-1]["id"] if changes else prev
    message = {"prev": prev, "last": last, "changes": changes, "now": now_ms()}
    if resync:
        message["resync"] = True
    return encode(message)


def os_socket(sock):
    """The socket the OS sends on. Under gevent's monkey patching a socket's send that finds no
    room waits for it on the event loop; the hub only ever asks "can this take a frame right
    now?", so it sends on gevent's inner socket, which never waits."""
    return sock._sock if type(sock).__module__.startswith("gevent") else sock


def wire(text):
    """A message as the bytes of one WebSocket text frame, the same for every client: our sockets
    negotiate no extension (socket.decline_extensions), so a change is framed once per process,
    not once per client. A fresh FrameProtocol: it keeps state between the parts of a message."""
    return bytes(FrameProtocol(client=False, extensions=[]).send_data(text, fin=True))


def alert_snapshot_frame():
    """The first frame of every /ws/alerts client (in an app context): the open alerts, the
    newest log entries and every band, as alerts.page_state() gives them."""
    return alerts.encode({"event": "snapshot", **alerts.page_state()})


def alert_frame(data):
    """A start or end from the alerts channel as clients receive it (the published shape), or
    None for a message that is not one."""
    try:
        event = json.loads(data)
        if event["event"] in ("started", "ended") and isinstance(event["alert"]["id"], int):
            return alerts.encode(event)
    except (ValueError, KeyError, TypeError):
        pass
    log.warning("ignoring malformed message on %r: %.200r", alerts.CHANNEL, data)
    return None


def thresholds_frame():
    """Every band, read from the database (in an app context): the message only says one changed."""
    return alerts.encode({"event": "thresholds", "thresholds": alerts.thresholds_json()})


class Peer:
    """A WebSocket that the hub thread writes to: never blocking on a peer that stopped reading.
    Until its socket thread makes it `live`, what the hub hands it waits in `pending`; a peer
    that falls more than max_pending behind is closed (it reconnects)."""

    def __init__(self, ws, max_pending):
        self.ws = ws
        self.max_pending = max_pending
        self.pending = []
        self.live = False
        self.lock = threading.Lock()
        self.closed = threading.Event()
        self.sock = os_socket(ws.sock)

    def close(self):
        with self.lock:
            self.live = False
            self.closed.set()

    def _keep(self, items):
        """Hub thread, holding the lock, before the peer is live: `items` wait in `pending`."""
        self.pending.extend(items)
        if len(self.pending) > self.max_pending:
            self.closed.set()

    def _write(self, data):
        """Send one framed message (holding the lock); False, and closed, when the peer cannot
        take all of it now. Never waits: the hub thread sends to every client in turn."""
        try:
            if not self.ws.connected:  # the peer went away; its socket thread cleans up
                return self._give_up()
            if self.sock.send(data, MSG_DONTWAIT) == len(data):
                return True
        except BlockingIOError:  # no room at all (with some room, the send takes part of it)
            pass
        except OSError:
            return self._give_up()
        log.warning("closing a WebSocket that is not reading; it will reconnect")
        return self._give_up()

    def _give_up(self):
        self.closed.set()
        return False


class AlertClient(Peer):
    """One /ws/alerts socket: its snapshot first, then every start, end and band change. What the
    hub hands it before the snapshot is sent waits in `pending`."""

    def __init__(self, ws, max_pending=1000):
        super().__init__(ws, max_pending)

    def deliver(self, data):
        """Hub thread: one framed message (wire)."""
        with self.lock:
            if self.closed.is_set():
                return
            if self.live:
                self._write(data)
            else:
                self._keep([data])

    def forget_pending(self):
        """Socket thread, just before reading its snapshot: what came before is in it."""
        with self.lock:
            self.pending = []

    def start(self, snapshot_text):
        """Socket thread: the snapshot, then what arrived while it was read (the page applies a
        start or end it already has harmlessly), then live."""
        with self.lock:
            for data in [wire(snapshot_text), *self.pending]:
                if not self._write(data):
                    return
            self.pending = []
            self.live = True


class Client(Peer):
    """One connected WebSocket and the id of the last change it was sent.

    While its socket thread replays from the log, news waits in `pending`; once live, the hub
    thread sends to it directly. Sending from the hub thread, rather than waking one thread per
    client, is what keeps a change reaching 1000 clients in tens of milliseconds. A client whose
    socket cannot take more (a stalled reader) is closed instead of blocking everyone: it
    reconnects with its last id and replays, so closing it loses nothing.
    """

    def __init__(self, ws, sent, max_pending=10_000):
        super().__init__(ws, max_pending)
        self.sent = sent

    def deliver(self, prev, changes, data, resync=False):
        """Hub thread: send `changes` (already framed as `data` after `prev`), or keep them."""
        with self.lock:
            if self.closed.is_set():
                return
            if not self.live:
                self._keep(changes)
                return
            if prev != self.sent:
                self._send(changes, resync=resync)
            elif self._write(data):  # up to date, as nearly every client is: the shared frame
                self.sent = changes[-1]["id"]

    def replay(self, changes):
        """Socket thread, before going live: send what the log holds after `sent`."""
        with self.lock:
            self._send(changes)

    def go_live(self):
        """Socket thread, after replaying: send what arrived meanwhile, then let the hub send."""
        with self.lock:
            if self.pending:
                self._send(self.pending)
            self.pending = []
            self.live = True

    def heartbeat(self):
        with self.lock:
            if not self.closed.is_set():
                self._send([])

    def resync(self):
        """Socket thread, first thing: the client's `since` was not usable; we start at `sent`."""
        with self.lock:
            self._send([], wire(frame(self.sent, [], resync=True)))

    def _send(self, changes, data=None, resync=False):
        fresh = [c for c in changes if c["id"] > self.sent]
        if changes and not fresh:
            return
        if not self._write(data if data is not None else wire(frame(self.sent, fresh, resync))):
            return
        if fresh:
            self.sent = fresh[-1]["id"]


class Hub:
    def __init__(self, app, redis_url, retry_s=1.0):
        self.app = app
        self.redis_url = redis_url
        self.retry_s = retry_s
        self.clients = set()
        self.alert_clients = set()
        self.lock = threading.Lock()
        self.last_id = 0
        self.subscribed = threading.Event()

    def start(self):
        with self.app.app_context():
            self.last_id = last_change_id()
            db.session.remove()
        threading.Thread(target=self._run, name="readings-hub", daemon=True).start()

    def connect(self, ws, sent):
        """Register a socket whose client has seen changes up to `sent`; news waits in its
        `pending` until its socket thread has replayed from the log and called go_live."""
        client = Client(ws, sent)
        with self.lock:
            self.clients.add(client)
        return client

    def connect_at_head(self, ws, sent):
        """Register a socket whose client has seen every change this hub has handed out (`sent`
        is the newest), live at once: there is nothing to replay, so no database query. None
        when `sent` is not the newest (the socket reads the log instead).

        Decided under the lock that _dispatch moves last_id under: a change is either handed
        to this client or already behind `sent`, never lost in between."""
        with self.lock:
            if sent is None or sent != self.last_id:
                return None
            client = Client(ws, sent)
            client.live = True
            self.clients.add(client)
        return client

    def disconnect(self, client):
        with self.lock:
            self.clients.discard(client)
            self.alert_clients.discard(client)

    def connect_alerts(self, ws):
        client = AlertClient(ws)
        with self.lock:
            self.alert_clients.add(client)
        return client

    def drop_all(self):
        """Close every socket (clients reconnect and replay): used before maintenance."""
        with self.lock:
            for client in self.clients | self.alert_clients:
                client.close()

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
        pubsub.subscribe(CHANNEL, alerts.CHANNEL, alerts.THRESHOLDS_CHANNEL)
        for _ in range(3):  # the confirmations: we are listening from here
            pubsub.get_message(timeout=1.0)
        self.subscribed.set()
        # Whatever happened while we were not subscribed.
        self._catch_up()
        self._to_alert_clients(alert_snapshot_frame)
        for message in pubsub.listen():
            self.on_message(message["channel"], message["data"])

    def on_message(self, channel, data):
        channel = channel.decode() if isinstance(channel, bytes) else channel
        if channel == alerts.CHANNEL:
            if (text := alert_frame(data)) is not None:
                self._to_alert_clients(lambda: text)
        elif channel == alerts.THRESHOLDS_CHANNEL:
            self._to_alert_clients(thresholds_frame)
        else:
            self.receive(data)

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
        """Hand out what the log holds after last_id. One query per change in the usual case: a
        short batch is the end of the log (a change committed later brings its own message)."""
        with self.app.app_context():
            while changes := changes_since(self.last_id, BATCH):
                self._dispatch(changes, resync=self._hole_before(changes[0]["id"]))
                if len(changes) < BATCH:
                    break
            db.session.remove()

    def _hole_before(self, first_id):
        """True when retention pruned changes after the newest we handed out (only a hub that fell
        that far behind): our clients missed them, and start again from a snapshot. A log that
        goes on right after last_id has no hole; otherwise ask, after reading the changes, so a
        prune in between is seen."""
        return first_id != self.last_id + 1 and pruned_through() > self.last_id

    def _to_alert_clients(self, make_text):
        """make_text() (read in an app context, only when someone listens) to every alert client."""
        with self.lock:
            clients = list(self.alert_clients)
        if not clients:
            return
        with self.app.app_context():
            data = wire(make_text())
            db.session.remove()
        for client in clients:
            client.deliver(data)

    def _dispatch(self, changes, resync=False):
        with self.lock:  # with the list: see connect_at_head
            prev, self.last_id = self.last_id, changes[-1]["id"]
            clients = list(self.clients)
        data = wire(frame(prev, changes, resync))  # framed once for every client up to date
        for client in clients:
            client.deliver(prev, changes, data, resync)
