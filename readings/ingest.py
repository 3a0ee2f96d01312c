"""Readings sent over HTTP: validated like the worker's, stored all or none, once per key.

An Idempotency-Key's answer is written in the readings' own transaction (table ingest_keys,
migrations/versions/0005_ingest_keys.py), so a retry after a lost reply finds either nothing
stored (and stores) or the whole first answer, never half of it.
"""
import hashlib
import json
from datetime import datetime, timedelta, timezone

from sqlalchemy import delete, insert, select
from sqlalchemy.exc import IntegrityError

from .models import Reading, UTCDateTime, db, parse_utc
from .sources import validate

MAX_ITEMS = 1000
MAX_SENSOR_ID_CHARS = 128
KEY_TTL = timedelta(hours=24)
# A device clock may run a little fast; a reading from next year would sit on top of the page forever.
MAX_AHEAD = timedelta(minutes=5)
EARLIEST = datetime(1970, 1, 1, tzinfo=timezone.utc)
FIELDS = ("sensor_id", "temperature_c", "taken_at")


class IngestKey(db.Model):
    """One Idempotency-Key and the answer its first request got, kept for KEY_TTL."""

    __tablename__ = "ingest_keys"
    key = db.Column(db.Text, primary_key=True)
    created_at = db.Column(UTCDateTime, nullable=False)
    status = db.Column(db.Integer, nullable=False)
    response = db.Column(db.Text, nullable=False)
    request_sha256 = db.Column(db.Text, nullable=False)


class BadItem(ValueError):
    """A reading that must not be stored; names its field and, in a list, its index."""

    def __init__(self, index, field, why):
        self.index, self.field = index, field
        where = f"item {index}: " if index is not None else ""
        why = str(why)  # validate() quotes the whole value: a 1 MB string must not come back whole
        super().__init__(f"{where}{field}: {why if len(why) <= 200 else why[:197] + '...'}")


class KeyReused(ValueError):
    """An Idempotency-Key seen within KEY_TTL with a different request body."""


def _show(value):
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def sensor_id_of(value):
    if not (isinstance(value, str) and value.strip() and len(value) <= MAX_SENSOR_ID_CHARS
            and value.isprintable()):
        raise ValueError(f"must be non-empty printable text of at most {MAX_SENSOR_ID_CHARS} "
                         f"characters, got {_show(value)}")
    return value


def temperature_of(value):
    try:
        return validate(value)  # the worker's own rule
    except OverflowError:  # an integer too large for a float, e.g. 1 followed by 400 zeros
        raise ValueError(f"not a finite number: {_show(value)}") from None


def taken_at_of(value, now):
    if value is None:
        return now
    moment = parse_utc(value) if isinstance(value, str) else None
    if moment is None:
        raise ValueError(f"must be ISO 8601 text such as 2026-11-29T12:00:00Z, got {_show(value)}")
    if moment < EARLIEST:
        raise ValueError(f"{value} is before 1970")
    if moment > now + MAX_AHEAD:
        raise ValueError(f"{value} is in the future (server time {now.isoformat()})")
    return moment


def parse_item(item, index, now):
    """One reading as the column values to insert, or BadItem naming what is wrong."""
    if not isinstance(item, dict):
        raise BadItem(index, "item", f"must be an object with {', '.join(FIELDS)}, got {_show(item)}")
    unknown = sorted(set(item) - set(FIELDS))
    if unknown:
        raise BadItem(index, unknown[0], f"unknown field (expected {', '.join(FIELDS)})")
    checks = {"sensor_id": sensor_id_of, "temperature_c": temperature_of,
              "taken_at": lambda value: taken_at_of(value, now)}
    row = {}
    for field, check in checks.items():
        if field not in item and field != "taken_at":
            raise BadItem(index, field, "missing")
        try:
            row[field] = check(item.get(field))
        except ValueError as why:
            raise BadItem(index, field, why) from None
    return row


def parse_items(data, now):
    """The rows to insert from a decoded body: one reading object, or a list of 1..MAX_ITEMS."""
    if not isinstance(data, list):
        return [parse_item(data, None, now)]
    if not 1 <= len(data) <= MAX_ITEMS:
        raise BadItem(None, "body", f"a list must hold 1 to {MAX_ITEMS} readings, not {len(data)}")
    return [parse_item(item, index, now) for index, item in enumerate(data)]


def digest(body):
    return hashlib.sha256(body).hexdigest()


def earlier_answer(key, body_sha256, now):
    """(status, response) a request with this key got within KEY_TTL, else None.

    KeyReused if that request's body differs: answering it with another body's ids would hide
    that the new readings were never stored.
    """
    row = db.session.execute(
        select(IngestKey.status, IngestKey.response, IngestKey.request_sha256)
        .where(IngestKey.key == key, IngestKey.created_at >= now - KEY_TTL)
    ).first()
    db.session.rollback()  # end the read: the write that may follow starts its own transaction
    if row is None:
        return None
    if row.request_sha256 != body_sha256:
        raise KeyReused(f"Idempotency-Key {key!r} was used within {KEY_TTL} for a different request")
    return row.status, json.loads(row.response)


def store(rows, now, key=None, body_sha256=None):
    """Insert rows in one transaction, with the key's answer if there is a key; (201, answer).

    The triggers log each reading for the feed, as for any other write.
    """
    try:
        if key is not None:  # first statement a write: SQLite then waits for the lock, never fails
            db.session.execute(delete(IngestKey).where(IngestKey.created_at < now - KEY_TTL))
        ids = list(db.session.scalars(
            insert(Reading).returning(Reading.id, sort_by_parameter_order=True), rows))
        answer = {"ids": ids}
        if key is not None:
            db.session.add(IngestKey(key=key, created_at=now, status=201, response=json.dumps(answer),
                                     request_sha256=body_sha256))
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        # The same key committed by a concurrent request in the meantime: its answer is ours.
        earlier = key is not None and earlier_answer(key, body_sha256, now)
        if earlier:
            return earlier
        raise
    return 201, answer
