"""The WebSocket against a real `python app.py`, a real Redis, and SQLite or PostgreSQL."""
import json
import time
from pathlib import Path

import pytest
import websocket
from conftest import newest_change, wait_until

from readings.socket import same_origin

pytestmark = pytest.mark.usefixtures("database")


def ws_url(web_server, since=None):
    url = web_server.url.replace("http://", "ws://") + "/ws/readings"
    return url if since is None else f"{url}?since={since}"


def read_changes(ws, until_id, timeout=5.0):
    """Frames until one reaches until_id; checks that each frame follows the previous."""
    changes, last, deadline = [], None, time.monotonic() + timeout
    ws.settimeout(timeout)
    while time.monotonic() < deadline:
        frame = json.loads(ws.recv())
        assert last is None or frame["prev"] == last
        last = frame["last"]
        changes += frame["changes"]
        if last >= until_id:
            return changes
    raise AssertionError(f"no change {until_id} within {timeout} s; got {changes}")


def insert(db_exec, value, sensor="sensor-1"):
    db_exec("INSERT INTO readings (sensor_id, taken_at, temperature_c) "
            "VALUES (?, '2026-11-29 12:00:00', ?)", (sensor, value))
    return newest_change(db_exec)


def test_replays_from_since_then_streams_outside_writes(web_server, db_exec):
    first = insert(db_exec, 20.0)
    second = insert(db_exec, 21.0)
    ws = websocket.create_connection(ws_url(web_server, since=first))
    assert [c["id"] for c in read_changes(ws, second)] == [second]
    db_exec("UPDATE readings SET temperature_c = 25 WHERE id = 1")
    db_exec("DELETE FROM readings WHERE id = 2")
    changes = read_changes(ws, second + 2)
    assert [(c["op"], c["reading"]["id"]) for c in changes] == [("UPDATE", 1), ("DELETE", 2)]
    assert changes[0]["reading"]["temperature_c"] == 25.0
    ws.close()


def test_without_since_only_new_changes_arrive(web_server, db_exec):
    insert(db_exec, 20.0)
    ws = websocket.create_connection(ws_url(web_server))
    assert first_frame(ws, timeout=10)["changes"] == []  # a heartbeat: the socket has read "now"
    newest = insert(db_exec, 22.0)
    assert [c["id"] for c in read_changes(ws, newest)] == [newest]


def test_every_client_gets_every_change(web_server, db_exec):
    sockets = [websocket.create_connection(ws_url(web_server, since=0)) for _ in range(5)]
    ids = [insert(db_exec, 20.0 + i) for i in range(10)]
    for ws in sockets:
        assert [c["id"] for c in read_changes(ws, ids[-1])] == ids


def test_cross_origin_handshake_is_refused(web_server):
    with pytest.raises(websocket.WebSocketBadStatusException) as refused:
        websocket.create_connection(ws_url(web_server), origin="http://evil.example")
    assert refused.value.status_code == 403
    ok = websocket.create_connection(ws_url(web_server), origin=web_server.url)
    ok.close()


def test_malformed_client_messages_are_ignored_and_logged(web_server, db_exec):
    ws = websocket.create_connection(ws_url(web_server, since=0))
    ws.send("{not json")
    ws.send_binary(b"\x00\xff")
    newest = insert(db_exec, 20.0)
    assert [c["id"] for c in read_changes(ws, newest)] == [newest]
    wait_until(lambda: web_server.output().count("ignoring client message") == 2, timeout=5,
               what="both client messages to be logged")


def test_dropped_sockets_reconnect_and_replay_what_they_missed(web_server, db_exec):
    ws = websocket.create_connection(ws_url(web_server, since=0))
    seen = read_changes(ws, insert(db_exec, 20.0))
    web_server.drop_sockets()
    ws.settimeout(5)
    opcode, _ = ws.recv_data()
    while opcode != websocket.ABNF.OPCODE_CLOSE:  # heartbeats may come first
        opcode, _ = ws.recv_data(control_frame=True)
    missed = [insert(db_exec, 21.0 + i) for i in range(3)]
    again = websocket.create_connection(ws_url(web_server, since=seen[-1]["id"]))
    assert [c["id"] for c in read_changes(again, missed[-1])] == missed


