"""Many pages at once, on PostgreSQL (issue 9 item 5): a storm of reconnecting pages reads the log
a few at a time instead of exhausting the web process's database pool, and a page that has seen
the newest change needs nothing from the database.

A psql session holding a lock on the change log makes both visible: whoever reads the log waits
on that lock, and PostgreSQL lists the waiters in pg_stat_activity.
"""
import time
from contextlib import closing

import psycopg
import pytest
import websocket
from conftest import wait_until
from pg import libpq_url
from test_readings_socket import first_frame, insert, read_changes, ws_url

pytestmark = [pytest.mark.usefixtures("database"), pytest.mark.parametrize("database", ["postgresql"])]

# The web process's replay slots: its database pool's size, SQLAlchemy's default 5 (of the 15
# connections the pool hands out with its overflow).
SLOTS = 5


def lock_the_log(live_env):
    """A psql session that holds the change log: no one can read it until the session ends."""
    session = psycopg.connect(libpq_url(live_env["DATABASE_URL"]))
    session.execute("LOCK TABLE reading_changes IN ACCESS EXCLUSIVE MODE")
    return session


def replays_waiting(db_exec):
    """Sockets waiting on the lock in their first read, the log's newest id (the hub and the
    relay, which may be reading too, never ask for that)."""
    return db_exec("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                   "AND wait_event_type = 'Lock' "
                   "AND position('max(reading_changes.seq)' in query) > 0")[0][0]


def test_a_page_that_has_the_newest_change_connects_without_the_database(web_server, db_exec,
                                                                         live_env):
    newest = insert(db_exec, 20.0)
    first = websocket.create_connection(ws_url(web_server, since=0))
    assert [c["id"] for c in read_changes(first, newest)] == [newest]  # the hub has handed it out
    with closing(lock_the_log(live_env)):
        ws = websocket.create_connection(ws_url(web_server, since=newest))
        # Its heartbeat (SAMPLE_PERIOD_S=1 in tests) arrives while the log cannot be read.
        frame = first_frame(ws, timeout=20)
        assert (frame["prev"], frame["last"], frame["changes"]) == (newest, newest, [])
        assert "resync" not in frame
    later = insert(db_exec, 21.0)
    assert [c["id"] for c in read_changes(ws, later, timeout=20)] == [later]
    assert [c["id"] for c in read_changes(first, later, timeout=20)] == [later]


def test_a_storm_of_replays_reads_the_log_a_few_at_a_time_and_each_page_gets_its_own(
        web_server, db_exec, live_env):
    ids = [insert(db_exec, 20.0 + i) for i in range(3)]
    with closing(lock_the_log(live_env)) as lock:
        # More pages than the pool has connections, all replaying from the start.
        sockets = [websocket.create_connection(ws_url(web_server, since=0)) for _ in range(20)]
        wait_until(lambda: replays_waiting(db_exec) >= SLOTS, timeout=30,
                   what="the first replays to wait on the lock")
        time.sleep(2)  # every socket's thread has reached its replay by now
        # Only the slots' holders read; the others wait for a slot, not for a pool connection
        # (the pool's 30 s timeout failed them when a storm outlasted it).
        assert replays_waiting(db_exec) == SLOTS
        lock.commit()
    for ws in sockets:
        assert [c["id"] for c in read_changes(ws, ids[-1], timeout=30)] == ids
        ws.close()
