"""Long windows as min / mean / max per time bucket, so a 30 d window is ~1,500 points, not 260,000.

Pure: the bucket size for a window, and the SQL expression that numbers a row's bucket (buckets
start at multiples of the size since the Unix epoch, so the server and the browser agree on
them without talking). readings.store runs the GROUP BY; assets/monitor.js keeps it live:

- The snapshot of a bucketed window carries the finished buckets (`buckets`, before `raw_from`)
  and the raw readings of the open bucket (`points`, from `raw_from`). The browser buckets those
  raw readings itself, so new readings, and updates and deletes of recent ones, are exact with no
  request.
- A change to an older row (before `raw_from`): an INSERT is folded into its bucket exactly (count,
  sum, min, max); an UPDATE or DELETE cannot be (the frame does not carry the old value), so that
  bucket is marked approximate until the next snapshot (a window, sensor or resync refresh).
"""
import math

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


def bucket_number(epoch_seconds, size_s):
    """SQL: the bucket number of an integer epoch-seconds column (readings.taken_s)."""
    return epoch_seconds // size_s
