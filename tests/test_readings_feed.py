import json
import socket
import sqlite3
import threading
import time
from datetime import datetime, timedelta, timezone

import redis
from conftest import both_databases
from wsproto.frame_protocol import FrameProtocol

from readings import hub as hub_module
from readings import pg, store
from readings import socket as socket_module
from readings.feed import CHANNEL, Relay, changes_since, last_change_id
from readings.hub import Hub, wire
from readings.models import Reading, db


def db_path(app):
    return app.config["SQLALCHEMY_DATABASE_URI"].removeprefix("sqlite:///")


def test_triggers_log_insert_update_delete_made_outside_the_app(db_app):
    with sqlite3.connect(db_path(db_app), isolation_level=None) as shell:
        shell.execute("INSERT INTO readings (sensor_id, taken_at, temperature_c) "
                      "VALUES ('hand', '2026-11-29 12:00:00', 21.5)")
        shell.execute("UPDATE readings SET temperature_c = 22 WHERE sensor_id = 'hand'")
        shell.execute("DELETE FROM readings WHERE sensor_id = 'hand'")
    changes = changes_since(0)
    assert [c["op"] for c in changes] == ["INSERT", "UPDATE", "DELETE"]
    assert [c["reading"]["temperature_c"] for c in changes] == [21.5, 22.0, 22.0]
    assert changes[0]["reading"]["taken_at"] == "2026-11-29T12:00:00.000Z"
    assert [c["id"] for c in changes] == sorted(c["id"] for c in changes)


def test_hand_written_row_with_only_three_values_reads_back(db_app):
    with sqlite3.connect(db_path(db_app), isolation_level=None) as shell:
        shell.execute("INSERT INTO readings (sensor_id, temperature_c) VALUES ('hand', 19.5)")
        shell.execute("INSERT INTO readings (sensor_id, taken_at, temperature_c) "
                      "VALUES ('hand', '2026-11-29T12:00:00Z', 20)")
    rows = store.latest("hand")
    assert {r["temperature_c"] for r in rows} == {19.5, 20.0}
    assert all(r["taken_at"].endswith("Z") for r in rows)


def test_change_ids_are_never_reused_after_delete(db_app):
    first = store.write_reading("s", 20.0)
    db.session.execute(db.delete(Reading))
    db.session.commit()
    store.write_reading("s", 21.0)
    ids = [c["id"] for c in changes_since(0)]
    assert ids == [1, 2, 3] and first == 1


def test_window_and_latest(db_app):
    now = datetime.now(timezone.utc)
    for minutes, value in [(90, 18.0), (30, 19.0), (5, 20.0)]:
        store.write_reading("s", value, now - timedelta(minutes=minutes))
    store.write_reading("other", 30.0, now)
    assert [r["temperature_c"] for r in store.window("s", 3600)] == [19.0, 20.0]
    assert [r["temperature_c"] for r in store.latest("s", 2)] == [20.0, 19.0]
    # Configured sensors first (the page's default is the first), then the others by name.
    assert store.sensor_ids() == ["sensor-1", "other", "s"]


def write(value):
    """A reading written and ordered, as the relay orders it before publishing (PostgreSQL)."""
    reading_id = store.write_reading("s", value)
    if pg.is_postgresql():
        pg.assign_order()
    return reading_id


def subscribe(redis_url):
    pubsub = redis.Redis.from_url(redis_url).pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe(CHANNEL)
    pubsub.get_message(timeout=1)
    return pubsub


def received(pubsub, n, timeout=3.0):
    out, deadline = [], time.monotonic() + timeout
    while len(out) < n and time.monotonic() < deadline:
        message = pubsub.get_message(timeout=0.1)
        if message:
            out.append(json.loads(message["data"]))
    return out


@both_databases
def test_relay_publishes_each_new_change_once_in_order(db_app, redis_server):
    pubsub = subscribe(redis_server.url)
    relay = Relay(redis.Redis.from_url(redis_server.url), last_change_id())
    ids = [store.write_reading("s", 20.0 + i) for i in range(3)]
    assert relay.run_once() == 3
    assert relay.run_once() == 0
    got = received(pubsub, 4, timeout=1)
    assert [m["reading"]["id"] for m in got] == ids
    assert [m["op"] for m in got] == ["INSERT"] * 3


@both_databases
def test_relay_keeps_its_cursor_when_redis_is_down(db_app):
    relay = Relay(redis.Redis.from_url("redis://127.0.0.1:9/0"), 0)
    store.write_reading("s", 20.0)
    try:
        relay.run_once()
    except redis.ConnectionError:
        pass
    assert relay.cursor == 0  # it will publish this change once Redis is back


