"""The near-ceiling decoder for nilm.stress: what a decoder that knows the generator can do.

It is to nilm.stress what nilm.baselines.Oracle is to nilm.synth: the practical ceiling each
stress scenario's model score is compared with. It knows, from the generator itself:
- every device state's distribution of recorded current (the segments nilm.stress draws from),
- the recorded switch-on spikes, their scaling, and the scenario's chance that a switch-on shows one,
- the scenario's dwell law (as the hazard per second of its mean stay) and its noise,
- the meter's step, and that rows carry timestamps (transitions over the elapsed seconds),
- the gain law: the scenario's range, constant or drifting linearly by the scenario's share.
It does not know what the generator draws per file: the gain (its posterior over the range, from
the likelihood), the drift's direction, and which devices switch at all (an "only screen 1" file
is decoded with every device free to switch, as any real file must be).

Hidden state per device: its state, plus for screens and sensor the first row after switching on
from OFF (where a spike may appear). Decoding: forward-backward, each row's most probable joint
state. A hazard per second is not the generator's bounded dwell law, hence "near" ceiling.

    NearCeiling(scenario, directory=None).predict(case) -> (n, 3) int states, DEVICES order
    .gain_ after predict: the gain (of the first row) it settled on
"""
import math
from functools import lru_cache
from itertools import product

import numpy as np

from nilm import stress
from nilm.devices import DEVICES, SHAPE

COARSE_STEP = 0.01
FINE_STEP = 0.0025
# Blur (mA) on top of the scenario's noise: a candidate gain is never exactly the drawn one.
BLUR_MA = 1.5
# Every state can show anything with this small probability: a decoder must survive surprises.
FLOOR = 1e-9
# The standard normal CDF, elementwise (a few thousand values per table: no need for scipy).
_erf = np.frompyfunc(math.erf, 1, 1)


def ndtr(z):
    return 0.5 * (1.0 + _erf(np.asarray(z) / math.sqrt(2)).astype(float))


# The posterior is averaged over up to MIXED gains, each holding at least MIN_WEIGHT of the
# likelihood: where two gains explain a file, neither is taken for certain.
MIXED = 4
MIN_WEIGHT = 0.01
# Candidates decoded side by side in one forward pass.
BATCH = 16
# Rows whose elapsed seconds round to the same tenth share one transition matrix.
DT_RESOLUTION_S = 0.1


def _device_hidden(n_states):
    """Hidden states of one device: its states, then a 'first row ON' twin of each state but OFF."""
    return list(range(n_states)) + list(range(1, n_states))


def _stay_move(n, rate, dt):
    """Probability of being in the same / in one given other state after dt s (uniform jumps)."""
    stay = 1 / n + (1 - 1 / n) * np.exp(-n / (n - 1) * rate * dt)
    return stay, (1 - stay) / (n - 1)


def device_transitions(n, rate, dt):
    """(h, h) transition matrix of one device's hidden states over dt seconds."""
    base = _device_hidden(n)
    h = len(base)
    stay, move = _stay_move(n, rate, dt)
    out = np.zeros((h, h))
    for a in range(h):
        i = base[a]
        for j in range(n):
            if j == i:
                out[a, j] = stay
            elif i == 0 and j > 0:  # a switch-on lands on the first-row twin
                out[a, n - 1 + j] = move
            else:
                out[a, j] = move
    return out


def _bin_pmf(values, size):
    pmf = np.bincount(np.rint(np.asarray(values) / stress.METER_STEP_MA).astype(int), minlength=size)[:size]
    return pmf / pmf.sum()


def _spike_pmf(spikes, size):
    """Meter-step distribution of a recorded spike times uniform(SPIKE_SCALE)."""
    grid = np.concatenate([np.linspace(*(np.array(stress.SPIKE_SCALE) * v), 400) for v in spikes])
    return _bin_pmf(grid, size)


