"""Labelling a series part by part, numpy only: memory bounded by a batch of rows whatever the
series' length, and the same result however the rows are read (nilm.stream, nilm.label).

    elapsed_seconds(recording_or_current, n) -> (n,) seconds since the previous row
    prepare(model, current, seconds, first_gain, tree_term=0) -> Plan: the HMM fitted to this series (EM on a
        sample of rows, nilm.adapt) and the typical sample period
    batches(model, plan, current, seconds, confidence=False) -> iterator of Batch
    confidence_of(weights, joint) -> (confidence (n, 3), runner_up (n,))

A batch is BATCH_CHUNKS decode chunks (nilm.smooth): each chunk sees DECODE_MARGIN rows either
side, and each row's local signs (steps, spikes) are found with FEATURE_MARGIN rows of context,
so a batch gives exactly what decoding the whole series at once would.
"""
from dataclasses import dataclass

import numpy as np

from nilm.adapt import INRUSH, MINOR, SPIKE, STEP, Series, adapt, adapt_rows, emission, transitions
from nilm.devices import DEVICES, SECONDS_PER_ROW, SHAPE
from nilm.emission import N_JOINT, observed_bins
from nilm.features import segment, switch_signs
from nilm.smooth import posterior_padded, viterbi_padded

# The final decode runs on chunks this long, each with this margin either side (where a chunk
# that starts blind has found the path again). Long chunks cost little.
DECODE_CHUNK = 4096
DECODE_MARGIN = 512
# Chunks decoded side by side per batch: the Python loop runs once per row of a chunk for the
# whole batch, so wide batches are fast; 128 x 4096 rows keep a batch near 100-300 MB.
BATCH_CHUNKS = 128
# Rows of context for the local signs of a row (segment's windows reach 11 rows).
FEATURE_MARGIN = 64
# For the confidence, the samples of one steady stretch (a segment) count as at most this many:
# they share the level the stretch happens to have, so a long stretch whose level sits between
# two look-alike explanations must not make either certain (nilm.stress tuning seeds: errors
# flagged 0.50 -> 0.62 of the wrong rows, log loss 0.050 -> 0.045; 10 rows: too doubtful).
CONFIDENCE_STAY_ROWS = 20
# A stretch's rows are counted this far either side of a row (within a batch's margin, so a
# batch gives the whole series' numbers).
STAY_REACH = 256


@dataclass(frozen=True)
class Plan:
    fit: object  # nilm.adapt.Fit
    period: float  # the typical seconds between rows
    tree_term: object  # (n, 18) or a scalar added to every row's log emission


@dataclass(frozen=True)
class Batch:
    start: int  # first row
    joint: np.ndarray  # (rows,) joint state index
    confidence: np.ndarray = None  # (rows, 3) float32
    runner_up: np.ndarray = None  # (rows,) int


def elapsed_seconds(recording_or_current, n):
    """Seconds since the previous row (the first row: the median step) from a recording's
    timestamps; SECONDS_PER_ROW per row for a bare series."""
    stamps = getattr(recording_or_current, "timestamp", None)
    if stamps is None or len(stamps) != n or n < 2:
        return np.full(n, SECONDS_PER_ROW)
    seconds = np.diff(np.asarray(stamps, dtype=float), prepend=np.nan)
    seconds[0] = np.median(seconds[1:])
    return seconds


def switch_on_gate(current, signs=None):
    """What each row shows of a switch: INRUSH (an inrush sample), SPIKE (the row after one),
    STEP (a level change, nilm.features.segment, or a row either side of it), MINOR (a smaller
    one inside a segment, nilm.features.minor_steps, or a row either side), else NOTHING.
    signs: the series' nilm.features.switch_signs, if already found."""
    signs = signs or switch_signs(current)
    gate = np.zeros(current.size, dtype=np.intp)
    for rows, shown in ((signs.minor, MINOR), (signs.starts[1:], STEP)):
        for shift in (-1, 0, 1):
            gate[np.clip(rows + shift, 0, current.size - 1)] = shown
    gate[1:][signs.spikes[:-1]] = SPIKE
    gate[signs.spikes] = INRUSH
    return gate


