"""/ws/readings: replay what a client missed since its last id, then push every change live.
/ws/alerts: the alerts snapshot, then every alert start and end and every band change, live."""
import logging
import threading
from contextlib import contextmanager
from socket import SHUT_RD
from urllib.parse import urlsplit

from flask import abort, current_app, request
from flask_sock import Sock
from simple_websocket import ConnectionClosed

from .feed import BATCH, changes_since, last_change_id
from .hub import alert_snapshot_frame
from .models import db
from .retention import needs_resync, pruned_through

PATH = "/ws/readings"
ALERTS_PATH = "/ws/alerts"
HEARTBEAT_S = 15.0  # at most; with a shorter sampling period, once a period
# The protocol is server-to-client: a client has nothing long to say, and an unbounded message
# would be buffered whole in memory.
MAX_MESSAGE_BYTES = 4096
PING_INTERVAL_S = 25
MAX_ID = 2**63 - 1  # the largest id a database integer holds
# How often an alerts socket's thread looks for a closed peer or a client message (the hub does
# the sending); a readings socket looks once a heartbeat. A peer that is gone is also noticed by
# the hub's next send, which wakes the thread at once. Each look costs the GIL: at 2,500 sockets a
# process, looking every second starved gunicorn's own heartbeat.
CHECK_S = 5.0
log = logging.getLogger(__name__)
sock = Sock()


def init_app(app, hub):
    app.extensions["readings_hub"] = hub
    app.extensions["readings_replay_slots"] = threading.BoundedSemaphore(replay_slots(app))
    app.before_request(refuse_cross_origin)
    app.before_request(decline_extensions)
    app.config.setdefault("SOCK_SERVER_OPTIONS", {
        "ping_interval": PING_INTERVAL_S, "max_message_size": MAX_MESSAGE_BYTES})
    sock.init_app(app)


def replay_slots(app):
    """How many sockets of this process read the log at once: the database pool's steady size
    (SQLAlchemy's default 5), leaving its overflow to the hub, the relay and the pages. A storm of
    reconnecting pages waits its turn here instead of timing out on the pool."""
    with app.app_context():
        size = getattr(db.engine.pool, "size", None)
        return max(1, size()) if callable(size) else 1


@contextmanager
def replay_slot():
    """One of the process's replay slots, and the database session given back on leaving: a
    socket holds a connection only while it reads, never while it sends."""
    with current_app.extensions["readings_replay_slots"]:
        try:
            yield
        finally:
            db.session.remove()


def same_origin(origin, host):
    """True when the Origin header names the host the request came to (or is absent: not a browser)."""
    if not origin:
        return True
    return urlsplit(origin).netloc.lower() == (host or "").lower()


def refuse_cross_origin():
    # Browsers send Origin on every WebSocket handshake; another site's page must not read our feed.
    if request.path in (PATH, ALERTS_PATH) and not same_origin(request.headers.get("Origin"), request.host):
        log.warning("refused cross-origin WebSocket from %r", request.headers.get("Origin"))
        abort(403)


def decline_extensions():
    """Our sockets take no extension (browsers offer permessage-deflate, which simple_websocket
    would accept): a compressor per socket holds ~260 KB of zlib state per open page and CPU for each
    send of frames of a few hundred bytes, and without it a change is framed once for every
    client (hub.wire). simple_websocket negotiates from the request's headers."""
    if request.path in (PATH, ALERTS_PATH):
        request.environ.pop("HTTP_SEC_WEBSOCKET_EXTENSIONS", None)


def parse_since(value):
    """The change id a client asks to replay after, or None when it is not one we can use."""
    try:
        since = int(value)
    except (TypeError, ValueError):
        return None
    return since if 0 <= since <= MAX_ID else None


def start_id(value, newest, pruned=0):
    """Where a client starts: (id, resync). No `since` means from now; a `since` we cannot
    serve (garbage, out of range, ahead of the log after a database reset, or behind what
    retention pruned, a hole) means from now, and the client is told to reload its snapshot."""
    if value is None:
        return newest, False
    since = parse_since(value)
    if since is None or since > newest or needs_resync(since, pruned):
        return newest, True
    return since, False


@sock.route(PATH)
def readings_socket(ws):
    hub = current_app.extensions["readings_hub"]
    value = request.args.get("since")
    # A page that has seen the newest change the hub handed out (most reconnects, and every page
    # opened since the last change) needs nothing from the log.
    client, resync = hub.connect_at_head(ws, parse_since(value)), False
    if client is None:
        with replay_slot():
            since, resync = start_id(value, last_change_id(), pruned_through())
        # Registered before reading the log, so nothing falls between the replay and live news.
        client = hub.connect(ws, since)
    heartbeat_s = min(HEARTBEAT_S, float(current_app.config.get("SAMPLE_PERIOD_S", HEARTBEAT_S)))
    try:
        if resync:
            client.resync()
        if not client.live:
            _replay(client)
            client.go_live()
        _serve(ws, client, heartbeat_s)
    finally:
        _end(hub, client, ws)


@sock.route(ALERTS_PATH)
def alerts_socket(ws):
    """Every (re)connect starts with a snapshot: an end that happened while the page was away
    is in it, so a reconnect never leaves a banner up."""
    hub = current_app.extensions["readings_hub"]
    client = hub.connect_alerts(ws)  # before the snapshot is read: nothing falls between
    try:
        client.forget_pending()
        client.start(alert_snapshot_frame())
        db.session.remove()
        _serve(ws, client)  # idle sockets are kept open by the server's pings (PING_INTERVAL_S)
    finally:
        _end(hub, client, ws)


def _serve(ws, client, heartbeat_s=None):
    """The socket thread's part while the hub sends: notice a closed peer, drop what the client
    says, and send a heartbeat every heartbeat_s (None: none)."""
    look_s = heartbeat_s or CHECK_S
    while ws.connected and not client.closed.wait(look_s):
        if heartbeat_s is not None:
            client.heartbeat()
        _ignore_client_messages(ws)


def _end(hub, client, ws):
    client.close()
    hub.disconnect(client)
    db.session.remove()
    _close(ws)


def _replay(client):
    """Send what the log holds after the client's id, a batch at a time; the database connection
    is held for each read only, in one of the process's replay slots."""
    while not client.closed.is_set():
        with replay_slot():
            changes = changes_since(client.sent, BATCH)
        if changes:
            client.replay(changes)
        # A short batch is the end of the log: what commits later the hub hands to the client
        # (it was registered before this read), so no second read to find nothing.
        if len(changes) < BATCH:
            return


def _close(ws):
    """Close the WebSocket (the close frame goes out first), then read nothing more from it: a
    client cut off mid-message (too big) may still be sending, and Werkzeug's server would
    otherwise read all of it, 10 MB at a time, before closing the connection."""
    try:
        if ws.connected:
            ws.close()
    except (OSError, ConnectionClosed):  # the peer is already gone
        pass
    try:
        ws.sock.shutdown(SHUT_RD)
    except OSError:
        pass


def _ignore_client_messages(ws):
    """The protocol is server-to-client; anything a client sends is logged and dropped."""
    while (message := ws.receive(timeout=0)) is not None:
        log.info("ignoring client message: %.200r", message)