@lru_cache(maxsize=32)
def _hidden_pmfs(scenario_name, directory):
    """(H, S) meter-step distribution of the plain sum of the devices, per joint hidden state, and
    (H, 3) the device states of each hidden state."""
    scenario = stress.SCENARIOS[scenario_name]
    segments = stress.load_segments(directory)
    top = max(float(np.max(s.spikes, initial=0.0)) for s in segments.values())
    size = int(top * stress.SPIKE_SCALE[1] / stress.METER_STEP_MA) + 2
    per_device, maps = [], []
    for j, device in enumerate(DEVICES):
        seg = segments[device]
        levels = [_bin_pmf(np.concatenate(blocks), size) for blocks in seg.blocks]
        p = scenario.sensor_spike if j == stress.SENSOR else scenario.screen_spike
        p = float(np.clip(p, 0.02, 0.98))  # a spike's row may be dropped, a glitch may look like one
        spike = _spike_pmf(seg.spikes, size) if seg.spikes.size else levels[0]
        first = [p * spike + (1 - p) * levels[k] for k in range(1, len(levels))]
        per_device.append(levels + first)
        maps.append(_device_hidden(len(levels)))
    pmfs, states = [], []
    for combo in product(*[range(len(d)) for d in per_device]):
        total = per_device[0][combo[0]]
        for j in (1, 2):
            total = np.convolve(total, per_device[j][combo[j]])[:size * 2]
        pmfs.append(total)
        states.append([maps[j][combo[j]] for j in range(3)])
    pmfs = np.array(pmfs)
    return pmfs[:, :np.flatnonzero(pmfs.any(axis=0))[-1] + 1], np.array(states)