def test_a_redis_restart_loses_nothing(web_server, db_exec, redis_server):
    ws = websocket.create_connection(ws_url(web_server, since=0))
    read_changes(ws, insert(db_exec, 20.0))
    redis_server.stop()
    during = insert(db_exec, 21.0)
    redis_server.start()
    after = insert(db_exec, 22.0)
    assert [c["id"] for c in read_changes(ws, after, timeout=10)] == [during, after]


@pytest.mark.parametrize("origin, host, ok", [
    (None, "127.0.0.1:8050", True), ("http://127.0.0.1:8050", "127.0.0.1:8050", True),
    ("http://evil.example", "127.0.0.1:8050", False), ("http://127.0.0.1:9999", "127.0.0.1:8050", False),
])
def test_same_origin(origin, host, ok):
    assert same_origin(origin, host) is ok


def first_frame(ws, timeout=5.0):
    ws.settimeout(timeout)
    return json.loads(ws.recv())


@pytest.mark.parametrize("since", ["9223372036854775808", "-1", "abc", "", "1e3", "99"])
def test_a_since_the_server_cannot_serve_gets_a_resync_then_live_changes(web_server, db_exec, since):
    newest = insert(db_exec, 20.0)  # the log ends at 1; 99 is a database reset under a tab
    ws = websocket.create_connection(ws_url(web_server) + f"?since={since}")
    resync = first_frame(ws)
    assert resync["resync"] is True and resync["changes"] == []
    assert resync["prev"] == resync["last"] == newest and isinstance(resync["now"], int)
    after = insert(db_exec, 21.0)
    assert [c["id"] for c in read_changes(ws, after)] == [after]
    assert "Traceback" not in web_server.output() and " 500 " not in web_server.output()


def test_a_since_behind_what_retention_pruned_gets_a_resync(web_server, db_exec):
    """A tab left open past RETENTION_DAYS: its next change was pruned, so replaying would skip
    it; the client starts from a fresh snapshot instead of from a hole."""
    first = insert(db_exec, 20.0)
    newest = insert(db_exec, 21.0)
    db_exec("DELETE FROM reading_changes WHERE seq <= ?", (newest - 1,))  # what prune() does
    db_exec("UPDATE log_retention SET pruned_through_id = ?", (newest - 1,))
    ws = websocket.create_connection(ws_url(web_server, since=first - 1))
    resync = first_frame(ws)
    assert resync["resync"] is True and resync["last"] == newest
    ws = websocket.create_connection(ws_url(web_server, since=newest - 1))  # saw all pruned
    assert "resync" not in first_frame(ws, timeout=10)


def test_a_usable_since_gets_no_resync(web_server, db_exec):
    newest = insert(db_exec, 20.0)
    ws = websocket.create_connection(ws_url(web_server, since=newest))
    insert(db_exec, 21.0)
    frame = first_frame(ws)
    assert "resync" not in frame and frame["prev"] == newest


def test_heartbeats_carry_the_server_clock_once_a_period(web_server):
    ws = websocket.create_connection(ws_url(web_server))  # SAMPLE_PERIOD_S=1 in tests
    before = time.time() * 1000
    frames = [first_frame(ws, timeout=10) for _ in range(2)]
    assert all(f["changes"] == [] and f["now"] >= before - 1000 for f in frames)


def rss_bytes(pid):
    (line,) = [x for x in Path(f"/proc/{pid}/status").read_text().splitlines()
               if x.startswith("VmRSS:")]
    return int(line.split()[1]) * 1024


def test_an_oversized_client_message_closes_that_socket_only(web_server, db_exec):
    other = websocket.create_connection(ws_url(web_server))
    big = websocket.create_connection(ws_url(web_server))
    big.settimeout(10)
    before = rss_bytes(web_server.proc.pid)
    try:
        big.send("x" * 10_000_000)
    except (BrokenPipeError, ConnectionResetError):
        pass  # the server may close before the last byte is sent
    else:
        opcode, payload = big.recv_data(control_frame=True)
        while opcode != websocket.ABNF.OPCODE_CLOSE:  # heartbeats may come first
            opcode, payload = big.recv_data(control_frame=True)
        assert int.from_bytes(payload[:2], "big") == 1009  # message too big
    newest = insert(db_exec, 20.0)
    assert [c["id"] for c in read_changes(other, newest)] == [newest]
    assert websocket.create_connection(ws_url(web_server)).connected
    # Neither the socket nor the HTTP server kept the message: the server read a few KB of it.
    assert rss_bytes(web_server.proc.pid) - before < 5_000_000
