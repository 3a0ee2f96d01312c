"""Synthetic aggregates with known truth, made from the single-device recordings.

    make_source(recordings, states=None, random_state=None) -> Source
    generate(recordings_or_source, n_rows, random_state=None, gain=GAIN_RANGE, dwell=1.0) -> Synthetic
    slice_recording(recording, start=0.0, stop=1.0) -> the time-contiguous part [start, stop) by fraction
    split_recordings(recordings, fraction=0.7) -> (train, test): every stay cut in time at fraction

Each device follows a random state sequence: it stays in a state for a dwell time drawn from an
exponential with the mean measured in its recording (times `dwell`), then jumps to one of its
other states. Each sample's current is drawn from the recording's samples of that state; the
sum is scaled by one gain per series (drawn from `gain`), the sensor adds an inrush spike on
the sample it switches on, and the result is quantised to the meter's step.
"""
import dataclasses
from dataclasses import dataclass

import numpy as np

from nilm.devices import DEVICES
from nilm.states import QUANTUM_MA, fit_states, max_current_of

# The real aggregate sits a few percent above the plain sum; the range covers it on both sides.
GAIN_RANGE = (0.95, 1.15)
SENSOR = "Temperature sensor"
# Shortest stay in a state (samples): one-sample states are transients, not states.
MIN_DWELL = 3
# Widening of the observed inrush range: only a couple of switch-ons were recorded.
SPIKE_WIDEN = 1.5
# Used when the sensor's recording part holds no switch-on ("hundreds to thousands of mA").
DEFAULT_SPIKE_RANGE = (300.0, 8000.0)


@dataclass(frozen=True)
class Source:
    """What the generator samples from, per device in DEVICES order."""

    pools: tuple  # per device: tuple of per-state arrays of recorded currents (mA)
    dwell_means: np.ndarray  # mean samples per stay, per device
    spike_range: tuple  # (low, high) mA of the sensor's inrush sample


@dataclass(frozen=True)
class Synthetic:
    """A synthetic aggregate and its truth."""

    current: np.ndarray  # max current (mA), quantised
    states: np.ndarray  # (n, 3) int state index per device, DEVICES order
    components: np.ndarray  # (n, 3) per-device current drawn from the recordings (mA)
    spikes: np.ndarray  # (n,) inrush added on the sensor's switch-on samples (mA), else 0
    gain: float


def take_rows(recording, rows):
    """The given rows (index array) of a Recording (every per-row field) or of an array."""
    if not dataclasses.is_dataclass(recording):
        return np.asarray(recording)[rows]
    n = len(recording.max_current)
    changes = {}
    for field in dataclasses.fields(recording):
        value = getattr(recording, field.name)
        if isinstance(value, (np.ndarray, list, tuple)) and len(value) == n:
            changes[field.name] = (value[rows] if isinstance(value, np.ndarray)
                                   else [value[i] for i in rows])
    return dataclasses.replace(recording, **changes)


def slice_recording(recording, start=0.0, stop=1.0):
    """The rows in [start, stop) (fractions of its length) of a Recording or an array."""
    n = max_current_of(recording).size
    return take_rows(recording, np.arange(int(round(start * n)), int(round(stop * n))))


def split_recordings(recordings, fraction=0.7, random_state=0):
    """Time-contiguous split of every stay: its first `fraction` -> train, the rest -> test.

    Splitting each recording once would leave whole states out of one side (screen 2 ends in one
    long ON stay), so each stay of each state is cut instead. Returns (train, test) dicts.
    """
    states = fit_states(recordings, random_state)
    train, test = {}, {}
    for device in DEVICES:
        labels = states[device].labels
        edges = np.r_[0, np.flatnonzero(np.diff(labels)) + 1, labels.size]
        head, tail = [], []
        for a, b in zip(edges[:-1], edges[1:]):
            cut = a + int(round(fraction * (b - a)))
            head.append(np.arange(a, cut))
            tail.append(np.arange(cut, b))
        train[device] = take_rows(recordings[device], np.concatenate(head))
        test[device] = take_rows(recordings[device], np.concatenate(tail))
    return train, test


def run_lengths(labels):
    """Lengths of the runs of equal consecutive labels."""
    labels = np.asarray(labels)
    if labels.size == 0:
        return np.zeros(0, dtype=int)
    edges = np.flatnonzero(np.diff(labels)) + 1
    return np.diff(np.r_[0, edges, labels.size])


