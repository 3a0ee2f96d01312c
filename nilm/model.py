"""The NILM estimator: GaussianMixture states + a decision tree on temporal features.

    model = NilmModel(random_state=0).fit(load_device_recordings())
    model.predict(recording_or_current) -> int array (n, 3): state index per device, DEVICES order
    model.predict_details(recording_or_current) -> Prediction(states, gain, joint, confidence)
    model.combination_levels(gain=1.0) -> [((s1, s2, sensor), expected mA), ...] for the 18 joint states
    model.state_levels_ -> {device: mean mA per state, OFF..ON}
    model.save(path); load(path=None) -> NilmModel (None: the model shipped in nilm/model.npz)

fit uses scikit-learn (GaussianMixture, DecisionTreeClassifier); predict and load use numpy only.
fit: states per device -> synthetic aggregates with known truth (nilm.synth) -> each series divided
by its estimated gain -> features (nilm.features) -> one tree over the 18 joint states.
predict: estimate the gain of the series, divide, build features, walk the tree; then (smooth=True)
Viterbi over the 18 joint states with a sticky transition matrix, scoring each sample by the
likelihood of its gain-corrected current (histograms per joint state, learnt from the synthetic
training data) plus tree_weight x the tree's scaled likelihood, after refitting the gain from the
per-sample best states.
"""
import json
from dataclasses import dataclass
from functools import lru_cache
from itertools import product
from pathlib import Path

import numpy as np

from nilm.devices import DEVICES, STATES
from nilm.features import FEATURE_NAMES, build_features, segment
from nilm.states import despike, max_current_of
from nilm.synth import GAIN_RANGE
from nilm.smooth import sticky_transitions, viterbi
from nilm.tree import TreeArrays

MODEL_PATH = Path(__file__).with_name("model.npz")
FORMAT_VERSION = 1
SHAPE = tuple(len(STATES[d]) for d in DEVICES)  # (3, 3, 2): joint state = ravel of the three
# Candidate gains searched when fitting the series to the state combinations.
GAIN_GRID = np.round(np.arange(0.80, 1.30001, 0.0025), 4)
# Residuals (mA) beyond this count as this much: switching transients must not pull the gain.
RESIDUAL_CAP_MA = 25.0
GAIN_SEGMENTS = 3000
# A leaf share of 0 only means no training sample of that state reached the leaf.
# Measured on held-out synthetic data: a floor of 0.05 and tree_weight 0.02 decode best. The tree's
# errors persist over whole segments, so its per-sample evidence must count for little; the level
# histograms carry most of it (joint accuracy 0.864 vs 0.855 without the tree, 0.78 with weight 1).
PROBA_FLOOR = 0.05
# Rows expected below this (mA) say little about the gain: quantisation dominates.
GAIN_MIN_LOAD_MA = 150.0
# Histogram of the gain-corrected current per joint state: 2 mA bins up to 800 mA (inrush above).
LEVEL_BIN_MA = 2.0
LEVEL_BINS = 400
LEVEL_FLOOR = 1e-5


class NotFittedError(ValueError, AttributeError):
    """predict before fit (sklearn's own class would import scikit-learn)."""


