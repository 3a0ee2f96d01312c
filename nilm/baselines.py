"""Baselines the NILM model is judged against (see nilm.evaluate).

- `CombinatorialOptimisation`: NILMTK's CO. Per sample, the joint state whose sum of state
  means is nearest the observed current. NILMTK has no gain; `gain=None` keeps it faithful,
  `gain="fit"` is our clearly labelled variant that fits one gain per aggregate.
- `FactorialHMM`: one HMM per device (Gaussian emission per state, transitions counted on
  the device's state sequence), combined into the 18 joint states; joint Viterbi.
- `Oracle`: knows the generator (nilm.synth with the same gain and dwell settings). Its
  emission distribution and transition matrix are counted on a long run of that same
  generator (another seed), then it decodes with joint Viterbi: the ceiling.

All are scikit-learn style; `predict(current)` returns an int array (n, 3) of state
indices, columns in nilm.devices.DEVICES order.

Fitting CO and the FHMM takes per-device training data as two dicts keyed by device:
`currents[device]` (1-D max current, mA) and `states[device]` (1-D int state index).
`labelled_training_data(recordings)` builds them from Recordings with nilm.states.
"""
import itertools

import numpy as np

from nilm.devices import DEVICES, STATES

# Every joint state, one row per state, columns in DEVICES order; the last device varies
# fastest, which matches np.kron of the per-device transition matrices.
JOINT_STATES = np.array(list(itertools.product(*(range(len(STATES[d])) for d in DEVICES))))

# The meter reports max current in steps of about this many mA.
QUANTUM_MA = 12.21

_TINY = 1e-300


def _check_fitted(estimator, attribute):
    if not hasattr(estimator, attribute):
        raise RuntimeError(f"{type(estimator).__name__} is not fitted yet; call fit first")


def _as_current(current):
    """A 1-D float array of max current from an array or a Recording."""
    current = getattr(current, "max_current", current)
    current = np.asarray(current, dtype=float)
    if current.ndim != 1:
        raise ValueError("current must be one-dimensional")
    return current


def joint_sums(per_device):
    """For each joint state, the sum over devices of a per-state quantity (e.g. means)."""
    return sum(np.asarray(per_device[d], dtype=float)[JOINT_STATES[:, i]]
               for i, d in enumerate(DEVICES))


def robust_state_stats(current, states, n_states, min_std=QUANTUM_MA / 2):
    """Mean and std of each state's samples, ignoring transient spikes.

    A single inrush spike of thousands of mA would otherwise swamp a state's variance;
    samples further than 5 robust sigma from the state's median are left out.
    """
    current, states = np.asarray(current, dtype=float), np.asarray(states)
    means, stds = np.zeros(n_states), np.full(n_states, float(min_std))
    for s in range(n_states):
        x = current[states == s]
        if x.size == 0:
            continue
        median = np.median(x)
        spread = max(1.4826 * np.median(np.abs(x - median)), min_std)
        x = x[np.abs(x - median) <= 5 * spread]
        means[s], stds[s] = x.mean(), max(x.std(), min_std)
    return means, stds


def transition_matrix(states, n_states, pseudo_count=1.0):
    """Row-stochastic transition matrix counted on one state sequence (add-k smoothed)."""
    states = np.asarray(states, dtype=np.intp)
    counts = np.full((n_states, n_states), float(pseudo_count))
    np.add.at(counts, (states[:-1], states[1:]), 1.0)
    return counts / counts.sum(axis=1, keepdims=True)


def viterbi(log_emission, log_transition, log_start):
    """Most likely state path of an HMM, all inputs in log space; returns int (n,)."""
    n, k = log_emission.shape
    back = np.empty((n, k), dtype=np.intp)
    columns = np.arange(k)
    score = log_start + log_emission[0]
    for t in range(1, n):
        candidates = score[:, None] + log_transition
        back[t] = candidates.argmax(axis=0)
        score = candidates[back[t], columns] + log_emission[t]
    path = np.empty(n, dtype=np.intp)
    path[-1] = score.argmax()
    for t in range(n - 1, 0, -1):
        path[t - 1] = back[t, path[t]]
    return path


