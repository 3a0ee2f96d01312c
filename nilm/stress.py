"""A second generator of aggregates with known truth, for stress-testing the NILM model.

Written apart from the model on purpose: it shares no code with nilm.synth or nilm.emission (it
reads the recordings with nilm.io and names devices with nilm.devices, nothing else), so a
shortcut both make cannot hide a flaw. What differs from nilm.synth:

- Each device's state segments are found in its own recording with fixed thresholds between its
  clearly separated levels (see find_segments); a stay's currents are contiguous blocks of those
  real segments, so real noise and shape are kept, not per-sample draws.
- Time is in seconds: a meter clock with jitter (or a 2 s meter, or dropped rows), and every stay
  lasts a duration drawn in seconds from the scenario's dwell law.
- The gain multiplies the sum per row, so it can drift within a file; switch-on spikes are the
  recorded ones (scaled by 0.8 to 1.25) and appear with the scenario's probability.

    scenarios() -> list of scenario names; SCENARIOS[name] -> Scenario (its laws)
    make_case(name, seed, n_rows=N_ROWS, directory=None) -> Case
    TUNING_SEEDS, REPORT_SEEDS: disjoint seeds; settings are tuned on the first, reported on the second
"""
import zlib
from dataclasses import dataclass, field, replace
from functools import lru_cache

import numpy as np

from nilm.devices import DEVICES

SENSOR = DEVICES.index("Temperature sensor")
# Thresholds (mA) between each device's clearly separated levels, OFF|IDLE|ON or OFF|ON.
THRESHOLDS = {"PC screen1": (12.0, 120.0), "PC screen2": (12.0, 120.0), "Temperature sensor": (6.0,)}
# A sample this far above both neighbours is a switching spike, not part of a level.
SPIKE_MA = 60.0
# The meter reports the maximum current in steps of this many mA (measured on the recordings).
METER_STEP_MA = 12.207
# The recordings' own sample period (s): a block drawn for a slower meter skips samples.
NATIVE_PERIOD_S = 1.065
JITTER_S = 0.003
SPIKE_SCALE = (0.8, 1.25)
N_ROWS = 3000
TUNING_SEEDS = tuple(range(101, 111))
REPORT_SEEDS = tuple(range(901, 906))


@dataclass(frozen=True)
class Scenario:
    """The laws one scenario's files are drawn from."""

    description: str
    gain: tuple = (0.95, 1.15)  # constant gain drawn uniformly from this range per file
    drift: float = 0.0  # the gain moves linearly by this share (up or down) over the file
    noise_sd: float = 0.0  # Gaussian noise (mA) on the aggregate, before quantising
    sensor_spike: float = 1.0  # probability that a sensor switch-on shows its inrush spike
    screen_spike: float = 0.0  # probability that a screen's switch-on (from OFF) shows a spike
    dwell_s: tuple = (15.0, 600.0)  # every stay lasts log-uniform seconds in this range
    period_s: float = NATIVE_PERIOD_S
    active: tuple = DEVICES  # devices that switch; the others stay OFF
    gaps: int = 0  # runs of 5 to 60 dropped rows, plus 1 % of single rows dropped


CLEAN = Scenario("every device switching, gain 0.95-1.15, every sensor switch-on spiked")
SCENARIOS = {
    "clean": CLEAN,
    "noise_6mA": replace(CLEAN, description="Gaussian noise of 6 mA sd", noise_sd=6.0),
    "gain_0.85": replace(CLEAN, description="gain 0.85", gain=(0.85, 0.85)),
    "gain_1.25": replace(CLEAN, description="gain 1.25", gain=(1.25, 1.25)),
    "gain_drift": replace(CLEAN, description="gain drifting by 5 % within the file", drift=0.05),
    "sensor_no_spike": replace(CLEAN, description="no sensor switch-on shows a spike", sensor_spike=0.0),
    "sensor_half_spike": replace(CLEAN, description="half the sensor switch-ons show a spike",
                                 sensor_spike=0.5),
    "screen_spikes": replace(CLEAN, description="screen switch-ons from OFF show a spike",
                             screen_spike=1.0),
    "dwell_5_20s": replace(CLEAN, description="every stay 5-20 s", dwell_s=(5.0, 20.0)),
    "only_screen1": replace(CLEAN, description="only screen 1 switches", active=(DEVICES[0],)),
    "only_screen2": replace(CLEAN, description="only screen 2 switches", active=(DEVICES[1],)),
    "only_sensor": replace(CLEAN, description="only the sensor switches", active=(DEVICES[2],)),
    "meter_2s": replace(CLEAN, description="a meter reporting every 2 s", period_s=2.0),
    "gaps": replace(CLEAN, description="dropped rows: 8 gaps of 5-60 rows and 1 % single rows", gaps=8),
}


