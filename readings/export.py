"""Readings out: some or all sensors over [from, to), read in batches, as JSON or CSV text.

Only valid readings are exported. Rows left unreadable from before the guards (a BLOB sensor id,
a text temperature, a timestamp that is no time) are skipped and counted, never fatal: the JSON
ends with their number, the CSV has no place for it (the server log has).
"""
import csv
import io
import json
import logging
from datetime import timedelta

from sqlalchemy import func, select

from .models import Reading, parse_utc
from .sources import InvalidReading, validate

BATCH = 1000
DEFAULT_SPAN = timedelta(hours=24)
HEADER = ("id", "sensor_id", "taken_at", "temperature_c")
PARAMETERS = ("sensor", "from", "to")
# SQLite keeps hand-written ISO 8601 text as written (a T, an offset of up to a day): its text
# order is not time order. A text range this much wider still uses the index, and is refined below.
TEXT_MARGIN = timedelta(days=2)
log = logging.getLogger(__name__)


def iso_z(moment):
    """'2026-11-29T12:00:00.123456Z': every digit the table holds, in UTC."""
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _moment(args, name):
    values = args.getlist(name)
    if not values:
        return None
    if len(values) > 1:
        raise ValueError(f"{name}: given {len(values)} times")
    moment = parse_utc(values[0])
    if moment is None or not 1970 <= moment.year <= 9998:
        raise ValueError(f"{name}: {values[0]!r} is not an ISO 8601 time from 1970 to 9998, "
                         "such as 2026-11-29T12:00:00Z")
    return moment


def parse_query(args, now):
    """(sensors or None for all, start, end) from the query string, or ValueError saying why.

    Without from and to: the last DEFAULT_SPAN. With only from: until now; with only to: the
    DEFAULT_SPAN before it.
    """
    unknown = sorted(set(args) - set(PARAMETERS))
    if unknown:
        raise ValueError(f"unknown parameter {unknown[0]!r} (expected {', '.join(PARAMETERS)})")
    sensors = args.getlist("sensor")
    if any(not sensor.strip() for sensor in sensors):
        raise ValueError("sensor: must not be empty")
    start, end = _moment(args, "from"), _moment(args, "to")
    end = end or now
    start = start or end - DEFAULT_SPAN
    if start >= end:
        raise ValueError(f"from ({iso_z(start)}) must be before to ({iso_z(end)})")
    return sensors or None, start, end


def query(dialect, sensors, start, end):
    """Readings of sensors in about [start, end], ordered by time then id (refined by Export)."""
    columns = select(Reading.id, Reading.sensor_id, Reading.taken_at, Reading.temperature_c)
    if dialect == "sqlite":
        # strftime reads every accepted form as UTC (NULL for garbage), to the millisecond: rows
        # within one millisecond come by id. The range itself is exact (Export._keep).
        at = func.strftime("%Y-%m-%d %H:%M:%f", Reading.taken_at)
        ms = lambda moment: moment.strftime("%Y-%m-%d %H:%M:%S.") + f"{moment.microsecond // 1000:03d}"
        selected = columns.where(Reading.taken_at >= start - TEXT_MARGIN,
                                 Reading.taken_at < end + TEXT_MARGIN,
                                 at >= ms(start), at <= ms(end))
        order = (at, Reading.id)
    else:
        selected = columns.where(Reading.taken_at >= start, Reading.taken_at < end)
        order = (Reading.taken_at, Reading.id)
    if sensors is not None:
        selected = selected.where(Reading.sensor_id.in_(sensors))
    return selected.order_by(*order)


def readable(row):
    """The row as (id, sensor_id, taken_at, temperature_c) if it is a valid reading, else None."""
    reading_id, sensor_id, taken_at, temperature_c = row
    if not (isinstance(sensor_id, str) and sensor_id.strip()) or taken_at is None:
        return None
    if isinstance(temperature_c, (str, bytes)):  # a number, not text that looks like one
        return None
    try:
        return reading_id, sensor_id, taken_at, validate(temperature_c)
    except InvalidReading:
        return None


class Export:
    """One export's readings, read BATCH rows at a time; `skipped` counts the unreadable ones."""

    def __init__(self, engine, sensors, start, end):
        self.engine, self.sensors, self.start, self.end = engine, sensors, start, end
        self.skipped = 0

    def batches(self):
        with self.engine.connect() as connection:
            result = connection.execution_options(yield_per=BATCH).execute(
                query(self.engine.dialect.name, self.sensors, self.start, self.end))
            for part in result.partitions():
                yield list(self._keep(part))
        if self.skipped:
            log.warning("export skipped %d unreadable row(s)", self.skipped)

    def _keep(self, rows):
        for row in rows:
            taken_at = row[2]
            if taken_at is not None and not self.start <= taken_at < self.end:
                continue  # outside the range: the SQL range is a little wider than the exact one
            reading = readable(row)
            if reading is None:
                self.skipped += 1
            else:
                yield reading


def csv_chunks(export):
    """The CSV text, a chunk per batch: the header, then id,sensor_id,taken_at,temperature_c."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(HEADER)
    for rows in export.batches():
        writer.writerows((i, sensor, iso_z(at), repr(value)) for i, sensor, at, value in rows)
        yield _take(buffer)
    yield _take(buffer)


def _take(buffer):
    text = buffer.getvalue()
    buffer.seek(0)
    buffer.truncate()
    return text


def json_chunks(export):
    """{"from", "to", "sensors", "readings": [...], "skipped"}, a chunk per batch."""
    head = {"from": iso_z(export.start), "to": iso_z(export.end), "sensors": export.sensors}
    yield json.dumps(head)[:-1] + ', "readings": ['
    separator = "\n"
    for rows in export.batches():
        if rows:
            yield separator + ",\n".join(
                json.dumps({"id": i, "sensor_id": sensor, "taken_at": iso_z(at), "temperature_c": value})
                for i, sensor, at, value in rows)
            separator = ",\n"
    yield f'\n], "skipped": {export.skipped}}}\n'
