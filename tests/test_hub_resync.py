"""The hub's own hole: when retention pruned changes after the newest one a web process handed out
(it heard nothing meanwhile), its clients are told to start again from a snapshot, as a replay
across a hole tells them. Pages at the hub's newest change connect without reading the log (and
its pruned_through), so the hub is where such a hole must be seen."""
import json

import pytest
import websocket
from test_readings_socket import first_frame, insert, read_changes, ws_url

pytestmark = pytest.mark.usefixtures("database")


def next_news(ws, timeout=30):
    """The next frame that is not a heartbeat."""
    ws.settimeout(timeout)
    while True:
        frame = json.loads(ws.recv())
        if frame["changes"] or frame.get("resync"):
            return frame


def test_a_hub_that_falls_behind_a_prune_tells_its_clients_to_resync(web_server, db_exec,
                                                                      redis_server):
    first = insert(db_exec, 20.0)
    ws = websocket.create_connection(ws_url(web_server, since=first))
    first_frame(ws, timeout=20)  # a heartbeat: the socket is live, past any replay of its own
    redis_server.stop()  # the hub hears nothing from here
    try:
        missed = insert(db_exec, 21.0)
        newest = insert(db_exec, 22.0)
        db_exec("DELETE FROM reading_changes WHERE seq <= ?", (missed,))  # what prune() does
        db_exec("UPDATE log_retention SET pruned_through_id = ?", (missed,))
    finally:
        redis_server.start()
    frame = next_news(ws)  # the hub resubscribes and reads the log
    assert frame["resync"] is True and frame["prev"] == first and frame["last"] == newest
    after = insert(db_exec, 23.0)
    assert [c["id"] for c in read_changes(ws, after, timeout=20)] == [after]