@dataclass(frozen=True)
class Segments:
    """One device's recording cut into state segments (spike samples removed)."""

    blocks: tuple  # per state: tuple of 1-D arrays of contiguous samples (mA)
    spikes: np.ndarray  # values (mA) of the recorded switch-on spikes


@dataclass(frozen=True)
class Case:
    """One stress file: what a meter would write, and the truth behind it."""

    scenario: str
    seed: int
    timestamp: np.ndarray  # s
    max_current: np.ndarray  # mA, in meter steps
    effective_current: np.ndarray  # mA, max / sqrt(2) to 0.1 mA
    states: np.ndarray  # (n, 3) int, DEVICES order
    gain: np.ndarray  # (n,) the gain of each row
    spikes: np.ndarray = field(repr=False)  # (n, 3) bool: a switch-on spike on that device's row
    components: np.ndarray = field(repr=False)  # (n, 3) each device's recorded current (mA)

    def __len__(self):
        return len(self.timestamp)

    def recording(self):
        """The case as a nilm.io.Recording, as if read from a CSV file."""
        from nilm.io import Recording

        fields = [(f"{t:.6f}", f"{m:.2f}", f"{e:.1f}")
                  for t, m, e in zip(self.timestamp, self.max_current, self.effective_current)]
        return Recording(f"{self.scenario}-{self.seed}.csv", self.timestamp, self.max_current,
                         self.effective_current, fields, np.arange(1, len(self) + 1))


def scenarios():
    return list(SCENARIOS)


def threshold_states(current, thresholds):
    """State index of every sample: how many thresholds it reaches."""
    return np.searchsorted(np.asarray(thresholds), current, side="right")


def find_segments(current, thresholds):
    """Segments of a single-device recording: (labels, spike mask).

    A sample SPIKE_MA above both neighbours is a spike; it takes the label of the sample after it
    (it starts that stay). A one-sample run between two runs of one state is a glitch of that
    state (screen 2 dips to 49 mA once while ON) and is kept in it."""
    x = np.asarray(current, dtype=float)
    padded = np.r_[x[:1], x, x[-1:]]
    spikes = (x - padded[:-2] > SPIKE_MA) & (x - padded[2:] > SPIKE_MA)
    labels = threshold_states(x, thresholds)
    for i in np.flatnonzero(spikes):
        labels[i] = labels[min(i + 1, x.size - 1)]
    for i in range(1, x.size - 1):
        if labels[i - 1] == labels[i + 1] != labels[i]:
            labels[i] = labels[i - 1]
    return labels, spikes


def device_segments(current, thresholds):
    labels, spikes = find_segments(current, thresholds)
    x = np.asarray(current, dtype=float)
    edges = np.r_[0, np.flatnonzero(np.diff(labels)) + 1, x.size]
    blocks = [[] for _ in range(len(thresholds) + 1)]
    for a, b in zip(edges[:-1], edges[1:]):
        keep = x[a:b][~spikes[a:b]]
        if keep.size:
            blocks[labels[a]].append(keep)
    return Segments(tuple(tuple(b) for b in blocks), x[spikes])


@lru_cache(maxsize=4)
def load_segments(directory=None):
    """{device: Segments} from the single-device recordings (default: nilm.devices.data_dir())."""
    from nilm.io import load_device_recordings

    recordings = load_device_recordings(directory)
    found = {d: device_segments(recordings[d].max_current, THRESHOLDS[d]) for d in DEVICES}
    # One screen's recording caught a switch-on spike, the other none: both screens may show one.
    screen_spikes = np.concatenate([found[d].spikes for d in DEVICES if d != DEVICES[SENSOR]])
    return {d: s if d == DEVICES[SENSOR] else replace(s, spikes=screen_spikes) for d, s in found.items()}


def stays(duration, n_states, dwell_s, rng, switching=True):
    """(start times, states) of a device's stays covering [0, duration) s; the first is under way."""
    lo, hi = np.log(dwell_s)
    state = int(rng.integers(n_states)) if switching else 0
    t = -rng.uniform() * np.exp(rng.uniform(lo, hi))
    starts, states = [], []
    while t < duration:
        starts.append(max(t, 0.0))
        states.append(state)
        if not switching:
            break
        t += np.exp(rng.uniform(lo, hi))
        state = (state + int(rng.integers(1, n_states))) % n_states
    return np.array(starts), np.array(states, dtype=int)


