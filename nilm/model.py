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
Transitions: sticky per device, and the sensor switches on only into an inrush spike (its
switch-on always draws one; without it an OFF -> ON costs switch_on_plain). A few EM rounds
(posterior decoding) refit the gain and the step distributions on the series itself, then Viterbi.
tree_weight x the tree's scaled likelihood joins the emission (see NilmModel's docstring for
what each part is measured to contribute); smooth=False gives the tree's own per-sample decision.
"""
import json
from dataclasses import dataclass
from functools import lru_cache
from itertools import product
from pathlib import Path

import numpy as np

from nilm.devices import DEVICES
from nilm.emission import (
    N_JOINT,
    SHAPE,
    adapt_pmfs,
    fit_gain,
    gain_log_prior,
    joint_step_pmf,
    log_emission_table,
    observed_bins,
    smooth_pmfs,
    state_histogram,
    step_pmfs,
)
from nilm.features import FEATURE_NAMES, build_features, inrush_samples, segment
from nilm.smooth import gated_transitions, posterior, viterbi
from nilm.states import despike, max_current_of
from nilm.synth import GAIN_RANGE, SENSOR
from nilm.tree import TreeArrays

MODEL_PATH = Path(__file__).with_name("model.npz")
FORMAT_VERSION = 2
# Candidate gains searched for the first estimate from the series' segment levels.
GAIN_GRID = np.round(np.arange(0.80, 1.30001, 0.0025), 4)
# Residuals (mA) beyond this count as this much: switching transients must not pull the gain.
RESIDUAL_CAP_MA = 25.0
GAIN_SEGMENTS = 3000
# A leaf share of 0 only means no training sample of that state reached the leaf.
PROBA_FLOOR = 0.05
# EM on a long series runs on this many evenly spread blocks of rows (see adapt_rows).
ADAPT_BLOCKS = 12
ADAPT_BLOCK_ROWS = 2000
# The final Viterbi runs on chunks this long (exact up to DECODE_CHUNK + 2 x DECODE_MARGIN rows):
# with the sensor's switch-on banned between spikes its state carries over thousands of rows, and a
# chunk that starts blind could switch it on at its first row. Long chunks cost little (few steps).
DECODE_CHUNK = 8192
DECODE_MARGIN = 1024
# EM's posteriors need only be good on average: short chunks (fewer Python steps) do.
EM_CHUNK = 256
EM_MARGIN = 64
# EM starts from each of these gains too (and from the segment-level estimate).
START_GAINS = np.round(np.arange(0.90, 1.2001, 0.05), 2)


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

    What each part contributes, joint accuracy on held-out synthetic aggregates (tuning cases of a
    nested split, 16 cases / nilm.evaluate's 8 cases; settings were chosen on the tuning cases):
        full model (tree_weight=0)                      0.984 / 0.988
        tree alone (smooth=False)                       0.720 / 0.757
        no EM (training step distributions, 1st gain)   0.919 / 0.943
        EM of the gain only (distributions held)        0.967 / 0.977
        EM from the first gain only (no START_GAINS)    0.959 / 0.988  (one tuning case at 0.61)
        no inrush gate (sensor switches on anywhere)    0.970 / 0.974
        + the tree in the emission, weight 0.02/0.1/1   0.955 / 0.988, 0.895 / 0.948, 0.800 / 0.872
    The tree's errors come in whole segments (features of a shifted level), and a model that
    knows how the aggregate is made leaves it nothing to add on these data: it stays fitted (the
    issue's classifier, smooth=False, tree_proba) with weight 0 in the decision by default.

    use_tree=False decodes without the tree at all (it is never walked): the evaluation shows
    the model with and without it."""

    def __init__(self, n_series=80, series_rows=4000, gain=GAIN_RANGE, dwell=(0.3, 3.0),
                 max_leaf_nodes=3000, min_samples_leaf=20, smooth=True, tree_weight=0.0,
                 pmf_smoothing=0.05, adapt_iterations=3, adapt_strength=50.0,
                 switch_on_plain=0.0, switch_on_at_spike=0.9, use_tree=True, random_state=0):
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
        self.switch_on_plain = switch_on_plain
        self.switch_on_at_spike = switch_on_at_spike
        self.use_tree = use_tree
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
        return estimate_gain(current, joint_levels(self.state_levels_), self.gain_prior_)

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

    def transitions(self):
        """(2, 18, 18) log transitions: [0] the sensor may not switch on, [1] at an inrush."""
        return gated_transitions(SHAPE, self.stay_, DEVICES.index(SENSOR),
                                 self.switch_on_plain, self.switch_on_at_spike)

    def predict_details(self, recording_or_current, return_confidence=True):
        """Prediction of every row; with return_confidence, the marginal posterior of each chosen
        device state and the runner-up joint state (forward-backward on the same emission)."""
        if not hasattr(self, "tree_"):
            raise NotFittedError("NilmModel is not fitted: call fit() or load()")
        current = max_current_of(recording_or_current)
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
            weights = proba if return_confidence else None
            pmfs = self.step_pmfs_
        else:
            tree_term = self._tree_term(proba) if walk_tree else np.float32(0.0)
            bins, gate = observed_bins(current), switch_on_gate(current)
            transitions = self.transitions()
            pmfs, gain = self._adapt(bins, gate, gain, transitions, tree_term)
            emission = log_emission_table(joint_step_pmf(pmfs), gain)[bins] + tree_term
            joint = viterbi(emission, transitions, chunk=DECODE_CHUNK, margin=DECODE_MARGIN, which=gate)
            weights = (posterior(emission, transitions, chunk=DECODE_CHUNK, margin=DECODE_MARGIN,
                                 which=gate)[0] if return_confidence else None)
        states = np.column_stack(np.unravel_index(joint, SHAPE)).astype(int)
        if weights is None:
            return Prediction(states, gain, joint, pmfs)
        return Prediction(states, gain, joint, pmfs, *confidence_of(weights, states, joint))

    def _adapt(self, bins, gate, gain, transitions, tree_term):
        """EM on (a sample of) the series: posteriors of the joint states -> the gain and the
        devices' step distributions that explain this series best, near the trained ones.

        A gain ~10 % off can swap the screens (screen 2's ON x 1.1 ~ screen 1's ON), a local
        optimum EM does not leave; so one round starts from every gain in START_GAINS, and the
        start whose second round scores the highest likelihood goes on."""
        prior = smooth_pmfs(self.step_pmfs_, self.pmf_smoothing)
        rows = adapt_rows(bins.size)
        series = (bins[rows], gate[rows], tree_term[rows] if np.ndim(tree_term) else tree_term, transitions)
        pmfs = prior
        if self.adapt_iterations < 2:
            for _ in range(self.adapt_iterations):
                pmfs, gain, _ = self._em_rounds([(pmfs, gain)], series, prior)[0]
            return pmfs, gain
        first = {}
        starts = [(prior, g) for g in np.unique(np.r_[gain, START_GAINS])]
        for pmfs, new_gain, _ in self._em_rounds(starts, series, prior):
            first.setdefault(new_gain, pmfs)
        second = self._em_rounds([(p, g) for g, p in first.items()], series, prior)
        pmfs, gain, _ = max(second, key=lambda r: r[2])
        for _ in range(self.adapt_iterations - 2):
            pmfs, gain, _ = self._em_rounds([(pmfs, gain)], series, prior)[0]
        return pmfs, gain

    def _em_rounds(self, params, series, prior):
        """One EM round from each (pmfs, gain) -> [(pmfs, gain, log posterior of the gain and
        the step distributions before the round)]. The candidates are decoded side by side as
        one long series: one pass of the Python loop for all of them."""
        bins, gate, tree_term, transitions = series
        joint_pmfs = [joint_step_pmf(pmfs) for pmfs, _ in params]
        emission = np.concatenate([log_emission_table(jp, g)[bins] + tree_term
                                   for jp, (_, g) in zip(joint_pmfs, params)])
        weights, log_norm = posterior(emission, transitions, chunk=EM_CHUNK, margin=EM_MARGIN,
                                      which=np.tile(gate, len(params)))
        out = []
        for i, ((pmfs, gain), joint_pmf) in enumerate(zip(params, joint_pmfs)):
            part = slice(i * bins.size, (i + 1) * bins.size)
            counts = state_histogram(bins, weights[part])
            score = float(log_norm[part].sum(dtype=np.float64)) + gain_log_prior(gain, self.gain_prior_)
            new_gain = fit_gain(counts, joint_pmf, self.gain_prior_)
            out.append((adapt_pmfs(counts, pmfs, new_gain, prior, self.adapt_strength), new_gain, score))
        return out

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


