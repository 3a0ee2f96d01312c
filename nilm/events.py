"""Switching events for a decision tree that steers the HMM's transitions: the experiment of
issue 8 item 2, kept so that it can be rerun (bench/nilm_event_tree.py); it takes no part in
the shipped labels, because it did not help (numbers: README, NILM section).

    fit_event_tree(source, gain_of, n_series=80, n_rows=4000, dwell=(0.05, 3.0), random_state=0)
        -> TreeArrays (scikit-learn, at fit time only)
    EventGate(tree, gain, on_threshold, spike_floor, step_floor).gate(current, hand) -> int (n,)
        nilm.adapt's NOTHING/STEP/SPIKE for every row: the hand rules' gate `hand`
        (nilm.decode.switch_on_gate) refined by the tree, numpy only
    event_rows(hand) -> the rows the tree classifies: a spike or a step by the hand rules
    event_features(current, rows) -> float32 (rows, len(EVENT_FEATURES)); current gain-corrected
    event_labels(states) -> int (n,): the EVENTS class of the step into each row (training truth)
    augmented(synthetic, rng) -> max current of a nilm.synth series as meters show it more often
        than nilm.synth does: sensor switch-ons without their spike, screens with one, noise

The tree classifies each row where the hand rules see a spike or a step (what the sensor does:
stays, on or off, times what the screens do: stay, on, off or IDLE <-> ON) from local features,
gain-invariant where they can be: the height of the row over the level around it, the step
between the means just before and just after it (short and long windows), each also relative to
the level before, and the level itself. (The recordings' effective current is exactly
max / sqrt(2) on steady rows, and the decode sees only the max: no ratio feature.) Its shares
then move a row between the HMM's three switch-on regimes (nilm.adapt.transitions).
"""
from dataclasses import dataclass

import numpy as np

from nilm.adapt import INRUSH, NOTHING, SCREENS, SENSOR, SPIKE, STEP
from nilm.emission import GAIN_RANGE
from nilm.features import CHANGE_WINDOW
from nilm.states import QUANTUM_MA, despike
from nilm.tree import TreeArrays

# The class of a row's event: what the sensor does times what the screens do (both may switch on
# the same row), class = len(SCREEN_MOVES) * sensor move + screen move.
SENSOR_MOVES = ("stays", "on", "off")
SCREEN_MOVES = ("stay", "on", "off", "step")  # a screen leaves OFF, goes OFF, or IDLE <-> ON
EVENTS = tuple(f"sensor {a}, screens {b}" for a in SENSOR_MOVES for b in SCREEN_MOVES)
SENSOR_ON, SENSOR_OFF = (1, 2)
SCREEN_ON, SCREEN_OFF, SCREEN_STEP = (1, 2, 3)
EVENT_FEATURES = ("over_level", "over_level_ratio", "step", "step_ratio", "long_step",
                  "long_step_ratio", "level", "over_level_before")
# Long windows: the level change an event leaves, past a short wobble.
LONG_WINDOW = 3 * CHANGE_WINDOW
# Training augmentation (augmented): shares of sensor switch-ons that lose their spike and of
# screen switch-ons (from OFF) that gain one, the screens' spike (screen 2's recording shows one
# of 268 mA) and the noise's largest sd.
DROP_SENSOR_SPIKE = 0.5
ADD_SCREEN_SPIKE = 0.3
SCREEN_SPIKE_MA = (180.0, 400.0)
NOISE_SD_MA = 6.0
# The event tree's size (rows it sees: ~7 % of the training rows, where the hand rules act).
LEAF_NODES = 64
MIN_SAMPLES_LEAF = 30


def fit_event_tree(source, gain_of, n_series=80, n_rows=4000, dwell=(0.05, 3.0), random_state=0):
    """The event tree fitted on n_series augmented nilm.synth series drawn from `source` (a
    nilm.synth.Source; gains across GAIN_RANGE; dwell: range of factors on the measured stays,
    log-uniform, busy series included), each series divided by gain_of(current) as a model
    would estimate it (NilmModel._initial_gain), as TreeArrays."""
    from sklearn.tree import DecisionTreeClassifier

    from nilm.decode import switch_on_gate
    from nilm.synth import generate

    rng = np.random.default_rng(random_state)
    X, y = [], []
    for seed in rng.integers(2**31, size=n_series):
        synthetic = generate(source, n_rows, random_state=int(seed), gain=GAIN_RANGE,
                             dwell=float(np.exp(rng.uniform(*np.log(dwell)))))
        current = augmented(synthetic, np.random.default_rng(int(seed)))
        rows = event_rows(switch_on_gate(current))
        X.append(event_features(current / gain_of(current), rows))
        y.append(event_labels(synthetic.states)[rows])
    tree = DecisionTreeClassifier(max_leaf_nodes=LEAF_NODES, min_samples_leaf=MIN_SAMPLES_LEAF,
                                  random_state=random_state).fit(np.concatenate(X), np.concatenate(y))
    return TreeArrays.from_sklearn(tree)


@dataclass(frozen=True)
class EventGate:
    """The hand rules' gate refined by the event tree, for one series of this gain."""

    tree: TreeArrays
    gain: float
    on_threshold: float = 0.9  # a step (or a spike) with P(sensor on) >= this: SPIKE
    spike_floor: float = 0.2  # a spike with P(sensor on) < this: STEP
    step_floor: float = 0.0  # a step with P(sensor on or off) < this: NOTHING

    def shares(self, current, rows):
        """The tree's share of every EVENTS class at rows, (rows, len(EVENTS)) float32."""
        proba = np.zeros((rows.size, len(EVENTS)), dtype=np.float32)
        proba[:, self.tree.classes] = self.tree.predict_proba(event_features(current / self.gain, rows))
        return proba

    def gate(self, current, hand):
        rows = event_rows(hand)
        return event_gate(hand, rows, self.shares(np.asarray(current, dtype=float), rows),
                          self.on_threshold, self.spike_floor, self.step_floor)


