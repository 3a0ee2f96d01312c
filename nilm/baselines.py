"""Baselines the NILM model is judged against (see nilm.evaluate).

- `CombinatorialOptimisation`: NILMTK's CO. Per sample, the joint state whose sum of state
  means is nearest the observed current. NILMTK has no gain; `gain=None` keeps it faithful,
  `gain="fit"` is our clearly labelled variant that fits one gain per aggregate.
- `FactorialHMM`: one HMM per device (Gaussian emission per state, transitions counted on
  the device's state sequence), combined into the 18 joint states; joint Viterbi.
- `Oracle`: knows the generator (nilm.synth with the same source, gain and dwell as the
  test data). Its emission distribution and transition matrix are counted on a long run of
  that same generator (another seed); it decodes each sample by the joint posterior
  (forward-backward, what per-sample accuracy rewards; joint Viterbi on request): the ceiling.

All are scikit-learn style; `predict(current)` returns an int array (n, 3) of state
indices, columns in nilm.devices.DEVICES order.

Fitting CO and the FHMM takes per-device training data as two dicts keyed by device:
`currents[device]` (1-D max current, mA) and `states[device]` (1-D int state index).
`labelled_training_data(recordings)` builds them from Recordings with nilm.states.
"""
import itertools

import numpy as np

from nilm.devices import DEVICES, STATES
from nilm.model import NotFittedError, joint_levels
from nilm.smooth import viterbi
from nilm.states import QUANTUM_MA

# Every joint state, one row per state, columns in DEVICES order; the last device varies
# fastest, which matches np.kron of the per-device transition matrices.
JOINT_STATES = np.array(list(itertools.product(*(range(len(STATES[d])) for d in DEVICES))))

# The oracle's hidden states: the sensor has a third value, "switching on" (see hidden_index).
SENSOR_COLUMN = DEVICES.index("Temperature sensor")
HIDDEN_SHAPE = tuple(len(STATES[d]) + (d == DEVICES[SENSOR_COLUMN]) for d in DEVICES)

_TINY = 1e-300


def _check_fitted(estimator, attribute):
    if not hasattr(estimator, attribute):
        raise NotFittedError(f"{type(estimator).__name__} is not fitted yet; call fit first")


def _as_current(current):
    """A 1-D float array of max current from an array or a Recording."""
    current = getattr(current, "max_current", current)
    current = np.asarray(current, dtype=float)
    if current.ndim != 1:
        raise ValueError("current must be one-dimensional")
    return current


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


def viterbi_with_start(log_emission, log_transition, log_start):
    """nilm.smooth's joint Viterbi with a start distribution, exact (one chunk: the baselines
    are judged as they are, not as a fast approximation of them)."""
    log_emission = np.array(log_emission, dtype=float)
    log_emission[0] += log_start
    return viterbi(log_emission, log_transition, chunk=len(log_emission), margin=0)


def posterior_decode(log_emission, log_transition, log_start):
    """Most probable state of each sample (scaled forward-backward); returns int (n,).

    Maximises the expected number of right samples, which is what accuracy counts; Viterbi
    maximises the chance of the whole path being right.
    """
    n, k = log_emission.shape
    emission = np.exp(log_emission - log_emission.max(axis=1, keepdims=True))
    transition, start = np.exp(log_transition), np.exp(log_start)
    forward = np.empty((n, k))
    alpha = start * emission[0]
    forward[0] = alpha / alpha.sum()
    for t in range(1, n):
        alpha = (forward[t - 1] @ transition) * emission[t]
        forward[t] = alpha / max(alpha.sum(), _TINY)
    posterior = np.empty((n, k))
    beta = np.ones(k)
    posterior[-1] = forward[-1]
    for t in range(n - 1, 0, -1):
        beta = transition @ (emission[t] * beta)
        beta /= max(beta.sum(), _TINY)
        posterior[t - 1] = forward[t - 1] * beta
    return posterior.argmax(axis=1)


def gaussian_log_pdf(x, means, stds):
    """log N(x | mean_k, std_k^2) for every sample and state: (n, k)."""
    z = (x[:, None] - means[None, :]) / stds[None, :]
    return -0.5 * z * z - np.log(stds)[None, :] - 0.5 * np.log(2 * np.pi)


GAIN_GRID = np.arange(0.90, 1.201, 0.005)


def fit_gain(current, sums, gains=GAIN_GRID):
    """The gain g that puts the observed samples nearest to g x the joint sums."""
    errors = [np.abs(current[:, None] - g * sums[None, :]).min(axis=1).sum() for g in gains]
    return float(gains[int(np.argmin(errors))])


