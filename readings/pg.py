"""PostgreSQL: the order clients receive changes in, and the LISTEN/NOTIFY wake-up of the relay.

Order: PostgreSQL hands out reading_changes ids at INSERT but shows rows at COMMIT, so a lower id
can become visible after a higher one was delivered. `assign_order` gives committed rows a `seq`
(their delivery position) in a short transaction holding an advisory lock, one assigner at a time:
a row only gets a seq once its transaction has committed, and always a higher one than every row
assigned before, so "changes after seq N" never skips one. A transaction left open just has no
seq yet: it blocks no writer and no other change (FOR UPDATE SKIP LOCKED, never a wait on it).

Wake-up: the log's trigger calls pg_notify('reading_changes') and PostgreSQL delivers it when the
writer commits, whoever the writer is (the app, psql, another service). One listening connection
per web process relays on each notification; after a lost connection it reconnects and relays
whatever committed meanwhile, from the log.
"""
import logging

import psycopg
from sqlalchemy import text

from .models import db

NOTIFY_CHANNEL = "reading_changes"
# The assigners' advisory lock: differs from readings.migrate.PG_LOCK_KEY ("wattson").
ORDER_LOCK_KEY = int.from_bytes(b"wattseq", "big")
LOCK_WAIT_S = 5
WAIT_S = 1.0  # how often the listener looks up from its socket to see whether it should stop
log = logging.getLogger(__name__)

# The inner ORDER BY hands out seq in id order among the rows that commit together; SKIP LOCKED
# keeps a row someone else holds locked from stalling the assigner.
_ASSIGN = text("""
    UPDATE reading_changes AS change SET seq = ordered.seq
    FROM (SELECT id, nextval('reading_changes_seq') AS seq
          FROM (SELECT id FROM reading_changes WHERE seq IS NULL ORDER BY id
                FOR UPDATE SKIP LOCKED) AS unordered
          ORDER BY id) AS ordered
    WHERE change.id = ordered.id""")

_ANY_UNORDERED = text("SELECT EXISTS (SELECT 1 FROM reading_changes WHERE seq IS NULL)")


def is_postgresql():
    return db.engine.dialect.name == "postgresql"


def assign_order():
    """Give every committed change without a seq the next ones; commits. Returns how many.

    The lock is waited for, not tried: the holder's UPDATE may have started before our writer
    committed, so skipping could leave a change unordered until the next write. Holders only run
    this one short statement, so the wait is short.
    """
    # Most wake-ups find another relay has already ordered everything (the web processes and the
    # worker all wake on one commit): then no lock. A change committed after this look wakes
    # its relays again, so skipping now leaves nothing behind.
    if not db.session.execute(_ANY_UNORDERED).scalar():
        db.session.rollback()
        return 0
    # Bounded, so a stuck holder (a host cut off mid-transaction) costs a logged retry, not a hang.
    db.session.execute(text(f"SET LOCAL lock_timeout = '{LOCK_WAIT_S}s'"))  # a constant
    db.session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": ORDER_LOCK_KEY})
    assigned = db.session.execute(_ASSIGN).rowcount  # a new snapshot: sees every earlier commit
    db.session.commit()
    return assigned


def libpq_url(engine):
    """The engine's URL as psycopg takes it (postgresql+psycopg:// is SQLAlchemy's spelling)."""
    return engine.url.set(drivername="postgresql").render_as_string(hide_password=False)


def listen(app, relay, stop_event, retry_s=1.0):
    """Relay each change as its writer commits, until stop_event is set (a thread's target)."""
    with app.app_context():
        url = libpq_url(db.engine)
    while not stop_event.is_set():
        try:
            with psycopg.connect(url, autocommit=True) as connection:
                connection.execute(f"LISTEN {NOTIFY_CHANNEL}")  # a constant, not a value
                log.info("listening for changes on PostgreSQL")
                _relay(app, relay)  # what committed while we were not listening
                while not stop_event.is_set():
                    if _woken(connection):
                        _relay(app, relay)
        except Exception:  # PostgreSQL restarting, or Redis down: reconnect, then catch up
            log.warning("change listener failed (PostgreSQL or Redis); reconnecting", exc_info=True)
            stop_event.wait(retry_s)


def _woken(connection):
    """True when a notification arrived within WAIT_S; the others already queued are drained too,
    since one relay run publishes everything new."""
    woken = any(True for _ in connection.notifies(timeout=WAIT_S, stop_after=1))
    if woken:
        for _ in connection.notifies(timeout=0):
            pass
    return woken


def _relay(app, relay):
    with app.app_context():
        try:
            relay.run_once()
        finally:
            db.session.remove()