def confidence_of(weights, states, joint):
    """(confidence (n, 3) float32, runner_up (n,) int) from joint posteriors (n, 18): each
    device's marginal posterior of its chosen state, and the likeliest other joint state."""
    rows = np.arange(joint.size)
    per_state = np.column_stack(np.unravel_index(np.arange(N_JOINT), SHAPE))
    confidence = np.empty(states.shape, dtype=np.float32)
    for d in range(len(DEVICES)):
        # (n, 18) @ (18, states of d): the marginal of every state of device d.
        marginals = weights @ np.eye(SHAPE[d], dtype=weights.dtype)[per_state[:, d]]
        confidence[:, d] = marginals[rows, states[:, d]]
    others = np.array(weights, dtype=np.float32)
    others[rows, joint] = -1.0
    return np.clip(confidence, 0.0, 1.0), others.argmax(axis=1)


def switch_on_gate(current):
    """1 where the sensor may switch on (the step into an inrush sample or the one after), else 0."""
    spikes = inrush_samples(current)
    gate = spikes.copy()
    gate[1:] |= spikes[:-1]
    return gate.astype(np.intp)


def adapt_rows(n):
    """All rows of a short series; of a long one, ADAPT_BLOCKS evenly spread blocks: the step
    distributions and the gain are global, a sample of the series pins them."""
    if n <= ADAPT_BLOCKS * ADAPT_BLOCK_ROWS:
        return np.arange(n)
    starts = np.linspace(0, n - ADAPT_BLOCK_ROWS, ADAPT_BLOCKS).astype(np.int64)
    return (starts[:, None] + np.arange(ADAPT_BLOCK_ROWS)).ravel()


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