def resolve_gain(gain, current, joint_means):
    """None -> 1 (NILMTK), "fit" -> fitted on this aggregate, else the number given."""
    if gain is None:
        return 1.0
    if gain == "fit":
        return fit_gain(current, joint_means)
    return float(gain)


def labelled_training_data(recordings, random_state=0):
    """Per-device (currents, states) dicts from Recordings, states found by nilm.states."""
    from nilm.states import fit_states

    fitted = fit_states(recordings, random_state)
    currents = {d: _as_current(recordings[d]) for d in DEVICES}
    return currents, {d: np.asarray(fitted[d].labels, dtype=np.intp) for d in DEVICES}


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
        self.joint_means_ = joint_levels(self.state_means_)
        return self

    def predict(self, current):
        _check_fitted(self, "joint_means_")
        current = _as_current(current)
        sums = self.joint_means_ * resolve_gain(self.gain, current, self.joint_means_)
        nearest = np.abs(current[:, None] - sums[None, :]).argmin(axis=1)
        return JOINT_STATES[nearest]


class FactorialHMM:
    """An HMM per device, combined into the joint state space, decoded by joint Viterbi.

    Emissions are Gaussian around the sum of the state means with the summed variances,
    as in NILMTK's FHMM; `gain` as for CombinatorialOptimisation (None = 1, as NILMTK).
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
        self.joint_means_ = joint_levels(self.state_means_)
        self.joint_stds_ = np.sqrt(joint_levels({d: s ** 2 for d, s in self.state_stds_.items()}))
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
        gain = resolve_gain(self.gain, current, self.joint_means_)
        log_emission = gaussian_log_pdf(current, gain * self.joint_means_, gain * self.joint_stds_)
        return JOINT_STATES[viterbi_with_start(log_emission, self.log_transition_, self.log_start_)]


class Oracle:
    """Knows the generator: the same nilm.synth source, gain and dwell as the test data.

    fit() draws n_rows from that generator (another seed) and counts the transition matrix
    and, per hidden state, the distribution of the quantised observed current (large spikes
    in one overflow bin); predict() decodes with those (decode="posterior" or "viterbi").
    The hidden state is the joint state with the sensor's switch-on sample apart, where the
    generator adds the inrush. With exponential stays and per-sample draws this is, up to
    counting noise and the generator's minimum stay, the generator's own likelihood.
    """

    def __init__(self, source, gain, dwell=1.0, decode="posterior", n_rows=200_000, max_bin=64,
                 random_state=0):
        self.source = source
        self.gain = gain
        self.dwell = dwell
        self.decode = decode
        self.n_rows = n_rows
        self.max_bin = max_bin
        self.random_state = random_state

    def fit(self, X=None, y=None):
        from nilm.synth import generate

        run = generate(self.source, self.n_rows, random_state=self.random_state,
                       gain=self.gain, dwell=self.dwell)
        hidden = hidden_index(run.states)
        k = int(np.prod(HIDDEN_SHAPE))
        transitions = np.full((k, k), 0.1)
        np.add.at(transitions, (hidden[:-1], hidden[1:]), 1.0)
        emissions = np.full((k, self.max_bin + 1), 0.01)
        np.add.at(emissions, (hidden, self._bins(run.current)), 1.0)
        self.log_transition_ = np.log(transitions / transitions.sum(axis=1, keepdims=True))
        self.log_emission_ = np.log(emissions / emissions.sum(axis=1, keepdims=True))
        occupancy = np.bincount(hidden, minlength=k) + 1.0
        self.log_start_ = np.log(occupancy / occupancy.sum())
        return self

    def _bins(self, current):
        return np.clip(np.rint(current / QUANTUM_MA), 0, self.max_bin).astype(np.intp)

    def predict(self, current):
        _check_fitted(self, "log_emission_")
        log_emission = self.log_emission_[:, self._bins(_as_current(current))].T
        decode = posterior_decode if self.decode == "posterior" else viterbi_with_start
        hidden = np.column_stack(np.unravel_index(
            decode(log_emission, self.log_transition_, self.log_start_), HIDDEN_SHAPE))
        hidden[:, SENSOR_COLUMN] = np.minimum(hidden[:, SENSOR_COLUMN], 1)
        return hidden


def hidden_index(states):
    """The oracle's hidden state: the joint state with the sensor's switch-on sample told
    apart from the rest of its ON stay, since the generator puts the inrush spike there."""
    hidden = np.array(states, dtype=np.intp)
    switch_on = np.flatnonzero(np.diff(hidden[:, SENSOR_COLUMN]) > 0) + 1
    hidden[switch_on, SENSOR_COLUMN] = 2
    return np.ravel_multi_index(hidden.T, HIDDEN_SHAPE)
