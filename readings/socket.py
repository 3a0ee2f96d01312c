"""/ws/readings: replay what a client missed since its last id, then push every change live."""
import json
import logging
from urllib.parse import urlsplit

from flask import abort, current_app, request
from flask_sock import Sock

from .feed import changes_since, last_change_id
from .models import db

PATH = "/ws/readings"
HEARTBEAT_S = 15.0
log = logging.getLogger(__name__)
sock = Sock()


def init_app(app, hub):
    app.extensions["readings_hub"] = hub
    app.before_request(refuse_cross_origin)
    sock.init_app(app)


def same_origin(origin, host):
    """True when the Origin header names the host the request came to (or is absent: not a browser)."""
    if not origin:
        return True
    return urlsplit(origin).netloc.lower() == (host or "").lower()


def refuse_cross_origin():
    # Browsers send Origin on every WebSocket handshake; another site's page must not read our feed.
    if request.path == PATH and not same_origin(request.headers.get("Origin"), request.host):
        log.warning("refused cross-origin WebSocket from %r", request.headers.get("Origin"))
        abort(403)


def parse_since(value):
    try:
        return max(0, int(value))
    except (TypeError, ValueError):
        return None


def frame(prev, changes):
    last = changes[-1]["id"] if changes else prev
    return json.dumps({"prev": prev, "last": last, "changes": changes})


@sock.route(PATH)
def readings_socket(ws):
    hub = current_app.extensions["readings_hub"]
    client = hub.connect()  # before reading the log, so nothing falls between replay and live
    try:
        since = parse_since(request.args.get("since"))
        sent = last_change_id() if since is None else since
        sent = _replay(ws, sent)
        db.session.remove()
        while ws.connected and not client.dropped.is_set():
            fresh = [c for c in client.take(timeout=HEARTBEAT_S) if c["id"] > sent]
            ws.send(frame(sent, fresh))
            sent = fresh[-1]["id"] if fresh else sent
            _ignore_client_messages(ws)
    finally:
        hub.disconnect(client)
        db.session.remove()


def _replay(ws, sent):
    while True:
        changes = changes_since(sent)
        if not changes:
            return sent
        ws.send(frame(sent, changes))
        sent = changes[-1]["id"]


def _ignore_client_messages(ws):
    """The protocol is server-to-client; anything a client sends is logged and dropped."""
    while (message := ws.receive(timeout=0)) is not None:
        log.info("ignoring client message: %.200r", message)
