"""Thresholds, the alert log and stale sensors: evaluated by the worker, shown by the page.

A sensor's band is a low and a high limit (either may be absent). After each stored reading the
worker compares the sensor's newest reading with its band; on a beat, every period, it does the
same for every sensor (so readings written by others count too) and marks a configured sensor
stale when it has no reading for more than STALE_PERIODS sample periods. Kinds: `high`, `low`,
`stale`. An alert starts once (the unique partial index alerts_one_open refuses a second open one of a kind
per sensor) and ends when its condition clears: a reading back inside the band, a fresh reading.
Evaluating the same state again changes nothing, so retries and redeliveries are harmless.

Every start and end is published on the Redis channel CHANNEL ("alerts") and POSTed to
ALERT_WEBHOOK_URL when set, as one JSON object (strict JSON: no NaN or Infinity):

    {"event": "started" | "ended",
     "alert": {"id": 7, "sensor_id": "lab", "kind": "high" | "low" | "stale",
               "started_at": "2026-11-29T18:00:00.000Z", "ended_at": null | "...Z",
               "value": 31.2 | null, "details": "31.2 C is above the high limit 30 C"}}

`value` is the reading that started a high or low alert (null for stale). snapshot() gives a page
the open alerts and the newest log entries in the same shape; page_state() adds every band.
A saved band is announced on THRESHOLDS_CHANNEL ("thresholds"; the message only says that one
changed: a reader reads them all from the database).
"""
import json
import math
import os
import urllib.request
from datetime import datetime, timezone

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from .alert_models import Alert, SensorThreshold
from .feed import iso_utc
from .models import Reading, db
from .sources import InvalidReading, validate

CHANNEL = "alerts"
THRESHOLDS_CHANNEL = "thresholds"
KINDS = ("high", "low", "stale")
STALE_PERIODS = 2.5


class ThresholdError(ValueError):
    """A band that must not be stored; the message says why."""


def webhook_url(env=os.environ):
    return env.get("ALERT_WEBHOOK_URL") or None


def stale_after_s(period_s):
    return STALE_PERIODS * period_s


# ---- pure rules ----

def _limit(name, value):
    if value is None:
        return None
    try:
        return validate(value)  # a limit is believable where a reading is
    except InvalidReading as error:
        raise ThresholdError(f"{name}: {error}") from None


def validate_band(low_c, high_c):
    """(low, high) as floats or None; ThresholdError naming the limit when either is unusable."""
    low, high = _limit("low limit", low_c), _limit("high limit", high_c)
    if low is not None and high is not None and not low < high:
        raise ThresholdError(f"the low limit ({low:g} C) must be below the high limit ({high:g} C)")
    return low, high


def band_kind(value, low_c, high_c):
    """'high' above the band, 'low' below it, None inside it (or for a value that is no number)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    if high_c is not None and value > high_c:
        return "high"
    if low_c is not None and value < low_c:
        return "low"
    return None


def is_stale(last_taken_at, now, after_s):
    """A sensor is stale when its newest reading is more than after_s old (never seen: not stale)."""
    return last_taken_at is not None and (now - last_taken_at).total_seconds() > after_s


def band_details(kind, value, low_c, high_c):
    limit = high_c if kind == "high" else low_c
    side = "above the high" if kind == "high" else "below the low"
    return f"{value:g} C is {side} limit {limit:g} C"


def stale_details(last_taken_at, after_s):
    return f"no reading for more than {after_s:g} s (last at {iso_utc(last_taken_at)})"


# ---- thresholds ----

def get_threshold(sensor_id):
    """(low_c, high_c) for the sensor; (None, None) when it has no band."""
    row = db.session.get(SensorThreshold, sensor_id)
    return (row.low_c, row.high_c) if row else (None, None)


def thresholds():
    """{sensor_id: (low_c, high_c)} for every sensor with a band."""
    rows = db.session.execute(select(SensorThreshold)).scalars()
    return {row.sensor_id: (row.low_c, row.high_c) for row in rows}


def set_threshold(sensor_id, low_c, high_c, now=None):
    """Store a sensor's band (both None removes it); ThresholdError, storing nothing, if invalid."""
    if not isinstance(sensor_id, str) or not sensor_id.strip():
        raise ThresholdError(f"a sensor id must be non-empty text, not {sensor_id!r}")
    low, high = validate_band(low_c, high_c)
    row = db.session.get(SensorThreshold, sensor_id)
    if low is None and high is None:
        if row:
            db.session.delete(row)
    else:
        row = row or SensorThreshold(sensor_id=sensor_id)
        row.low_c, row.high_c = low, high
        row.updated_at = now or datetime.now(timezone.utc)
        db.session.add(row)
    db.session.commit()
    return low, high


def thresholds_json():
    """Every band as pages receive it: {sensor_id: {"low_c": 18.0, "high_c": None}, ...}."""
    return {sensor_id: {"low_c": low, "high_c": high}
            for sensor_id, (low, high) in sorted(thresholds().items())}


# ---- evaluation ----