def meter_bins(current, signs=None):
    """The observed step of every row: the meter's own, but an inrush spike's row takes its
    neighbours' level. Only inrush spikes: a lower one-row peak or dip is as likely two devices
    switching a row apart (one screen on, the other off the next row) as a glitch, and its
    level tells which (nilm.stress dwell_5_20s). signs: as switch_on_gate's."""
    signs = signs or switch_signs(current)
    return np.where(signs.spikes, observed_bins(signs.level), observed_bins(current))


def _context(current, start, stop):
    """(lo, hi): rows [start, stop) with FEATURE_MARGIN rows of context either side."""
    return max(start - FEATURE_MARGIN, 0), min(stop + FEATURE_MARGIN, current.size)


def series_of(current, seconds, start, stop, tree_term=0.0, signs=None):
    """The Series of rows [start, stop), its local signs found with FEATURE_MARGIN rows of context
    (signs: switch_signs of those rows with that context, if already found)."""
    lo, hi = _context(current, start, stop)
    x = current[lo:hi]
    keep = slice(start - lo, stop - lo)
    term = tree_term[start:stop] if np.ndim(tree_term) else tree_term
    signs = signs or switch_signs(x)
    return Series(meter_bins(x, signs)[keep], seconds[start:stop], switch_on_gate(x, signs)[keep], term)


def stay_weights(current, start, stop, starts=None):
    """Per row of [start, stop): CONFIDENCE_STAY_ROWS / the rows of its steady stretch (counted
    up to STAY_REACH either side), at most 1: how much of its emission the confidence counts.
    starts: segment's starts in those rows with series_of's context, if already found."""
    lo, hi = _context(current, start, stop)
    starts = (segment(current[lo:hi]) if starts is None else starts) + lo
    rows = np.arange(start, stop)
    own = np.searchsorted(starts, rows, side="right") - 1
    after = np.r_[starts[1:], hi][own]
    reach = np.minimum(rows - starts[own], STAY_REACH) + np.minimum(after - rows, STAY_REACH)
    return np.minimum(1.0, CONFIDENCE_STAY_ROWS / reach).astype(np.float32)


def prepare(model, current, seconds, first_gain, tree_term=0.0):
    """The HMM fitted to the series on a sample of its rows (all rows of a short one)."""
    n = current.size
    rows = adapt_rows(n)
    starts = np.r_[0, np.flatnonzero(np.diff(rows) != 1) + 1]
    ends = np.r_[starts[1:], rows.size]
    parts = [series_of(current, seconds, rows[a], rows[b - 1] + 1, tree_term) for a, b in zip(starts, ends)]
    sample = Series(*[np.concatenate([getattr(p, f) for p in parts]) if np.ndim(getattr(parts[0], f))
                      else getattr(parts[0], f) for f in Series.__dataclass_fields__])
    period = float(np.median(seconds)) if n else SECONDS_PER_ROW
    return Plan(adapt(model, sample, rows, n, first_gain, period), period, tree_term)


def batches(model, plan, current, seconds, confidence=False):
    """The decoded rows, BATCH_CHUNKS x DECODE_CHUNK at a time (one exact pass for a short series)."""
    n = current.size
    if n <= DECODE_CHUNK + 2 * DECODE_MARGIN:
        yield _decode(model, plan, current, seconds, 0, n, 0, confidence, exact=True)
        return
    rows = BATCH_CHUNKS * DECODE_CHUNK
    for start in range(0, n, rows):
        stop = min(start + rows, n)
        yield _decode(model, plan, current, seconds, start, stop, DECODE_MARGIN, confidence)