def gaussian_log_pdf(x, means, stds):
    """log N(x | mean_k, std_k^2) for every sample and state: (n, k)."""
    z = (x[:, None] - means[None, :]) / stds[None, :]
    return -0.5 * z * z - np.log(stds)[None, :] - 0.5 * np.log(2 * np.pi)


def fit_gain(current, sums, gains=np.arange(0.90, 1.201, 0.005)):
    """The gain g that puts the observed samples nearest to g x the joint sums."""
    errors = [np.abs(current[:, None] - g * sums[None, :]).min(axis=1).sum() for g in gains]
    return float(gains[int(np.argmin(errors))])


def labelled_training_data(recordings):
    """Per-device (currents, states) dicts from Recordings, states found by nilm.states."""
    from nilm import states as state_discovery  # the model's own state discovery

    currents, states = {}, {}
    for device in DEVICES:
        current = _as_current(recordings[device])
        currents[device] = current
        states[device] = np.asarray(state_discovery.label_states(device, current), dtype=np.intp)
    return currents, states


class CombinatorialOptimisation:
    """NILMTK's combinatorial optimisation: nearest sum of state means, sample by sample.

    gain: None (NILMTK, no gain), a number (multiply the sums by it) or "fit" (choose the
    gain per aggregate that best explains it, our variant).
    """

    def __init__(self, gain=None):
        self.gain = gain

    def fit(self, currents, states):
        self.state_means_ = {d: robust_state_stats(currents[d], states[d], len(STATES[d]))[0]
                             for d in DEVICES}
        self.joint_means_ = joint_sums(self.state_means_)
        return self

    def predict(self, current):
        _check_fitted(self, "joint_means_")
        current = _as_current(current)
        sums = self.joint_means_ * self.resolve_gain(current)
        nearest = np.abs(current[:, None] - sums[None, :]).argmin(axis=1)
        return JOINT_STATES[nearest]

    def resolve_gain(self, current):
        if self.gain is None:
            return 1.0
        if self.gain == "fit":
            return fit_gain(_as_current(current), self.joint_means_)
        return float(self.gain)


class FactorialHMM:
    """An HMM per device, combined into the joint state space, decoded by joint Viterbi.

    Emissions are Gaussian around the sum of the state means with the summed variances,
    as in NILMTK's FHMM; `gain` multiplies the means (None = 1, as NILMTK).
    """

    def __init__(self, gain=None, pseudo_count=1.0):
        self.gain = gain
        self.pseudo_count = pseudo_count

    def fit(self, currents, states):
        stats = {d: robust_state_stats(currents[d], states[d], len(STATES[d])) for d in DEVICES}
        self.state_means_ = {d: stats[d][0] for d in DEVICES}
        self.state_stds_ = {d: stats[d][1] for d in DEVICES}
        self.transitions_ = {d: transition_matrix(states[d], len(STATES[d]), self.pseudo_count)
                             for d in DEVICES}
        self.start_ = {d: np.bincount(states[d], minlength=len(STATES[d])) + 1.0 for d in DEVICES}
        self.joint_means_ = joint_sums(self.state_means_)
        self.joint_stds_ = np.sqrt(joint_sums({d: s ** 2 for d, s in self.state_stds_.items()}))
        joint_transition = np.ones((1, 1))
        joint_start = np.ones(1)
        for d in DEVICES:
            joint_transition = np.kron(joint_transition, self.transitions_[d])
            joint_start = np.kron(joint_start, self.start_[d] / self.start_[d].sum())
        self.log_transition_ = np.log(joint_transition)
        self.log_start_ = np.log(joint_start)
        return self

    def predict(self, current):
        _check_fitted(self, "joint_means_")
        current = _as_current(current)
        gain = 1.0 if self.gain is None else float(self.gain)
        log_emission = gaussian_log_pdf(current, gain * self.joint_means_, gain * self.joint_stds_)
        return JOINT_STATES[viterbi(log_emission, self.log_transition_, self.log_start_)]