def draw_block(blocks, n, stride, rng):
    """n samples, every stride-th, from contiguous pieces of the recorded segments of one state."""
    out, need = [], n
    while need > 0:
        fits = [b for b in blocks if b.size >= need * stride]
        if fits:
            block = fits[rng.integers(len(fits))]
            start = rng.integers(block.size - need * stride + 1)
            piece = block[start:start + need * stride:stride]
        else:  # a stay longer than any recorded one: whole segments one after another
            piece = blocks[rng.integers(len(blocks))][::stride][:need]
        out.append(piece)
        need -= piece.size
    return np.concatenate(out)


def meter_clock(n_rows, period_s, rng):
    steps = period_s + rng.normal(0.0, JITTER_S, n_rows - 1)
    return np.r_[0.0, np.cumsum(np.maximum(steps, period_s / 2))]


def device_rows(t, segments, spike_p, scenario, active, rng):
    """(states, current, spike mask) of one device on the meter clock t."""
    n_states = len(segments.blocks)
    starts, seq = stays(t[-1] + 1e-9, n_states, scenario.dwell_s, rng, active)
    row_start = np.searchsorted(t, starts, side="left")
    edges = np.r_[row_start, t.size]
    states = np.empty(t.size, dtype=int)
    current = np.empty(t.size)
    spikes = np.zeros(t.size, dtype=bool)
    stride = max(1, int(round(scenario.period_s / NATIVE_PERIOD_S)))
    for i, (a, b) in enumerate(zip(edges[:-1], edges[1:])):
        if b <= a:
            continue
        states[a:b] = seq[i]
        current[a:b] = draw_block(segments.blocks[seq[i]], b - a, stride, rng)
        switch_on = i > 0 and seq[i - 1] == 0 and seq[i] > 0
        if switch_on and segments.spikes.size and rng.uniform() < spike_p:
            spikes[a] = True
            current[a] = rng.choice(segments.spikes) * rng.uniform(*SPIKE_SCALE)
    return states, current, spikes


def gain_rows(t, scenario, rng):
    g0 = rng.uniform(*scenario.gain)
    if not scenario.drift:
        return np.full(t.size, g0)
    direction = rng.choice([-1.0, 1.0])
    return g0 * (1.0 + direction * scenario.drift * t / max(t[-1], 1e-9))


def dropped_rows(n_rows, scenario, rng):
    """Boolean mask of the rows the meter kept."""
    keep = rng.uniform(size=n_rows) >= 0.01
    for _ in range(scenario.gaps):
        length = int(rng.integers(5, 61))
        start = int(rng.integers(1, max(2, n_rows - length - 1)))
        keep[start:start + length] = False
    keep[0] = keep[-1] = True
    return keep


def quantise(current):
    return np.round(np.round(current / METER_STEP_MA) * METER_STEP_MA, 2)


def make_case(name, seed, n_rows=N_ROWS, directory=None):
    """One stress file of scenario `name` (see SCENARIOS), the same for the same (name, seed)."""
    if name not in SCENARIOS:
        raise KeyError(f"unknown stress scenario {name!r}; known: {', '.join(SCENARIOS)}")
    if n_rows < 2:
        raise ValueError(f"a stress file needs at least 2 rows, not {n_rows}")
    scenario, segments = SCENARIOS[name], load_segments(directory)
    rng = np.random.default_rng([seed, zlib.crc32(name.encode())])
    # Rows to draw before dropping: the gaps' most (60 each) and three times the singles' 1 %.
    total = n_rows + (int(0.03 * n_rows) + 10 + 60 * scenario.gaps if scenario.gaps else 0)
    t = meter_clock(total, scenario.period_s, rng)
    states = np.empty((total, len(DEVICES)), dtype=int)
    currents = np.empty((total, len(DEVICES)))
    spikes = np.zeros((total, len(DEVICES)), dtype=bool)
    for j, device in enumerate(DEVICES):
        spike_p = scenario.sensor_spike if j == SENSOR else scenario.screen_spike
        states[:, j], currents[:, j], spikes[:, j] = device_rows(
            t, segments[device], spike_p, scenario, device in scenario.active, rng)
    gain = gain_rows(t, scenario, rng)
    aggregate = gain * currents.sum(axis=1) + rng.normal(0.0, scenario.noise_sd or 0.0, total)
    keep = dropped_rows(total, scenario, rng) if scenario.gaps else np.ones(total, dtype=bool)
    rows = np.flatnonzero(keep)[:n_rows]
    max_current = quantise(np.maximum(aggregate[rows], 0.0))
    return Case(name, seed, 1_536_000_000.0 + t[rows], max_current,
                np.round(max_current / np.sqrt(2), 1), states[rows], gain[rows], spikes[rows],
                currents[rows])