def event_rows(hand):
    """The rows the tree classifies: where the hand rules see a spike or a step."""
    return np.flatnonzero(np.asarray(hand) != NOTHING)


def _means(xd, rows, lo, hi):
    """Mean of xd[row + lo:row + hi] for each row, the series' ends padded with its edge values."""
    padded = np.pad(xd, (-lo, hi), mode="edge")
    return padded[rows[:, None] + np.arange(hi - lo)].mean(axis=1)


def event_features(current, rows):
    """(rows, len(EVENT_FEATURES)) float32 of a gain-corrected max-current series, vectorised."""
    x = np.asarray(current, dtype=float)
    rows = np.asarray(rows, dtype=np.intp)
    xd = despike(x)
    over = x - xd
    trail, lead = _means(xd, rows, -CHANGE_WINDOW, 0), _means(xd, rows, 0, CHANGE_WINDOW)
    long_trail, long_lead = _means(xd, rows, -LONG_WINDOW, 0), _means(xd, rows, 0, LONG_WINDOW)
    scale = np.maximum(trail, QUANTUM_MA)
    step, long_step = lead - trail, long_lead - long_trail
    columns = (over[rows], over[rows] / scale, step, step / scale, long_step,
               long_step / np.maximum(long_trail, QUANTUM_MA), trail, over[np.maximum(rows - 1, 0)])
    return np.column_stack(columns).astype(np.float32)


def event_labels(states):
    """The EVENTS class of the step into each row of a (n, 3) state array (row 0: nothing); a
    row next to an event takes its class too (the hand rules' steps may land a row off)."""
    states = np.asarray(states)
    before, after = _previous(states), states
    moved = before != after
    screens_on = _screens_switch_on(states)
    screens_off = ((before[:, SCREENS] > 0) & (after[:, SCREENS] == 0)).any(axis=1)
    conditions = [moved[:, SENSOR] & (after[:, SENSOR] > 0), moved[:, SENSOR], screens_on, screens_off,
                  moved[:, SCREENS].any(axis=1)]
    sensor = np.select(conditions[:2], [SENSOR_ON, SENSOR_OFF], 0)
    screens = np.select(conditions[2:], [SCREEN_ON, SCREEN_OFF, SCREEN_STEP], 0)
    exact = len(SCREEN_MOVES) * sensor + screens
    later, earlier = np.r_[exact[1:], 0], np.r_[0, exact[:-1]]
    return np.where(exact != 0, exact, np.where(later != 0, later, earlier))


def _previous(states):
    """Each row's previous row (row 0 its own)."""
    return np.r_[states[:1], states[:-1]]


def _screens_switch_on(states):
    """bool (n,): some screen leaves OFF into each row."""
    return ((_previous(states)[:, SCREENS] == 0) & (states[:, SCREENS] > 0)).any(axis=1)


def sensor_move(classes):
    """SENSOR_MOVES index of EVENTS classes."""
    return np.asarray(classes) // len(SCREEN_MOVES)


def screen_move(classes):
    """SCREEN_MOVES index of EVENTS classes."""
    return np.asarray(classes) % len(SCREEN_MOVES)


def share(proba, mask):
    """The summed share of the EVENTS classes where mask (len(EVENTS),) holds."""
    return proba[:, np.flatnonzero(mask)].sum(axis=1)


def augmented(synthetic, rng):
    """The max current of a nilm.synth Synthetic with some sensor spikes dropped, some screen
    switch-on spikes added, and Gaussian noise of a per-series sd, quantised as the meter does."""
    from nilm.synth import quantise

    spikes = np.where(rng.uniform(size=synthetic.spikes.size) < DROP_SENSOR_SPIKE, 0.0, synthetic.spikes)
    on = _screens_switch_on(synthetic.states)
    added = on & (rng.uniform(size=on.size) < ADD_SCREEN_SPIKE)
    spikes = spikes + added * rng.uniform(*SCREEN_SPIKE_MA, size=on.size)
    noise = rng.normal(0.0, rng.uniform(0.0, NOISE_SD_MA), size=on.size)
    return quantise(np.maximum(synthetic.gain * (synthetic.components.sum(axis=1) + spikes) + noise, 0.0))


def event_gate(hand, rows, proba, on_threshold, spike_floor, step_floor):
    """nilm.adapt's gate: the hand rules' (nilm.decode.switch_on_gate) refined at `rows` by the
    tree's class shares there (rows, len(EVENTS)): SPIKE where the sensor likely switches on
    (a spike or not), STEP for a spike the tree gives to something else (a screen, a glitch),
    NOTHING for a step it gives to the screens alone."""
    gate = np.array(hand, dtype=np.intp)
    shown = gate[rows]
    moves = sensor_move(np.arange(len(EVENTS)))
    on, sensor = share(proba, moves == SENSOR_ON), share(proba, moves != 0)
    # A spike's own row (INRUSH) stays one when the tree agrees, and is demoted like SPIKE.
    sure_on = np.where(shown == INRUSH, INRUSH, SPIKE)
    gate[rows] = np.select([on >= on_threshold, np.isin(shown, (SPIKE, INRUSH)) & (on < spike_floor),
                            (shown == STEP) & (sensor < step_floor)], [sure_on, STEP, NOTHING], shown)
    return gate
