"""The NILM estimator: GaussianMixture states, a decision tree on temporal features, and an HMM.

    model = NilmModel(random_state=0).fit(load_device_recordings())
    model.predict(recording_or_current) -> int array (n, 3): state index per device, DEVICES order
    model.predict(recording_or_current, return_confidence=True) -> (states, confidence (n, 3) float)
    model.predict_details(recording_or_current) -> Prediction(states, gain, joint, step_pmfs,
        confidence, runner_up)
    model.combination_levels(gain=1.0) -> [((s1, s2, sensor), expected mA), ...] for the 18 joint states
    model.state_levels_ -> {device: mean mA per state, OFF..ON}
    model.tree_proba(current, gain) -> (n, 18) the tree's joint-state shares
    model.save(path); load(path=None) -> NilmModel (None: the model shipped in nilm/model.npz)

fit uses scikit-learn (GaussianMixture, DecisionTreeClassifier); predict and load use numpy only.
fit: states per device -> per device and state, the distribution of its recorded current in meter
steps (nilm.emission) -> synthetic aggregates with known truth (nilm.synth) -> features of each
series divided by its estimated gain (nilm.features) -> one tree over the 18 joint states.
predict (smooth=True): an HMM over the 18 joint states. Emission: the exact likelihood of the
observed step given the joint state (sum of the devices' step distributions x gain, rounded).
Transitions: per second of elapsed time (the timestamps; a series without them is taken at
SECONDS_PER_ROW), sticky per device; the sensor switches on readily into an inrush spike
(switch_on_at_spike), on or off at a level step (switch_at_step: the meter may miss the
spike), off at a small step inside a steady stretch (nilm.adapt.SWITCH_OFF_AT_MINOR), rarely
elsewhere, and across a gap in the timestamps at its full rate. Nothing is
banned. A few EM rounds on a sample of rows (nilm.adapt) refit the gain (drifting per block of
rows), the step distributions and the switching rates on the series itself; then Viterbi, and
forward-backward for the confidence (where a steady stretch's samples count as at most
nilm.decode.CONFIDENCE_STAY_ROWS: they share its level), batch by batch (nilm.decode). With
use_tree, tree_weight x the tree's scaled likelihood joins the emission (weight 0 by default:
see NilmModel's docstring); smooth=False gives the tree's own per-sample decision.
"""
import json
from dataclasses import dataclass
from functools import lru_cache
from itertools import product
from pathlib import Path

import numpy as np

from nilm.adapt import adapt_rows
from nilm.decode import batches, confidence_of, elapsed_seconds, prepare
from nilm.devices import DEVICES
from nilm.emission import GAIN_GRID, GAIN_RANGE, N_JOINT, SHAPE, step_pmfs
from nilm.features import FEATURE_NAMES, build_features, segment
from nilm.states import despike, max_current_of
from nilm.tree import TreeArrays

MODEL_PATH = Path(__file__).with_name("model.npz")
FORMAT_VERSION = 3
# Residuals (mA) beyond this count as this much: switching transients must not pull the gain.
RESIDUAL_CAP_MA = 25.0
GAIN_SEGMENTS = 3000
# A leaf share of 0 only means no training sample of that state reached the leaf.
PROBA_FLOOR = 0.05

class NotFittedError(ValueError, AttributeError):
    """predict before fit (sklearn's own class would import scikit-learn)."""


@dataclass(frozen=True)
class Prediction:
    states: np.ndarray  # (n, 3) int, DEVICES order
    gain: float  # aggregate / plain sum of the state levels
    joint: np.ndarray  # (n,) int joint state index (np.ravel_multi_index over SHAPE)
    step_pmfs: np.ndarray  # (3, 3, N_STEPS) the devices' step distributions adapted to this series
    # (n, 3) float32 in [0, 1]: the marginal posterior of each device's chosen state (None when
    # not asked for); runner_up (n,) int: the likeliest joint state other than the chosen one.
    confidence: np.ndarray = None
    runner_up: np.ndarray = None


