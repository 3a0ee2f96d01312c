"""Temporal features of a max-current series, numpy only (on the labelling path).

    build_features(current) -> float32 array (n, len(FEATURE_NAMES))
    segment(current) -> int array of segment start indices (first is 0)
    switch_signs(current) -> Signs(level, starts, minor, spikes): the despiked series, segment's
        starts, smaller level changes inside those segments (minor_steps), and the samples
        standing more than INRUSH_MA above that level (an inrush: a switch-on)

Labelling is offline, so windows look both ways. The series is cut into segments of steady level
(a two-window mean detector); a sample is described by its own current, robust rolling levels,
and its segment: level, length, the levels of the segments before and after it, and any inrush
spike right at the segment's start (the sensor switching on).
"""
from typing import NamedTuple

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from nilm.states import QUANTUM_MA, centered_windows, despike, rolling_median

# Half-width (samples) of the two windows whose mean difference marks a level change.
CHANGE_WINDOW = 6
# Smallest level change (mA) taken as a switch: below the sensor's ~22 mA, above the noise of a mean.
CHANGE_MA = 14.0
# A sample this far (mA) above the local level counts as an inrush spike.
INRUSH_MA = 15 * QUANTUM_MA

# Samples since an inrush when there was none.
NEVER = 1e6

FEATURE_NAMES = (
    "current", "median5", "median15", "std15", "trail_mean", "lead_mean",
    "level", "prev_level", "next_level", "prev2_level", "next2_level",
    "seg_length", "seg_position", "inrush_at_start", "inrush_at_next", "since_inrush",
)


def _window_means(x, w):
    """Means of the w samples before t and of the w samples from t on (edges padded). Summed
    window by window, not as differences of a running sum: those carry the rounding of all rows
    before, so a part of a series (nilm.decode's batches) would see other ties than the whole."""
    sums = sliding_window_view(np.pad(np.asarray(x, dtype=float), w, mode="edge"), w).sum(axis=1)
    return sums[:x.size] / w, sums[w:w + x.size] / w


def segment(current, w=CHANGE_WINDOW, threshold=CHANGE_MA):
    """Starts of steady-level segments: local maxima of |lead - trail| above threshold."""
    return _level_changes(despike(current), w, threshold)[0]


class Signs(NamedTuple):
    level: np.ndarray  # the despiked series (nilm.states.despike)
    starts: np.ndarray  # segment's starts
    minor: np.ndarray  # minor_steps inside those segments
    spikes: np.ndarray  # bool: more than INRUSH_MA above the despiked level (an inrush)


def switch_signs(current, w=CHANGE_WINDOW, threshold=CHANGE_MA):
    """The Signs of a series, despiked once: what nilm.decode reads of each row."""
    x = np.asarray(current, dtype=float)
    level = despike(x)
    starts, d = _level_changes(level, w, threshold)
    return Signs(level, starts, minor_steps(level, starts, d, w, threshold), x - level > INRUSH_MA)


def _level_changes(level, w, threshold):
    """(segment's starts, |lead - trail| of every row) of a despiked series."""
    trail, lead = _window_means(level, w)
    d = np.abs(lead - trail)
    d[0] = 0.0
    return np.r_[0, _peaks(d, w, threshold)], d


def minor_steps(level, starts, d, w=CHANGE_WINDOW, threshold=CHANGE_MA, least=3):
    """Level changes inside the segments that `starts` cut (level: the despiked series, d: its
    |lead - trail|): the same detector with windows that stop at a segment's edges (at least
    `least` rows each side). A small step (the sensor's switch-off, ~22 mA) a few rows from a
    screen's large one is lost among the large one's window differences in segment; here it
    stands on its own. Only rows whose windows reach a start or an end are measured again."""
    n = level.size
    near = np.zeros(n, dtype=bool)
    for shift in range(-w, w):
        near[np.clip(np.r_[starts, n] + shift, 0, n - 1)] = True
    rows = np.flatnonzero(near)
    seg = np.zeros(n, dtype=np.int64)
    seg[starts[1:]] = 1
    seg = np.cumsum(seg)
    values = sliding_window_view(np.pad(level, w, mode="edge"), w)
    owner = sliding_window_view(np.pad(seg, w, constant_values=-1), w)
    trail, lead = owner[rows] == seg[rows, None], owner[rows + w] == seg[rows, None]
    t_count, l_count = trail.sum(axis=1), lead.sum(axis=1)
    t_mean = (values[rows] * trail).sum(axis=1) / np.maximum(t_count, 1)
    l_mean = (values[rows + w] * lead).sum(axis=1) / np.maximum(l_count, 1)
    inside = d.copy()
    inside[rows] = np.where((t_count >= least) & (l_count >= least), np.abs(l_mean - t_mean), 0.0)
    return _peaks(inside, w, threshold)


def _peaks(d, w, threshold):
    """Rows where d is at least threshold and the largest within w - 1 rows either side."""
    peak = sliding_window_view(np.pad(d, w - 1), 2 * w - 1).max(axis=1)
    before = sliding_window_view(np.pad(d, (w - 1, 0)), w)[:, :-1].max(axis=1)
    # First sample of a plateau of equal maxima: quantised data often ties.
    return np.flatnonzero((d >= threshold) & (d >= peak) & (d > before))


def _shifted(values, k, fill):
    """values[i + k] per segment i, fill outside."""
    out = np.full(values.size, fill, dtype=float)
    if k > 0 and values.size > k:
        out[:-k] = values[k:]
    elif k < 0 and values.size > -k:
        out[-k:] = values[:k]
    return out


def build_features(current):
    """Feature matrix (n, len(FEATURE_NAMES)), float32; current in mA (already gain-corrected)."""
    x = np.asarray(current, dtype=float)
    n = x.size
    xd = despike(x)
    starts = _level_changes(xd, CHANGE_WINDOW, CHANGE_MA)[0]  # segment(x), despiked once
    lengths = np.diff(np.r_[starts, n])
    level = np.add.reduceat(xd, starts) / lengths
    seg_id = np.repeat(np.arange(starts.size), lengths)
    position = np.arange(n) - starts[seg_id]

    # Inrush: the largest excess over the segment level within the first two samples of a segment.
    excess = x - level[seg_id]
    head = np.where(position < 2, excess, 0.0)
    inrush = np.maximum.reduceat(head, starts) > INRUSH_MA
    rows = np.arange(n)
    last = np.maximum.accumulate(np.where(excess > INRUSH_MA, rows, -1))
    since = np.where(last >= 0, rows - last, NEVER)

    trail, lead = _window_means(xd, CHANGE_WINDOW)
    columns = (
        x, rolling_median(x, 5), rolling_median(xd, 15), centered_windows(xd, 15).std(axis=1), trail, lead,
        level[seg_id], _shifted(level, -1, -1.0)[seg_id], _shifted(level, 1, -1.0)[seg_id],
        _shifted(level, -2, -1.0)[seg_id], _shifted(level, 2, -1.0)[seg_id],
        lengths[seg_id], position, inrush[seg_id], _shifted(inrush.astype(float), 1, 0.0)[seg_id],
        since,
    )
    return np.column_stack(columns).astype(np.float32)
