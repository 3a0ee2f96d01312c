"""Retention: prune readings, change-log entries, sampler slots and closed alerts older than
RETENTION_DAYS (default 90), in short batches so that no batch holds SQLite's write lock long.

Deleting a reading fires the change-log trigger; a pruned reading is history, not news, so each
batch deletes the DELETE entries its own deletes wrote, in the same transaction: no client ever
sees them. The change log is pruned as a prefix (ids below the first entry about a reading inside
the window), and the highest pruned id is kept in log_retention: a client whose last id is below
it must start again from a fresh snapshot (needs_resync), never replay across a hole.

SQLite compares taken_at as stored text: an ISO 8601 row (`...T...`) on the cutoff's day sorts
after the space-separated cutoff and is kept a day longer, never pruned early.
"""
import os
from datetime import timedelta

from sqlalchemy import delete, func, select, update

from .alert_models import Alert, LogRetention
from .models import Reading, ReadingChange, SampleSlot, db

DEFAULT_DAYS = 90
BATCH = 500


def retention_days(env=os.environ):
    """RETENTION_DAYS as a positive number of days (fractions allowed), ValueError otherwise."""
    text = env.get("RETENTION_DAYS") or str(DEFAULT_DAYS)
    try:
        days = float(text)
    except ValueError:
        raise ValueError(f"RETENTION_DAYS must be a number of days, not {text!r}") from None
    if not 0 < days < 100_000:
        raise ValueError(f"RETENTION_DAYS must be a positive number of days, not {text!r}")
    return days


def cutoff(now, days):
    return now - timedelta(days=days)


def needs_resync(since_id, pruned_through_id):
    """Whether a client that has seen changes up to since_id missed some that were pruned."""
    return since_id < pruned_through_id


def pruned_through():
    """The highest change seq (the id clients count by) pruned so far (0: none)."""
    return db.session.execute(select(LogRetention.pruned_through_id)).scalar() or 0


def _batches(prune_one, batch):
    total = 0
    while count := prune_one(batch):
        total += count
    return total


def _old_readings(before, batch):
    query = select(Reading.id).where(Reading.taken_at < before).order_by(Reading.id).limit(batch)
    ids = db.session.execute(query).scalars().all()
    if not ids:
        return 0
    logged_up_to = db.session.execute(select(func.max(ReadingChange.id))).scalar() or 0
    db.session.execute(delete(Reading).where(Reading.id.in_(ids)))
    db.session.execute(delete(ReadingChange).where(
        ReadingChange.op == "DELETE", ReadingChange.reading_id.in_(ids),
        ReadingChange.id > logged_up_to))
    db.session.execute(delete(SampleSlot).where(SampleSlot.reading_id.in_(ids)))
    db.session.commit()
    return len(ids)


def log_boundary(before):
    """The lowest change-log id to keep: the first entry about a reading inside the window."""
    first_recent = select(func.min(ReadingChange.id)).where(ReadingChange.taken_at >= before)
    boundary = db.session.execute(first_recent).scalar()
    if boundary is None:
        boundary = (db.session.execute(select(func.max(ReadingChange.id))).scalar() or 0) + 1
    return boundary


def _old_changes(boundary, batch):
    # Clients count changes by seq (the delivery order), so that is what the mark records; a
    # change not yet ordered (seq NULL: its relay has not run) is news nobody has seen: kept.
    query = (select(ReadingChange.id, ReadingChange.seq)
             .where(ReadingChange.id < boundary, ReadingChange.seq.is_not(None))
             .order_by(ReadingChange.id).limit(batch))
    rows = db.session.execute(query).all()
    if not rows:
        return 0
    newest_seq = max(seq for _, seq in rows)
    db.session.execute(delete(ReadingChange).where(ReadingChange.id.in_([i for i, _ in rows])))
    db.session.execute(update(LogRetention).where(LogRetention.pruned_through_id < newest_seq)
                       .values(pruned_through_id=newest_seq))
    db.session.commit()
    return len(rows)


def _old_alerts(before, batch):
    query = (select(Alert.id).where(Alert.ended_at.is_not(None), Alert.ended_at < before)
             .order_by(Alert.id).limit(batch))
    ids = db.session.execute(query).scalars().all()
    if ids:
        db.session.execute(delete(Alert).where(Alert.id.in_(ids)))
        db.session.commit()
    return len(ids)


def prune(now, days, batch=BATCH):
    """Delete what is older than `days` before `now`; how many rows of each kind went."""
    before = cutoff(now, days)
    readings = _batches(lambda n: _old_readings(before, n), batch)
    boundary = log_boundary(before)
    changes = _batches(lambda n: _old_changes(boundary, n), batch)
    alerts = _batches(lambda n: _old_alerts(before, n), batch)
    return {"readings": readings, "changes": changes, "alerts": alerts}