class NearCeiling:
    """See the module docstring. scikit-learn style: fit() is optional, predict(case)."""

    def __init__(self, scenario, directory=None):
        self.scenario = scenario
        self.directory = directory

    def fit(self, X=None, y=None):
        if self.scenario not in stress.SCENARIOS:
            raise KeyError(f"unknown stress scenario {self.scenario!r}; known: {', '.join(stress.SCENARIOS)}")
        law = stress.SCENARIOS[self.scenario]
        self.pmfs_, self.hidden_states_ = _hidden_pmfs(self.scenario, self.directory)
        lo, hi = law.dwell_s
        self.rate_ = np.log(hi / lo) / (hi - lo)  # 1 / mean of the log-uniform stay
        self.sigma_ = float(np.hypot(law.noise_sd, BLUR_MA))
        self.drift_ = law.drift
        self.gain_range_ = law.gain
        return self

    def _transitions(self, timestamp):
        """(distinct matrices (m, H, H), index of each row's matrix (n - 1,))."""
        dt = np.round(np.diff(timestamp) / DT_RESOLUTION_S).astype(int)
        keys, index = np.unique(dt, return_inverse=True)
        mats = []
        for key in keys:
            per = [device_transitions(n, self.rate_, key * DT_RESOLUTION_S) for n in (3, 3, 2)]
            mats.append(np.kron(np.kron(per[0], per[1]), per[2]))
        return np.array(mats), index

    def _tables(self, bins):
        """table(gain) -> (K, H) likelihood of each observed distinct step under each hidden state."""
        observed, index = np.unique(bins, return_inverse=True)
        q, by_sum = stress.METER_STEP_MA, self.pmfs_.T
        cache = {}

        def table(gain):
            key = round(gain / FINE_STEP)
            if key not in cache:
                g = key * FINE_STEP
                # Only sums within a few sigma of an observed step can have made it.
                reach = int(np.ceil((0.5 + 6 * self.sigma_ / q) / g)) + 1
                sums = np.rint(observed / g).astype(int)[:, None] + np.arange(-reach, reach + 1)
                valid = (sums >= 0) & (sums < by_sum.shape[0])
                sums = np.clip(sums, 0, by_sum.shape[0] - 1)
                mean = g * sums * q
                obs = observed[:, None] * q
                kernel = (ndtr((obs + q / 2 - mean) / self.sigma_)
                          - ndtr((obs - q / 2 - mean) / self.sigma_)) * valid
                cache[key] = np.einsum("ko,koh->kh", kernel, by_sum[sums]) + FLOOR
            return cache[key]

        return table, index

    def _gains(self, start, timestamp, direction):
        """Per-row gain of a candidate: a start gain, drifting linearly if the law says so."""
        span = max(timestamp[-1] - timestamp[0], 1e-9)
        return start * (1 + direction * self.drift_ * (timestamp - timestamp[0]) / span)

    def _emission(self, gains, table, index):
        keys = np.round(gains / FINE_STEP)
        out = np.empty((gains.size, self.pmfs_.shape[0]))
        for key in np.unique(keys):
            rows = keys == key
            out[rows] = table(key * FINE_STEP)[index[rows]]
        return out

    def _log_likelihoods(self, candidates, data):
        """Forward log-likelihood of each (start gain, direction), decoded side by side."""
        timestamp, table, index, mats, which = data
        out = []
        for i in range(0, len(candidates), BATCH):
            batch = candidates[i:i + BATCH]
            emission = np.stack([self._emission(self._gains(g, timestamp, d), table, index)
                                 for g, d in batch])
            alpha = emission[:, 0] / emission.shape[2]
            total = np.log(alpha.sum(axis=1))
            alpha /= alpha.sum(axis=1, keepdims=True)
            for t in range(1, emission.shape[1]):
                alpha = (alpha @ mats[which[t - 1]]) * emission[:, t]
                norm = alpha.sum(axis=1)
                total += np.log(norm)
                alpha /= norm[:, None]
            out.extend(total.tolist())
        return np.array(out)

    def _search(self, data):
        """[(weight, (start gain, direction))] of the likeliest candidates: a coarse grid over the
        scenario's gain range, then the best two peaks refined (a screen alone fits two gains
        about 10 % apart); weights are their posterior shares under a flat prior."""
        directions = (-1.0, 1.0) if self.drift_ else (0.0,)
        lo, hi = self.gain_range_
        grid = np.unique(np.r_[np.arange(lo, hi, COARSE_STEP), hi])
        coarse = [(g, d) for d in directions for g in grid]
        scores = self._log_likelihoods(coarse, data)
        best = sorted(range(len(coarse)), key=lambda k: -scores[k])
        peaks = [best[0]] + [k for k in best[1:] if abs(coarse[k][0] - coarse[best[0]][0]) > 0.03][:1]
        fine = sorted({(float(np.clip(coarse[k][0] + step, lo, hi)), coarse[k][1]) for k in peaks
                       for step in np.arange(-COARSE_STEP, COARSE_STEP + 1e-9, FINE_STEP)})
        fine_scores = self._log_likelihoods(fine, data)
        weights = np.exp(fine_scores - fine_scores.max())
        weights /= weights.sum()
        top = np.argsort(-weights)[:MIXED]
        return [(weights[k], fine[k]) for k in top if weights[k] >= MIN_WEIGHT]

    def predict(self, case):
        """(n, 3) most probable state of every device per row, for a Case or Recording: the
        posterior of the joint state, averaged over the likeliest gains."""
        if not hasattr(self, "pmfs_"):
            self.fit()
        timestamp = np.asarray(case.timestamp, dtype=float)
        bins = np.rint(np.asarray(case.max_current, dtype=float) / stress.METER_STEP_MA).astype(int)
        table, index = self._tables(bins)
        mats, which = self._transitions(timestamp)
        candidates = self._search((timestamp, table, index, mats, which))
        self.gain_ = float(candidates[0][1][0])
        joint = np.ravel_multi_index(self.hidden_states_.T, SHAPE)
        to_joint = np.eye(int(np.prod(SHAPE)))[joint]  # (H, 18): hidden state -> joint state
        posterior = sum(w * forward_backward(self._emission(self._gains(g, timestamp, d), table, index),
                                             mats, which) @ to_joint
                        for w, (g, d) in candidates)
        return np.column_stack(np.unravel_index(posterior.argmax(axis=1), SHAPE)).astype(int)


def forward_backward(emission, mats, which):
    """(n, H) posterior of the hidden state per row (uniform start), scaled."""
    n, h = emission.shape
    alpha = np.empty((n, h))
    alpha[0] = emission[0] / emission[0].sum()
    for t in range(1, n):
        a = (alpha[t - 1] @ mats[which[t - 1]]) * emission[t]
        alpha[t] = a / a.sum()
    beta = np.ones(h)
    post = np.empty((n, h))
    post[-1] = alpha[-1]
    for t in range(n - 2, -1, -1):
        beta = mats[which[t]] @ (emission[t + 1] * beta)
        beta /= beta.sum()
        p = alpha[t] * beta
        post[t] = p / p.sum()
    return post
