"""Long windows as min / mean / max per time bucket, so a 30 d window is ~1,500 points, not 260,000.

Pure: the bucket size for a window, and the SQL that lists a window's buckets (buckets start at
multiples of the size since the Unix epoch, so the server and the browser agree on them without
talking). readings.store runs the query; assets/monitor.js keeps it live:

- The snapshot of a bucketed window carries the finished buckets (`buckets`, before `raw_from`)
  and the raw readings of the open bucket (`points`, from `raw_from`). The browser buckets those
  raw readings itself, so new readings, and updates and deletes of recent ones, are exact with no
  request.
- A change to an older row (before `raw_from`): an INSERT is folded into its bucket exactly (count,
  sum, min, max); an UPDATE or DELETE cannot be (the frame does not carry the old value), so that
  bucket is marked approximate until the next snapshot (a window, sensor or resync refresh).
"""
import math

from sqlalchemy import JSON, BigInteger, case, literal, select
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement

# At most about this many points per sensor on the chart.
MAX_POINTS = 2000
# Bucket sizes people read easily; the smallest that keeps a window under MAX_POINTS wins.
SIZES_S = (60, 120, 300, 600, 900, 1800, 3600, 7200, 21600, 86400)
# Windows from this long are bucketed; shorter ones are drawn reading by reading.
BUCKETED_FROM_S = 86400


def bucket_size(window_s):
    """Seconds per bucket for a window, or None when the window is drawn raw."""
    if window_s < BUCKETED_FROM_S:
        return None
    return next((s for s in SIZES_S if window_s / s <= MAX_POINTS), SIZES_S[-1])


def bucket_start(epoch_s, size_s):
    """The start (epoch seconds) of the bucket holding `epoch_s`."""
    return epoch_s // size_s * size_s


def epoch_s(moment):
    """An aware datetime as whole seconds since the epoch (rounded down), as readings.taken_s."""
    return math.floor(moment.timestamp())


def bucket_ranges(first_s, stop_s, size_s):
    """SQL: a CTE of the buckets that cover [first_s, stop_s), one row each, columns `low` and
    `high` (epoch seconds, the first and last bucket cut to the range)."""
    def bound(value):  # BIGINT: epoch seconds times a size overflow a 32-bit integer
        return literal(value, BigInteger)

    ranges = select(bound(first_s).label("low"),
                    bound(min(bucket_start(first_s, size_s) + size_s, stop_s)).label("high"))
    ranges = ranges.cte("bucket_ranges", recursive=True)
    step = ranges.c.high + size_s
    return ranges.union_all(select(ranges.c.high, case((step > stop_s, bound(stop_s)), else_=step))
                            .where(ranges.c.high < stop_s))


class json_list(FunctionElement):
    """SQL: several values as one JSON array, so one scalar subquery can carry them all; read
    back as a list on either database (the JSON type decodes SQLite's text)."""
    type = JSON()
    inherit_cache = True


@compiles(json_list)
def _json_list_sqlite(element, compiler, **kw):
    return f"json_array({compiler.process(element.clauses, **kw)})"


@compiles(json_list, "postgresql")
def _json_list_postgresql(element, compiler, **kw):
    return f"json_build_array({compiler.process(element.clauses, **kw)})"