def joint_levels(levels):
    """Expected current of every joint state, indexed like np.ravel_multi_index(SHAPE)."""
    grids = np.meshgrid(*[levels[d] for d in DEVICES], indexing="ij")
    return sum(grids).ravel()


def estimate_gain(current, combos, prior=1.0):
    """The gain g that best explains the series' segment levels as g * a state combination."""
    x = np.asarray(current, dtype=float)
    if x.size == 0:
        return prior
    starts = segment(x)
    lengths = np.diff(np.r_[starts, x.size])
    levels = np.add.reduceat(despike(x), starts) / lengths
    # A few thousand segments pin the gain as well as all of a long series do.
    stride = max(1, levels.size // GAIN_SEGMENTS)
    levels, lengths = levels[::stride], lengths[::stride]
    # One gain at a time keeps memory at (segments x combos), not x gains as well.
    cost = np.array([
        np.minimum(np.abs(levels[:, None] / g - combos[None, :]).min(axis=1), RESIDUAL_CAP_MA) @ lengths
        for g in GAIN_GRID]) / lengths.sum()
    # Ties (a series of one level fits many gains) go to the gain nearest the prior.
    cost = cost + 1e-3 * np.abs(GAIN_GRID - prior)
    return float(GAIN_GRID[np.argmin(cost)])


class NilmModel:
    """GaussianMixture states per device, a decision tree over the 18 joint states, and an HMM
    whose level model is adapted to each series.

    Settings (switch_at_step, switch_elsewhere, emission_weight, ...) were chosen on
    nilm.stress's tuning seeds (mean joint accuracy over its 14 scenarios: switch_at_step 0.3 ->
    0.934, 0.1 -> 0.947; emission_weight 1.0 -> 0.947, 0.7 -> 0.949, 0.5 -> 0.935); the reported
    numbers use its reporting seeds only. Since then EM also picks the noise of each series
    (nilm.adapt.NOISE_GRID: a noisy file gets a wide emission, a clean one keeps a sharp one),
    and adapt_strength went from 50 to 500: the adapted step distributions had absorbed noise
    and look-alike levels (tuning seeds, mean of 14 scenarios 0.9486 -> 0.9534; clean 0.986 ->
    0.992, noise 6 mA 0.972 -> 0.986, gain 1.25 0.963 -> 0.978, gain drift 0.961 -> 0.955;
    strength 150 / 250 / 1000 with the noise: 0.9511 / 0.9501 / about 0.953; emission_weight
    0.85 / 1.0 lowered the gain scenarios: 1.25 0.944 / 0.938). Then pmf_smoothing went from
    0.05 to 0.01, and EM's score of a start counts the prior of the step distributions it bent
    (nilm.adapt.divergence): smoothed by 0.05, screen 2's sharp step shape lost to screen 1 at a
    gain 12 % lower, and bent distributions scored as if free (tuning seeds: only_screen2 0.871
    -> 0.993, only_screen1 0.966 -> 1.000, only_sensor 0.985 -> 1.000, gain drift 0.962 -> 0.980,
    clean 0.992 -> 0.990, 14 scenarios 0.954 -> 0.969; smoothing 0.02 / 0.005: 0.968 / about the
    same; without the prior term gain drift stays 0.965; 0.05 with it: only_screen2 0.837).
    Last, each series picks switch_elsewhere x (1, 5, 20) by its likelihood (nilm.adapt.
    elsewhere_of): on short stays the sensor's switches hide in the screens' steps (tuning
    seeds: dwell_5_20s 0.741 -> 0.805, the 13 others unchanged, mean 0.969 -> 0.974; one
    switch_elsewhere for all: 0.05 / 0.1 / 0.2 / 0.4 gave dwell 0.766 / 0.783 / 0.796 / 0.807,
    but 0.1 already cost gain_0.85 0.989 -> 0.984; emission_weight 1.0 gave dwell 0.781).
    Then a fourth choice frees the sensor's switch-off alone (full rate away from any sign; a
    switch-off shows no spike and its small step hides among the screens', a switch-on still
    shows its spike; it must win by 20 nats, not 5, or it took a held-out synth file of 30-row
    stays, 0.976 -> 0.963): dwell_5_20s 0.805 -> 0.822, the 13 others unchanged, mean 0.9737 -> 0.9749;
    for every file it cost gain_0.85 0.989 -> 0.947. Not helping on dwell: switch_at_step raised
    to the learnt rate (0.804), the learnt stays pinned to the generator's (0.785) or scaled
    (x0.7 rate: 0.792, x1.4: 0.812 but a blunt knob), a forced noise 0.15 / 0.3 (0.800 / 0.778;
    with emission_weight 1.0: 0.810); a per-row posterior argmax instead of Viterbi gave 0.814.
    Then where both screens stay under nilm.adapt.SHORT_STAY_ROWS on average, the decode weighs
    the emission fully (1, not emission_weight: the tempering is for long stays): dwell_5_20s
    0.822 -> 0.832, the 13 others unchanged, mean 0.9749 -> 0.9756 (reporting seeds: dwell 0.817
    -> 0.838, the others unchanged; emission_weight 1.0 for every file gave dwell 0.833 but cost
    the gain scenarios). Screens' learnt switching rates x1.4 / x2 gave dwell +0.006 but cost
    noise_6mA, gain_drift and gaps; RATE_PRIOR_SWITCHES 20, adapt_strength 1000 and
    emission_weight 0.8 left clean at 0.990 / 0.990 / 0.987.
    Where dwell_5_20s's gap to nilm.ceiling came from (tuning seeds; model 0.832, near-ceiling
    0.879), one piece swapped at a time: in our HMM, the true gain with the trained step
    distributions 0.836 (with the trained stays too 0.749), EM's distributions at the true gain
    0.835, the generator's switching rate as the stays 0.822, per-row posterior argmax 0.830,
    the ceiling's emission 0.826 (with its rates and argmax 0.829), its gate (a switch-on only at
    a spike) 0.793; the gate misses 17 of 1468 sensor spikes (16 of them with a screen switching
    within a row). In the ceiling, our gain 0.884 and our stays 0.874, but despiked rows 0.842:
    the gap was the despiking. A one-row peak or dip is as often two screens switching a row
    apart as a glitch (39 such rows a file), and its level tells which; so only inrush spikes
    take their neighbours' level (nilm.decode.meter_bins): dwell 0.832 -> 0.856, the 13 others
    within -0.0007 / +0.001, mean 0.9756 -> 0.9776 (the raw level of peaks alone, or a mixture
    of both levels: 0.837). Then an inrush row is someone's switch-on: into it, a sensor that
    stays on while nothing switches on costs 1 - switch_on_at_spike (nilm.adapt.transitions):
    dwell 0.856 -> 0.860, the others within 0.0002, mean 0.9778 (factor 0.01 / 0.03 / 0.3:
    dwell 0.859 / 0.860 / 0.857; for any spike, a screen's switch-on too: screen_spikes 0.976 ->
    0.972). Held-out synth 0.982 -> 0.986; the main file changes 11 rows (its one-row dip to
    73 mA now counts). Not kept: no emission on the inrush row itself (its level is unseen),
    dwell 0.862 but gain_drift 0.980 -> 0.977.
    Then the sensor may switch off at a small step inside a steady stretch
    (nilm.features.minor_steps: a ~2-step drop a few rows after a screen's step, which
    segment's windows hide; nilm.adapt.SWITCH_OFF_AT_MINOR 0.02): of the clean tuning files'
    92 sensor switch-offs, 27 showed no step to segment and only 8 of those were labelled
    right. Measured without the despiking change above: clean 0.9897 -> 0.9907, no scenario
    down by more than 0.0004, mean 0.9756 -> 0.9762 (0.05: 0.9760); with it: clean 0.9899 ->
    0.9909, mean 0.9778 -> 0.9783 (the freed switch-off above still earns its place: without it
    dwell 0.860 -> 0.855). Letting the sensor switch on there too cost gain_0.85 (0.989 ->
    0.984, a 150-row look-alike swap) and only_sensor (1.000 -> 0.998); marking those rows as
    level steps (switch_at_step 0.1, on and off) cost gain_0.85 0.989 -> 0.979 and
    only_sensor 1.000 -> 0.981.
    The confidence counts a steady stretch's samples as at most nilm.decode.CONFIDENCE_STAY_ROWS
    (20): they share its level, and a long stretch between two look-alike explanations made the
    wrong one certain (reporting seeds, sensor_no_spike: 14 % of its wrong rows below 0.9).
    Tuning seeds, 14 scenarios: errors flagged 0.50 -> 0.62, rows >= 0.9 0.992 -> 0.994 right,
    log loss of each device's confidence 0.050 -> 0.045 (10 rows: 0.058, too doubtful). A temper
    of every row's emission instead (0.7 / 0.5 / 0.3: errors flagged 0.56 / 0.61 / 0.70, share of
    rows >= 0.9 0.928 / 0.911 / 0.857) is about as good on the tuning seeds at 0.5, but it also
    halves the evidence of short stays (dwell_5_20s: rows >= 0.9 0.63 -> 0.44) where the cap
    leaves it whole (0.62), and it left that reporting file's errors confident (15 % flagged).
    The tree stays fitted (the issue's classifier,
    smooth=False, tree_proba) with weight 0 in the decision: on nilm.synth, adding it to the
    emission only lowered the joint accuracy (weights 0.02 / 0.1 / 1: 0.955 / 0.895 / 0.800
    against 0.984 without it, tuning cases of the previous model). An event tree refining the
    switch-on gate (nilm.events, bench/nilm_event_tree.py) did not help either: stress tuning
    mean 0.949 with and without it (screen_spikes +0.005, dwell_5_20s -0.008), held-out synth
    0.978 -> 0.966; the gate stays the hand rules (nilm.decode.switch_on_gate).

    use_tree=False decodes without the tree at all (it is never walked): the evaluation shows
    the model with and without it."""

    def __init__(self, n_series=80, series_rows=4000, gain=GAIN_RANGE, dwell=(0.3, 3.0),
                 max_leaf_nodes=3000, min_samples_leaf=20, smooth=True, tree_weight=0.0,
                 pmf_smoothing=0.01, adapt_iterations=3, adapt_strength=500.0,
                 switch_on_at_spike=0.9, switch_at_step=0.1, switch_elsewhere=0.02,
                 use_tree=True, drift_block=500, emission_weight=0.7, random_state=0):
        self.n_series = n_series
        self.series_rows = series_rows
        self.gain = gain
        self.dwell = dwell
        self.max_leaf_nodes = max_leaf_nodes
        self.min_samples_leaf = min_samples_leaf
        self.smooth = smooth
        self.tree_weight = tree_weight
        self.pmf_smoothing = pmf_smoothing
        self.adapt_iterations = adapt_iterations
        self.adapt_strength = adapt_strength
        self.switch_at_step = switch_at_step
        self.switch_elsewhere = switch_elsewhere
        self.switch_on_at_spike = switch_on_at_spike
        self.use_tree = use_tree
        self.drift_block = drift_block
        self.emission_weight = emission_weight
        self.random_state = random_state

    # ---- fitting (scikit-learn) ----
    def fit(self, recordings):
        from sklearn.tree import DecisionTreeClassifier

        from nilm.states import fit_states
        from nilm.synth import make_source

        _validate_recordings(recordings)
        states = fit_states(recordings, self.random_state)
        self.state_levels_ = {d: states[d].levels for d in DEVICES}
        self.state_spreads_ = {d: states[d].spreads for d in DEVICES}
        self.gain_prior_ = float(np.mean(self.gain))
        source = make_source(recordings, states)
        self.step_pmfs_ = step_pmfs(source.pools)
        X, y = self._training_data(source)
        self.class_prior_ = np.maximum(np.bincount(y, minlength=N_JOINT) / y.size, 1e-6)
        # Typical stay in training: the measured one times the middle of the dwell range.
        self.stay_ = 1 - 1 / (source.dwell_means * np.sqrt(np.prod(self.dwell)))
        tree = DecisionTreeClassifier(max_leaf_nodes=self.max_leaf_nodes,
                                      min_samples_leaf=self.min_samples_leaf,
                                      random_state=self.random_state).fit(X, y)
        self.tree_ = TreeArrays.from_sklearn(tree)
        self.n_features_in_ = X.shape[1]
        return self

    def _training_data(self, source):
        from nilm.synth import generate

        rng = np.random.default_rng(self.random_state)
        lo, hi = np.log(self.dwell)
        X, y = [], []
        for seed in rng.integers(2**31, size=self.n_series):
            synthetic = generate(source, self.series_rows, random_state=int(seed), gain=self.gain,
                                 dwell=float(np.exp(rng.uniform(lo, hi))))
            X.append(self._features(synthetic.current, self._initial_gain(synthetic.current)))
            y.append(np.ravel_multi_index(synthetic.states.T, SHAPE))
        return np.concatenate(X), np.concatenate(y)

    # ---- prediction (numpy only) ----
    def _initial_gain(self, current):
        # A long series' first gain comes from the rows EM samples: memory stays bounded.
        sample = current if current.size <= 50_000 else current[adapt_rows(current.size)]
        return estimate_gain(sample, joint_levels(self.state_levels_), self.gain_prior_)

    @staticmethod
    def _features(current, gain):
        return build_features(np.asarray(current, dtype=float) / gain)

    def tree_proba(self, current, gain):
        """The tree's share of every joint state per sample, (n, 18) float32."""
        proba = np.zeros((current.size, N_JOINT), dtype=np.float32)
        proba[:, self.tree_.classes] = self.tree_.predict_proba(self._features(current, gain))
        return proba

    def _tree_term(self, proba):
        # Leaf shares are posteriors; divided by the priors they act as scaled likelihoods.
        return self.tree_weight * (np.log(proba + PROBA_FLOOR) - np.log(self.class_prior_)).astype(np.float32)

    def predict_details(self, recording_or_current, return_confidence=True):
        """Prediction of every row; with return_confidence, the marginal posterior of each chosen
        device state and the runner-up joint state (forward-backward on the same emission)."""
        if not hasattr(self, "tree_"):
            raise NotFittedError("NilmModel is not fitted: call fit() or load()")
        current = max_current_of(recording_or_current)
        seconds = elapsed_seconds(recording_or_current, current.size)
        if current.ndim != 1:
            raise ValueError(f"expected a 1-D series of max current, got shape {current.shape}")
        if current.size == 0:
            empty = np.zeros((0, len(DEVICES)))
            return Prediction(empty.astype(int), 1.0, np.zeros(0, dtype=int), self.step_pmfs_,
                              empty.astype(np.float32) if return_confidence else None,
                              np.zeros(0, dtype=int) if return_confidence else None)
        gain = self._initial_gain(current)
        walk_tree = not self.smooth or (self.use_tree and self.tree_weight > 0)
        proba = self.tree_proba(current, gain) if walk_tree else None
        if not self.smooth:
            joint = proba.argmax(axis=1)
            pmfs, extra = self.step_pmfs_, confidence_of(proba, joint) if return_confidence else ()
        else:
            plan = prepare(self, current, seconds, gain, self._tree_term(proba) if walk_tree else 0.0)
            pmfs, gain = plan.fit.pmfs, plan.fit.gain
            parts = list(batches(self, plan, current, seconds, return_confidence))
            joint = np.concatenate([p.joint for p in parts])
            extra = (tuple(np.concatenate([getattr(p, name) for p in parts])
                           for name in ("confidence", "runner_up")) if return_confidence else ())
        states = np.column_stack(np.unravel_index(joint, SHAPE)).astype(int)
        return Prediction(states, gain, joint, pmfs, *extra)

    def plan(self, current, seconds):
        """The HMM fitted to this series, for nilm.decode.batches (the tree takes no part)."""
        return prepare(self, current, seconds, self._initial_gain(current))

    def predict(self, recording_or_current, return_confidence=False):
        """States (n, 3); with return_confidence, (states, confidence (n, 3) float in [0, 1])."""
        details = self.predict_details(recording_or_current, return_confidence)
        return (details.states, details.confidence) if return_confidence else details.states

    def combination_levels(self, gain=1.0):
        levels = joint_levels(self.state_levels_) * gain
        return [(combo, float(levels[np.ravel_multi_index(combo, SHAPE)]))
                for combo in product(*[range(k) for k in SHAPE])]

    # ---- storage: plain arrays + JSON, never pickle ----
    def save(self, path):
        meta = {
            "format_version": FORMAT_VERSION, "devices": list(DEVICES),
            "feature_names": list(FEATURE_NAMES), "gain_prior": self.gain_prior_,
            "params": {k: (list(v) if isinstance(v, tuple) else v) for k, v in vars(self).items()
                       if not k.endswith("_")},
        }
        arrays = self.tree_.to_arrays()
        arrays.update(class_prior=self.class_prior_, stay=self.stay_, step_pmfs=self.step_pmfs_)
        for i, d in enumerate(DEVICES):
            arrays[f"levels_{i}"] = self.state_levels_[d]
            arrays[f"spreads_{i}"] = self.state_spreads_[d]
        np.savez_compressed(path, meta=np.array(json.dumps(meta)), **arrays)


def _validate_recordings(recordings):
    missing = [d for d in DEVICES if d not in recordings]
    if missing:
        raise ValueError(f"missing recordings for: {', '.join(missing)}")
    for d in DEVICES:
        x = max_current_of(recordings[d])
        if x.ndim != 1 or x.size < 10 or not np.all(np.isfinite(x)):
            raise ValueError(f"{d}: need a 1-D finite series of at least 10 samples")


def _load(path):
    with np.load(path, allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files}
    meta = json.loads(str(arrays["meta"]))
    if meta["format_version"] != FORMAT_VERSION or meta["feature_names"] != list(FEATURE_NAMES):
        raise ValueError(f"{path}: model was saved by another version; rebuild with python -m nilm.train")
    params = {k: (tuple(v) if isinstance(v, list) else v) for k, v in meta["params"].items()}
    model = NilmModel(**params)
    model.state_levels_ = {d: arrays[f"levels_{i}"] for i, d in enumerate(DEVICES)}
    model.state_spreads_ = {d: arrays[f"spreads_{i}"] for i, d in enumerate(DEVICES)}
    model.gain_prior_ = meta["gain_prior"]
    model.tree_ = TreeArrays.from_arrays(arrays)
    model.class_prior_ = arrays["class_prior"]
    model.stay_ = arrays["stay"]
    model.step_pmfs_ = arrays["step_pmfs"]
    model.n_features_in_ = len(FEATURE_NAMES)
    return model


@lru_cache(maxsize=1)
def _load_shipped():
    return _load(MODEL_PATH)


def load(path=None):
    """A NilmModel from an .npz written by save(); None loads the shipped nilm/model.npz (cached)."""
    return _load_shipped() if path is None else _load(path)