def alert_dict(alert):
    return {
        "id": alert.id, "sensor_id": alert.sensor_id, "kind": alert.kind,
        "started_at": iso_utc(alert.started_at), "ended_at": iso_utc(alert.ended_at),
        "value": alert.value, "details": alert.details,
    }


def _open_alert(sensor_id, kind):
    query = select(Alert).where(Alert.sensor_id == sensor_id, Alert.kind == kind,
                                Alert.ended_at.is_(None))
    return db.session.execute(query).scalar()


def _start(sensor_id, kind, at, value, details):
    if _open_alert(sensor_id, kind) is not None:
        return None
    alert = Alert(sensor_id=sensor_id, kind=kind, started_at=at, value=value, details=details)
    db.session.add(alert)
    try:
        db.session.commit()
    except IntegrityError:  # another evaluation opened it first: alerts_one_open
        db.session.rollback()
        return None
    return {"event": "started", "alert": alert_dict(alert)}


def _end(sensor_id, kind, at):
    alert = _open_alert(sensor_id, kind)
    if alert is None:
        return None
    ended = db.session.execute(
        update(Alert).where(Alert.id == alert.id, Alert.ended_at.is_(None)).values(ended_at=at)
    ).rowcount
    db.session.commit()
    if not ended:  # another evaluation ended it first
        return None
    db.session.refresh(alert)
    return {"event": "ended", "alert": alert_dict(alert)}


def reconcile(sensor_id, wanted, ended_at):
    """Make the sensor's open alerts match `wanted` ({kind: (started_at, value, details)}), ending
    the others at ended_at, one commit per change; the events (started / ended) this caused."""
    events = []
    for kind in KINDS:
        if kind in wanted:
            events.append(_start(sensor_id, kind, *wanted[kind]))
        else:
            events.append(_end(sensor_id, kind, ended_at))
    return [event for event in events if event]


def newest_reading(sensor_id):
    query = (select(Reading).where(Reading.sensor_id == sensor_id)
             .order_by(Reading.taken_at.desc(), Reading.id.desc()).limit(1))
    return db.session.execute(query).scalar()


def wanted_alerts(value, taken_at, band, now, after_s):
    """The alerts a sensor should have open given its newest reading: {kind: (started_at, value,
    details)}. after_s None: the sensor is not watched for staleness (not configured)."""
    wanted = {}
    kind = band_kind(value, *band)
    if kind:
        wanted[kind] = (taken_at, value, band_details(kind, value, *band))
    if after_s is not None and is_stale(taken_at, now, after_s):
        wanted["stale"] = (now, None, stale_details(taken_at, after_s))
    return wanted


def evaluate_sensor(sensor_id, now, after_s):
    """Bring the sensor's alerts in line with its newest reading (after a reading, on a beat)."""
    reading = newest_reading(sensor_id)
    if reading is None or reading.taken_at is None:
        return []
    at = reading.taken_at
    wanted = wanted_alerts(reading.temperature_c, at, get_threshold(sensor_id), now, after_s)
    db.session.rollback()  # end the read transaction before writing
    return reconcile(sensor_id, wanted, at)


def evaluate_all(configured, now, after_s):
    """On a beat: every configured sensor (stale included) and every sensor with a band, so
    readings written by anyone (sqlite3, the API) are judged within a period."""
    banded = sorted(set(thresholds()) - set(configured))
    db.session.rollback()
    return ([event for sensor_id in configured for event in evaluate_sensor(sensor_id, now, after_s)]
            + [event for sensor_id in banded for event in evaluate_sensor(sensor_id, now, None)])


def snapshot(limit=50):
    """What a page shows on load: the open alerts, and the newest `limit` log entries."""
    open_alerts = select(Alert).where(Alert.ended_at.is_(None)).order_by(Alert.started_at)
    newest = select(Alert).order_by(Alert.started_at.desc(), Alert.id.desc()).limit(limit)
    return {"open": [alert_dict(a) for a in db.session.execute(open_alerts).scalars()],
            "log": [alert_dict(a) for a in db.session.execute(newest).scalars()]}


def page_state(limit=50):
    """What a page starts from: snapshot() and every band."""
    return {**snapshot(limit), "thresholds": thresholds_json()}


# ---- delivery (I/O at the edge) ----

def encode(event):
    """Strict JSON: a browser's JSON.parse refuses NaN, so they are refused here (ValueError)."""
    return json.dumps(event, allow_nan=False)


def publish(redis_client, events):
    pipe = redis_client.pipeline(transaction=False)
    for event in events:
        pipe.publish(CHANNEL, encode(event))
    pipe.execute()


def announce_thresholds(redis_client):
    """Tell every web process that a band changed (they read the bands themselves)."""
    redis_client.publish(THRESHOLDS_CHANNEL, "changed")


def post_json(url, event, timeout_s):
    """POST one event; raises OSError (urllib.error.URLError, HTTPError, timeout) when it fails."""
    request = urllib.request.Request(url, data=encode(event).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=timeout_s) as reply:
        reply.read()