@dataclass(frozen=True)
class Prediction:
    states: np.ndarray  # (n, 3) int, DEVICES order
    gain: float  # aggregate / plain sum of the state levels
    joint: np.ndarray  # (n,) int joint state index (np.ravel_multi_index over SHAPE)
    confidence: np.ndarray  # (n,) float32 tree share of the chosen joint state


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
    """GaussianMixture states per device + a decision tree over the 18 joint states."""

    def __init__(self, n_series=80, series_rows=4000, gain=GAIN_RANGE, dwell=(0.3, 3.0),
                 max_leaf_nodes=3000, min_samples_leaf=20, smooth=True, tree_weight=0.02, random_state=0):
        self.smooth = smooth
        self.tree_weight = tree_weight
        self.n_series = n_series
        self.series_rows = series_rows
        self.gain = gain
        self.dwell = dwell
        self.max_leaf_nodes = max_leaf_nodes
        self.min_samples_leaf = min_samples_leaf
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
        X, y, scaled = self._training_data(source)
        self.level_log_likelihood_ = level_histograms(scaled, y)
        n_joint = int(np.prod(SHAPE))
        self.class_prior_ = np.maximum(np.bincount(y, minlength=n_joint) / y.size, 1e-6)
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
        X, y, scaled = [], [], []
        for seed in rng.integers(2**31, size=self.n_series):
            synthetic = generate(source, self.series_rows, random_state=int(seed), gain=self.gain,
                                 dwell=float(np.exp(rng.uniform(lo, hi))))
            features, gain = self._features(synthetic.current)
            X.append(features)
            scaled.append(despike(synthetic.current) / gain)
            y.append(np.ravel_multi_index(synthetic.states.T, SHAPE))
        return np.concatenate(X), np.concatenate(y), np.concatenate(scaled)

    # ---- prediction (numpy only) ----
    def _features(self, current):
        gain = estimate_gain(current, joint_levels(self.state_levels_), self.gain_prior_)
        return build_features(np.asarray(current, dtype=float) / gain), gain

    def predict_details(self, recording_or_current):
        if not hasattr(self, "tree_"):
            raise NotFittedError("NilmModel is not fitted: call fit() or load()")
        current = max_current_of(recording_or_current)
        if current.ndim != 1:
            raise ValueError(f"expected a 1-D series of max current, got shape {current.shape}")
        if current.size == 0:
            empty = np.zeros(0, dtype=int)
            return Prediction(np.zeros((0, len(DEVICES)), dtype=int), 1.0, empty,
                              np.zeros(0, dtype=np.float32))
        X, gain = self._features(current)
        proba = np.zeros((current.size, int(np.prod(SHAPE))), dtype=np.float32)
        proba[:, self.tree_.classes] = self.tree_.predict_proba(X)
        if not self.smooth:
            joint = proba.argmax(axis=1)
        else:
            # Leaf shares are posteriors; divided by the priors they act as scaled likelihoods.
            tree_term = np.log(proba + PROBA_FLOOR) - np.log(self.class_prior_).astype(np.float32)
            transitions = sticky_transitions(SHAPE, self.stay_)
            clean = despike(current)
            # Refine the gain from the per-sample best joint state (a full decode costs ~2.5 s per
            # million rows), then decode once.
            rough = (self.tree_weight * tree_term + self._level_log_likelihood(clean / gain)).argmax(axis=1)
            gain = self._refit_gain(clean, rough, gain)
            emission = self.tree_weight * tree_term + self._level_log_likelihood(clean / gain)
            joint = viterbi(emission, transitions)
        states = np.column_stack(np.unravel_index(joint, SHAPE)).astype(int)
        return Prediction(states, gain, joint, proba[np.arange(joint.size), joint])

    def _level_log_likelihood(self, current):
        """log P(gain-corrected current | joint state), from the synthetic training data's histograms."""
        return self.level_log_likelihood_[_level_bin(current)]

    def _refit_gain(self, current, joint, gain):
        """Median ratio of observed to expected current where the decoded load is substantial."""
        expected = joint_levels(self.state_levels_)[joint]
        loaded = expected > GAIN_MIN_LOAD_MA
        return float(np.median(current[loaded] / expected[loaded])) if loaded.sum() > 10 else gain

    def predict(self, recording_or_current):
        return self.predict_details(recording_or_current).states

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
        arrays.update(class_prior=self.class_prior_, stay=self.stay_,
                      level_log_likelihood=self.level_log_likelihood_)
        for i, d in enumerate(DEVICES):
            arrays[f"levels_{i}"] = self.state_levels_[d]
            arrays[f"spreads_{i}"] = self.state_spreads_[d]
        np.savez_compressed(path, meta=np.array(json.dumps(meta)), **arrays)


def _level_bin(current):
    return np.clip((np.asarray(current) / LEVEL_BIN_MA).astype(np.int64), 0, LEVEL_BINS - 1)


def level_histograms(current, joint):
    """log P(bin | joint state), (LEVEL_BINS, n_joint) float32: counts blurred over neighbouring
    bins (the gain estimate wobbles) with a floor, so unseen bins stay possible."""
    n_joint = int(np.prod(SHAPE))
    counts = np.zeros((LEVEL_BINS, n_joint))
    np.add.at(counts, (_level_bin(current), joint), 1.0)
    kernel = np.array([1.0, 2.0, 3.0, 2.0, 1.0])
    counts = np.apply_along_axis(lambda c: np.convolve(c, kernel, mode="same"), 0, counts)
    share = counts / counts.sum(axis=0, keepdims=True).clip(min=1.0)
    return np.log(share + LEVEL_FLOOR).astype(np.float32)


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
    model.level_log_likelihood_ = arrays["level_log_likelihood"]
    model.n_features_in_ = len(FEATURE_NAMES)
    return model


@lru_cache(maxsize=1)
def _load_shipped():
    return _load(MODEL_PATH)


def load(path=None):
    """A NilmModel from an .npz written by save(); None loads the shipped nilm/model.npz (cached)."""
    return _load_shipped() if path is None else _load(path)