def _switch_on_spikes(x, states):
    """Spike values of the sensor recording that fall on an OFF->ON switch (or the sample after)."""
    labels, spikes = states.label(x)
    on = np.flatnonzero(np.diff(labels) > 0) + 1
    near = np.unique(np.clip(np.r_[on - 1, on, on + 1], 0, x.size - 1))
    return x[near[spikes[near]]]


def make_source(recordings, states=None, random_state=None, dwell_from=None):
    """Per-state current pools, dwell means and the inrush range from the recordings.

    dwell_from: recordings to measure the stays in (default: the same); a held-out part made of
    cut stays (split_recordings) would understate them.
    """
    states = states or fit_states(recordings, random_state)
    if dwell_from is not None:
        stays = make_source(dwell_from, random_state=random_state).dwell_means
    pools, dwell = [], []
    for device in DEVICES:
        x = max_current_of(recordings[device])
        s = states[device]
        labels, spikes = s.label(x)
        pool = tuple(x[~spikes & (labels == k)] for k in range(s.levels.size))
        # A state unseen in this part of the recording falls back to its fitted level.
        pools.append(tuple(p if p.size else np.array([s.levels[k]]) for k, p in enumerate(pool)))
        # Runs touching either end are censored; they still bound the stay from below.
        dwell.append(max(float(run_lengths(labels).mean()), MIN_DWELL))
    sensor = max_current_of(recordings[SENSOR])
    spikes = _switch_on_spikes(sensor, states[SENSOR])
    spike_range = ((spikes.min() / SPIKE_WIDEN, spikes.max() * SPIKE_WIDEN) if spikes.size
                   else DEFAULT_SPIKE_RANGE)
    return Source(tuple(pools), stays if dwell_from is not None else np.array(dwell), spike_range)


def state_sequence(n_rows, n_states, dwell_mean, rng):
    """Random stays of exponential length (>= MIN_DWELL), each in a state other than the last."""
    out = np.empty(n_rows, dtype=int)
    state, pos = rng.integers(n_states), 0
    # The series starts part-way through a stay.
    length = int(np.ceil(rng.uniform() * rng.exponential(dwell_mean))) or 1
    while pos < n_rows:
        out[pos:pos + length] = state
        pos += length
        state = (state + rng.integers(1, n_states)) % n_states
        length = max(MIN_DWELL, int(round(rng.exponential(dwell_mean))))
    return out


def quantise(current_ma):
    """Round to the meter's step, as the recordings are."""
    return np.round(np.round(current_ma / QUANTUM_MA) * QUANTUM_MA, 2)


def generate(recordings, n_rows, random_state=None, gain=GAIN_RANGE, dwell=1.0):
    """A synthetic aggregate of n_rows with known states (see module docstring).

    recordings: dict[device, Recording or array] or a Source from make_source.
    gain: (low, high) range of the series gain, or one number.
    dwell: factor on the measured mean stays (e.g. 0.3 for busy, 3 for calm regimes),
        or a sequence of mean stays (samples) per device in DEVICES order.
    """
    source = recordings if isinstance(recordings, Source) else make_source(recordings, random_state=0)
    rng = np.random.default_rng(random_state)
    means = source.dwell_means * dwell if np.ndim(dwell) == 0 else np.asarray(dwell, dtype=float)
    lo, hi = (gain, gain) if np.ndim(gain) == 0 else gain
    g = float(rng.uniform(lo, hi))
    states = np.empty((n_rows, len(DEVICES)), dtype=int)
    components = np.empty((n_rows, len(DEVICES)))
    for j, pools in enumerate(source.pools):
        states[:, j] = state_sequence(n_rows, len(pools), means[j], rng)
        for k, pool in enumerate(pools):
            rows = np.flatnonzero(states[:, j] == k)
            components[rows, j] = pool[rng.integers(pool.size, size=rows.size)]
    sensor = states[:, DEVICES.index(SENSOR)]
    switch_on = np.flatnonzero(np.diff(sensor) > 0) + 1
    spikes = np.zeros(n_rows)
    low, high = np.log(source.spike_range)
    spikes[switch_on] = np.exp(rng.uniform(low, high, size=switch_on.size))
    current = quantise(g * components.sum(axis=1) + spikes)
    return Synthetic(current, states, components, spikes, g)