def _decode(model, plan, current, seconds, start, stop, margin, confidence, exact=False):
    """Rows [start, stop) decoded in chunks with their margins, padded as nilm.smooth.pad does
    for the whole series (so a batch gives what one pass over the whole series gives)."""
    n = current.size
    aligned = start + -(-(stop - start) // DECODE_CHUNK) * DECODE_CHUNK
    lo, hi = max(start - margin, 0), min(aligned + margin, n)
    # One look at the local signs serves the decode and the confidence's stretches.
    signs = switch_signs(current[slice(*_context(current, lo, hi))])
    series = series_of(current, seconds, lo, hi, plan.tree_term, signs)
    matrices, which = transitions(model, plan.fit.stay, series.seconds, series.gate, plan.period,
                                  plan.fit.elsewhere)
    chunk = max(n, 1) if exact else DECODE_CHUNK
    margin = 0 if exact else margin
    # The window's place in the padded series: rows before 0 or after n are padding.
    before, size = lo - (start - margin), -(-(stop - start) // chunk) * chunk + 2 * margin

    def laid_out(values):
        return values if exact else np.pad(values, ((before, size - before - values.shape[0]),)
                                           + ((0, 0),) * (values.ndim - 1))

    log_emission = laid_out(emission(model, plan.fit, series, np.arange(lo, hi)))
    which = laid_out(which)
    joint = viterbi_padded(log_emission, matrices, which, chunk, margin)[:stop - start]
    if not confidence:
        return Batch(start, joint)
    rival = plan.fit.rival
    rival_emission = None if rival is None else laid_out(emission(model, rival, series, np.arange(lo, hi)))
    weight = laid_out(stay_weights(current, lo, hi, signs.starts))[:, None]
    log_emission = log_emission * weight
    rival_emission = None if rival_emission is None else rival_emission * weight
    # Forward-backward keeps float64 passes: half a batch at a time keeps memory as low as the
    # Viterbi pass over all of it (a step of which costs about the same for twice the chunks).
    run = BATCH_CHUNKS // 2 * chunk
    parts = [_confidence(plan.fit, log_emission, rival_emission, matrices, which, chunk, margin,
                         slice(s, s + run + 2 * margin), joint[s:s + run])
             for s in range(0, max(stop - start, 1), run)]  # an empty series too, as before
    return Batch(start, joint, *map(np.concatenate, zip(*parts)))


def _confidence(fit, log_emission, rival_emission, matrices, which, chunk, margin, window, joint):
    """confidence_of the rows `joint` decoded from a window (a run of chunks with their margins)
    of a laid-out batch."""
    weights = posterior_padded(log_emission[window], matrices, which[window], chunk, margin)[:joint.size]
    if rival_emission is not None:
        # Another gain explains the series almost as well: its posterior has its share.
        rival_weights = posterior_padded(rival_emission[window], matrices, which[window], chunk,
                                         margin)[:joint.size]
        weights = (1 - fit.rival_weight) * weights + fit.rival_weight * rival_weights
    return confidence_of(weights, joint)


def confidence_of(weights, joint):
    """(confidence (n, 3) float32, runner_up (n,) int) from joint posteriors (n, 18): each
    device's marginal posterior of its chosen state, and the likeliest other joint state."""
    rows = np.arange(joint.size)
    states = np.unravel_index(joint, SHAPE)
    per_state = np.column_stack(np.unravel_index(np.arange(N_JOINT), SHAPE))
    confidence = np.empty((joint.size, len(DEVICES)), dtype=np.float32)
    for d in range(len(DEVICES)):
        # (n, 18) @ (18, states of d): the marginal of every state of device d.
        marginals = weights @ np.eye(SHAPE[d], dtype=weights.dtype)[per_state[:, d]]
        confidence[:, d] = marginals[rows, states[d]]
    others = np.array(weights, dtype=np.float32)
    others[rows, joint] = -1.0
    return np.clip(confidence, 0.0, 1.0), others.argmax(axis=1)