class RecordingSocket:
    """A client's WebSocket as the hub sees it: `sock` is one end of a real socket pair, written
    by the hub (framed bytes) and by send() (simple_websocket's way); `frames` decodes, as a
    browser would, every message that reached the other end."""
    connected = True

    def __init__(self):
        self.sock, self.peer = socket.socketpair()
        self.peer.setblocking(False)
        self.reader = FrameProtocol(client=True, extensions=[])
        self.received = []

    def send(self, text):
        self.sock.sendall(wire(text))

    def arrived(self):
        """The bytes waiting at the browser's end."""
        data = b""
        while True:
            try:
                chunk = self.peer.recv(1 << 16)
            except BlockingIOError:
                return data
            if not chunk:
                return data
            data += chunk

    @property
    def frames(self):
        self.reader.receive_bytes(self.arrived())
        self.received += [json.loads(frame.payload) for frame in self.reader.received_frames()]
        return self.received


@both_databases
def test_hub_fills_gaps_from_the_log_and_drops_duplicates(db_app, redis_server):
    hub = Hub(db_app, redis_server.url)
    ws = RecordingSocket()
    hub.connect(ws, 0).go_live()
    for value in (20.0, 21.0, 22.0):
        write(value)
    hub.receive(json.dumps({"id": 3}))  # news of 3 only: 1 and 2 come from the log
    hub.receive(json.dumps({"id": 2}))  # a late duplicate
    hub.receive(b"not json")            # ignored, logged
    assert [[c["id"] for c in f["changes"]] for f in ws.frames] == [[1, 2, 3]]
    assert ws.frames[0]["prev"] == 0 and ws.frames[0]["last"] == 3


@both_databases
def test_hub_catches_up_across_several_batches_of_the_log(db_app, redis_server, monkeypatch):
    monkeypatch.setattr(hub_module, "BATCH", 2)
    hub = Hub(db_app, redis_server.url)
    ws = RecordingSocket()
    hub.connect(ws, 0).go_live()
    ids = [write(20.0 + i) for i in range(5)]
    hub.receive(json.dumps({"id": 5}))  # one message for five changes: three batches of the log
    assert [c["id"] for f in ws.frames for c in f["changes"]] == ids
    assert not any(f.get("resync") for f in ws.frames)


@both_databases
def test_a_replay_reads_the_log_in_batches_until_a_short_one(db_app, redis_server, monkeypatch):
    monkeypatch.setattr(socket_module, "BATCH", 2)
    db_app.extensions["readings_replay_slots"] = threading.BoundedSemaphore(1)
    client = Hub(db_app, redis_server.url).connect(ws := RecordingSocket(), 0)
    ids = [write(20.0 + i) for i in range(5)]
    with db_app.app_context():
        socket_module._replay(client)  # batches of 2, 2, then 1: the end of the log
    assert [c["id"] for f in ws.frames for c in f["changes"]] == ids


@both_databases
def test_client_keeps_news_while_replaying_and_sends_each_change_once(db_app, redis_server):
    hub = Hub(db_app, redis_server.url)
    ws = RecordingSocket()
    client = hub.connect(ws, 0)
    ids = [write(20.0 + i) for i in range(3)]
    hub.receive(json.dumps({"id": 3}))  # news arrives before the replay is done
    client.replay(changes_since(0)[:2])
    client.go_live()
    write(30.0)
    hub.receive(json.dumps({"id": 4}))
    sent = [c["id"] for f in ws.frames for c in f["changes"]]
    assert sent == ids + [4]
    assert all(f["prev"] == g["last"] for g, f in zip(ws.frames, ws.frames[1:]))


@both_databases
def test_a_client_that_stops_reading_is_closed_not_waited_for(db_app, redis_server):
    hub = Hub(db_app, redis_server.url)
    stalled = RecordingSocket()
    stalled.sock.setblocking(False)
    while True:  # fill the socket's buffers, as a browser that stopped reading would
        try:
            stalled.sock.send(b"x" * 65536)
        except BlockingIOError:
            break
    client = hub.connect(stalled, 0)
    client.go_live()
    write(20.0)
    hub.receive(json.dumps({"id": 1}))
    assert client.closed.is_set()
    assert set(stalled.arrived()) == {ord("x")}  # the filler only: no frame was forced in


def test_hub_drop_all_closes_clients(db_app, redis_server):
    hub = Hub(db_app, redis_server.url)
    client = hub.connect(RecordingSocket(), 0)
    hub.drop_all()
    assert client.closed.is_set()
