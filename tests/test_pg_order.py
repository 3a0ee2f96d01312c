"""PostgreSQL: changes reach clients in the order they commit, whatever ids they took (issue 9).

T1 takes a lower id than T2 but commits after it: with ids as the cursor, T1's change was never
delivered. Writes are made as psql makes them, against a real `python app.py` listening by NOTIFY.
"""
import time
from contextlib import closing

import psycopg
import pytest
import websocket
from conftest import newest_change, wait_until
from pg import libpq_url, restart
from test_readings_socket import read_changes, ws_url

pytestmark = [pytest.mark.usefixtures("database"), pytest.mark.parametrize("database", ["postgresql"])]

INSERT = "INSERT INTO readings (sensor_id, temperature_c) VALUES ('psql', %s)"


def open_transaction(live_env, value):
    """A psql session that has inserted a reading and not committed yet (its change has an id)."""
    session = psycopg.connect(libpq_url(live_env["DATABASE_URL"]))
    session.execute(INSERT, (value,))
    return session


def readings_of(changes):
    return [c["reading"]["temperature_c"] for c in changes]


def test_a_lower_id_committing_later_reaches_every_client_once(web_server, db_exec, live_env):
    clients = [websocket.create_connection(ws_url(web_server, since=0)) for _ in range(3)]
    with closing(open_transaction(live_env, 20.0)) as t1:
        db_exec(INSERT.replace("%s", "?"), (21.0,))  # T2: a higher id, committed first
        t2_seq = newest_change(db_exec)
        ids = db_exec("SELECT id FROM reading_changes ORDER BY id")
        assert len(ids) == 1  # T1's row is not visible yet, but it has taken the lower id
        seen = [read_changes(ws, t2_seq) for ws in clients]
        # One client drops here and comes back with the last id it saw, before T1 commits.
        clients[0].close()
        clients[0] = websocket.create_connection(ws_url(web_server, since=seen[0][-1]["id"]))
        time.sleep(1.5)
        t1.commit()
    t1_row = "SELECT id, seq FROM reading_changes WHERE temperature_c = 20"
    # The web process's listener orders T1's change moments after the commit.
    wait_until(lambda: db_exec(t1_row)[0][1] is not None, what="T1's change to be ordered")
    [(t1_id, t1_seq)] = db_exec(t1_row)
    assert t1_id < ids[0][0] and t1_seq > t2_seq
    for ws, before in zip(clients, seen):
        after = read_changes(ws, t1_seq)
        delivered = before + after
        assert readings_of(delivered) == [21.0, 20.0]  # both, each once, in commit order
        assert [c["id"] for c in delivered] == [t2_seq, t1_seq]
        ws.close()
    # A client that replays the whole log later gets them in the same order.
    late = websocket.create_connection(ws_url(web_server, since=0))
    assert readings_of(read_changes(late, t1_seq)) == [21.0, 20.0]
    late.close()


def test_a_forgotten_open_transaction_stops_no_one(web_server, db_exec, live_env):
    ws = websocket.create_connection(ws_url(web_server, since=0))
    with closing(open_transaction(live_env, 19.0)):  # BEGIN; INSERT ...; and then lunch
        newest = None
        for value in (20.0, 21.0, 22.0):
            db_exec(INSERT.replace("%s", "?"), (value,))
            newest = newest_change(db_exec)
        assert readings_of(read_changes(ws, newest)) == [20.0, 21.0, 22.0]
    # Closed without a commit: rolled back, so nothing more is ever delivered for it.
    db_exec(INSERT.replace("%s", "?"), (23.0,))
    assert readings_of(read_changes(ws, newest_change(db_exec))) == [23.0]
    ws.close()


def test_the_listener_reconnects_after_a_postgresql_restart(web_server, db_exec, pg_server):
    ws = websocket.create_connection(ws_url(web_server, since=0))
    db_exec(INSERT.replace("%s", "?"), (20.0,))
    read_changes(ws, newest_change(db_exec))
    restart(pg_server)
    db_exec(INSERT.replace("%s", "?"), (21.0,))  # NOTIFY goes to no one until the listener is back
    assert readings_of(read_changes(ws, newest_change(db_exec), timeout=20)) == [21.0]
    wait_until(lambda: "reconnecting" in web_server.output(), what="the listener's log line")
    ws.close()


def test_writes_wake_the_relay_without_a_table_check(web_server, db_exec, pg_server):
    """The web process holds a LISTEN connection, and does not run the log query while idle."""
    # The relay's thread starts listening a moment after the server answers: under load, later.
    deadline = time.monotonic() + 60
    while (listening := db_exec("SELECT count(*) FROM pg_stat_activity "
                                "WHERE query = 'LISTEN reading_changes'")) != [(1,)]:
        assert listening == [(0,)] and time.monotonic() < deadline, listening
        time.sleep(0.1)
    transactions = ("SELECT xact_commit + xact_rollback FROM pg_stat_database "
                    "WHERE datname = current_database()")
    before = db_exec(transactions)[0][0]
    time.sleep(2)
    # A 0.1 s check would make about 20 read transactions; ours are db_exec's own few.
    assert db_exec(transactions)[0][0] - before < 5
