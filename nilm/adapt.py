"""Fitting the HMM to one series, numpy only: transitions per elapsed second, and EM of the gain
(constant or drifting), the devices' step distributions and their switching rates.

    Series(bins, seconds, gate, tree_term)   what is observed, row by row (see the fields)
    Fit(pmfs, gain, stay, drift_rows, drift_gains, noise, rival, rival_weight, elsewhere,
        emission_weight)   what EM finds
    transitions(model, stay, seconds, gate, period, elsewhere=None) -> (log matrices (m, 18, 18), which (n,))
    adapt(model, sample, rows, n, first_gain, period) -> Fit   (sample: the Series of `rows`)
    emission(model, fit, series, rows) -> float32 (n, 18) log-likelihoods of those rows

`model` is the NilmModel whose settings and trained arrays are used (step_pmfs_, stay_,
gain_prior_, switch_on_at_spike, switch_at_step, switch_elsewhere, emission_weight, pmf_smoothing,
adapt_iterations, adapt_strength, drift_block).

Stays are per SECONDS_PER_ROW (the recordings' pace, the time base of the trained stay_); a step
of dt seconds stays with stay ** (dt / SECONDS_PER_ROW).
"""
from dataclasses import dataclass, replace

import numpy as np

from nilm.devices import DEVICES, SECONDS_PER_ROW, SHAPE
from nilm.emission import (
    GAIN_RANGE,
    GAIN_STEP,
    N_JOINT,
    adapt_pmfs,
    fit_gain,
    gain_log_prior,
    joint_step_pmf,
    log_emission,
    smooth_pmfs,
    state_histogram,
)
from nilm.smooth import log_terms, posterior, switching_transitions

SENSOR = DEVICES.index("Temperature sensor")
SCREENS = [d for d in range(len(DEVICES)) if d != SENSOR]
# What a row shows of a switch (Series.gate): nothing, a level step, an inrush spike the row
# before, an inrush spike (INRUSH acts as SPIKE, and a spike is someone's switch-on: see
# transitions), a small step inside a steady stretch (nilm.features.minor_steps).
NOTHING, STEP, SPIKE, INRUSH, MINOR = 0, 1, 2, 3, 4
GATES = 5
# The sensor's switch-off shows no spike and a small step that a screen's step a few rows away
# hides from segment(); where minor_steps finds one, it switches off with this probability
# (chosen on nilm.stress's tuning seeds, see NilmModel's docstring).
SWITCH_OFF_AT_MINOR = 0.02
# EM on a long series runs on this many evenly spread blocks of rows (see adapt_rows).
ADAPT_BLOCKS = 12
ADAPT_BLOCK_ROWS = 2000
# EM's posteriors need only be good on average: short chunks (fewer Python steps) do.
EM_CHUNK = 256
EM_MARGIN = 64
# Elapsed times between rows fall in classes this ratio apart: one transition matrix per class.
DT_RATIO = 1.1
# A step longer than this many typical periods is a gap: the rows it lost may hold the sensor's
# switch-on spike, so the sensor switches on across it at its full rate.
GAP_PERIODS = 5
# EM starts from the first estimate times each of these too (screen 2's ON x 1.1 ~ screen 1's
# ON, so a first estimate may be that far off).
START_FACTORS = np.arange(0.85, 1.1501, 0.05)
# ... and from every RANGE_STEP across GAIN_RANGE (a first estimate from one screen alone may be
# further off still).
RANGE_STEP = 0.05
SCREEN_ROWS = 4000
# A drifting gain: each block of rows takes one of these factors on the series' gain (normal
# prior of this sd around it), then the gain is interpolated between the blocks.
DRIFT_FACTORS = np.arange(0.94, 1.0601, 0.015)
DRIFT_SD = 0.03
# The noise (sd in meter steps, before the meter rounds) a series may carry: the third EM round
# runs from each and keeps the likeliest, so a clean file keeps a sharp emission (0) and a noisy
# one gets one as wide as its noise (6 mA is 0.49 steps).
NOISE_GRID = (0.0, 0.15, 0.3, 0.45, 0.6, 0.8)
# Where a start at a gain more than RIVAL_GAP (relative) away from the chosen one explains the
# series almost as well (one screen alone: screen 1 at a gain g looks like screen 2 at 1.1 g), the
# confidence mixes in its posterior: weight 1 / (1 + exp(score gap / GAIN_DOUBT_NATS)), from
# RIVAL_MIN_WEIGHT up. The scores are tempered log-likelihoods of thousands of rows whose samples
# within a stay are far from independent, hence a wide scale (tuned on nilm.stress's tuning seeds).
RIVAL_GAP = 0.03
GAIN_DOUBT_NATS = 10.0
RIVAL_MIN_WEIGHT = 0.01
# The switching rates EM finds are pulled towards the trained ones by this many switches.
RATE_PRIOR_SWITCHES = 4.0
# The sensor's switches away from any sign of one run at switch_elsewhere x its rate, or at these
# (switch-on, switch-off) multiples of it where the series is likelier by more than the
# candidate's ELSEWHERE_MARGINS_NATS than under the best before it: stays of a few seconds hide
# switches in the screens' steps (nilm.stress dwell_5_20s). The last frees the switch-off alone
# (None: its full rate, whatever switch_elsewhere is), which shows no spike and only a small
# step, while a switch-on still shows its spike.
ELSEWHERE_FACTORS = ((1.0, 1.0), (5.0, 5.0), (20.0, 20.0), (1.0, None))
# The last's margin: at 5 nats it won by 6 on a held-out nilm.synth file of 30-row stays, where
# it cost 1 % of the rows; on 5-20 s stays it wins by 35 or more.
ELSEWHERE_MARGINS_NATS = (0.0, 5.0, 5.0, 20.0)
# Where both screens stay fewer rows than this on average, a stay's few samples weigh in fully
# (weight 1, not emission_weight): the tempering is for long stays whose wandering level would
# outvote the chain, and short ones need every bit of the level to tell the screens apart.
SHORT_STAY_ROWS = 10.0


@dataclass(frozen=True)
class Series:
    bins: np.ndarray  # (n,) observed meter steps (an inrush row: its neighbours', nilm.decode.meter_bins)
    seconds: np.ndarray  # (n,) seconds since the previous row
    gate: np.ndarray  # (n,) NOTHING, STEP, SPIKE, INRUSH or MINOR (nilm.decode.switch_on_gate)
    tree_term: object = 0.0  # (n, 18) float32, or a scalar added to the log emission


@dataclass(frozen=True)
class Fit:
    pmfs: np.ndarray  # (3, 3, N_STEPS) the devices' step distributions on this series
    gain: float  # the series' gain
    stay: np.ndarray  # (3,) each device's stay per SECONDS_PER_ROW on this series
    drift_rows: np.ndarray = None  # a drifting gain: drift_gains at these rows, interpolated
    drift_gains: np.ndarray = None
    noise: float = 0.0  # sd (meter steps) of the noise on the series (NOISE_GRID)
    rival: object = None  # a Fit at a rival gain the confidence weighs in (see RIVAL_GAP), or None
    rival_weight: float = 0.0
    elsewhere: tuple = None  # the sensor's (switch-on, switch-off) switch_elsewhere here (None: the model's)
    emission_weight: float = None  # the weight of the decode's emission (None: the model's)

    def gains(self, rows):
        """The gain of each of these rows: the series' gain, or the drifting one."""
        return self.gain if self.drift_rows is None else np.interp(rows, self.drift_rows, self.drift_gains)


def transitions(model, stay, seconds, gate, period, elsewhere=None):
    """(log matrices (m, 18, 18), which (n,) int: the matrix of the step into each row), the
    commonest matrix first (nilm.smooth's stack form). Nothing is banned: the sensor switches on
    into an inrush spike with switch_on_at_spike; on or off at a level step (without a spike:
    the meter missed it) with switch_at_step, elsewhere at switch_elsewhere of its rate (a
    change noise hides; `elsewhere` (on, off), default the model's for both), and across a gap
    at its full rate (a spike may be in the rows lost). Into an inrush spike's own row, a step
    that switches nothing on and leaves the sensor on (the spike is nobody's switch-on) is as
    unlikely as one that leaves an OFF sensor off: 1 - switch_on_at_spike."""
    on_elsewhere, off_elsewhere = (model.switch_elsewhere,) * 2 if elsewhere is None else elsewhere
    time_class = np.rint(np.log(np.maximum(seconds, 1e-3) / SECONDS_PER_ROW) / np.log(DT_RATIO))
    gap = seconds > GAP_PERIODS * period
    key = ((np.clip(time_class, -60, 200).astype(np.int64) + 64) * GATES + np.asarray(gate)) * 2 + gap
    keys, which, counts = np.unique(key, return_inverse=True, return_counts=True)
    order = np.argsort(-counts, kind="stable")
    rank = np.empty_like(order)
    rank[order] = np.arange(order.size)
    keys = keys[order]
    elapsed = SECONDS_PER_ROW * DT_RATIO ** (keys // (2 * GATES) - 64)
    stays = np.asarray(stay)[None, :] ** (elapsed[:, None] / SECONDS_PER_ROW)
    switching = 1 - stays[:, SENSOR]
    shown, gap = keys // 2 % GATES, keys % 2 == 1
    inrush = shown == INRUSH
    shown[inrush] = SPIKE
    # The sensor's own moves are small (~22 mA): away from any sign of one, rarely.
    elsewhere_off = np.minimum(off_elsewhere * switching, 1.0)
    switch_off = np.select([shown == STEP, gap | (shown == SPIKE), shown == MINOR],
                           [model.switch_at_step, switching, np.maximum(SWITCH_OFF_AT_MINOR, elsewhere_off)],
                           elsewhere_off)
    switch_on = np.select([shown == SPIKE, shown == STEP, gap],
                          [model.switch_on_at_spike, model.switch_at_step, switching],
                          np.minimum(on_elsewhere * switching, 1.0))
    stays[:, SENSOR] = 1 - switch_off
    matrices = switching_transitions(SHAPE, stays, SENSOR, switch_on)
    matrices[inrush] += np.log(1 - model.switch_on_at_spike) * _NO_SWITCH_ON
    return matrices, rank[which.ravel()]


def _no_switch_on():
    """(18, 18) 1 where the step from one joint state to the other switches no device on from
    OFF and the sensor stays on, else 0."""
    states = np.array(np.unravel_index(np.arange(N_JOINT), SHAPE))
    switched_on = ((states[:, :, None] == 0) & (states[:, None, :] > 0)).any(axis=0)
    sensor_stays_on = (states[SENSOR][:, None] > 0) & (states[SENSOR][None, :] > 0)
    return (~switched_on & sensor_stays_on).astype(float)


_NO_SWITCH_ON = _no_switch_on()


def log_likelihoods(model, joint_pmf, gains, series, noise=0.0, weight=None):
    # Samples of one stay are not independent draws (a level wanders within a stay): each
    # counts as emission_weight of one, or a long stay's small bias outvotes the chain.
    weight = model.emission_weight if weight is None else weight
    return np.float32(weight) * log_emission(joint_pmf, gains, series.bins, noise=noise) + series.tree_term


def emission(model, fit, series, rows):
    return log_likelihoods(model, joint_step_pmf(fit.pmfs), fit.gains(rows), series, fit.noise,
                           fit.emission_weight)


def emission_weight_of(model, stay):
    """The decode's emission weight: 1 where both screens' stays are short (SHORT_STAY_ROWS),
    else the model's emission_weight."""
    short = np.max(stay[SCREENS]) < 1 - 1 / SHORT_STAY_ROWS
    return 1.0 if short else model.emission_weight


def adapt_rows(n):
    """All rows of a short series; of a long one, ADAPT_BLOCKS evenly spread blocks: the step
    distributions and the gain are global, a sample of the series pins them."""
    if n <= ADAPT_BLOCKS * ADAPT_BLOCK_ROWS:
        return np.arange(n)
    starts = np.linspace(0, n - ADAPT_BLOCK_ROWS, ADAPT_BLOCKS).astype(np.int64)
    return (starts[:, None] + np.arange(ADAPT_BLOCK_ROWS)).ravel()


def on_grid(gains):
    """Gains rounded to GAIN_STEP and kept in GAIN_RANGE."""
    return np.unique(np.clip(np.round(np.round(np.asarray(gains) / GAIN_STEP) * GAIN_STEP, 4), *GAIN_RANGE))


def adapt(model, sample, rows, n, first_gain, period):
    """EM on (a sample of) the series: posteriors of the joint states -> the gain, the devices'
    step distributions and switching rates that explain this series best, near the trained ones.

    A gain ~10 % off can swap the screens (screen 2's ON x 1.1 ~ screen 1's ON), a local optimum
    EM does not leave; so one round starts from every start_gains (near the first estimate and
    across the whole GAIN_RANGE: the first estimate may itself be that far off), and the
    start whose second round scores the highest likelihood goes on (the likeliest one at a gain
    far from it stays as the rival the confidence weighs in: rival_of). The round after that runs
    from every noise of NOISE_GRID and keeps the likeliest (a noisy series needs an emission as
    wide as its noise, a clean one a sharp one); the switching rates are re-estimated from then
    on, then the gain may drift (drifting_gain), and last the sensor's rate of switching away from
    any sign of one is chosen (elsewhere_of)."""
    prior = smooth_pmfs(model.step_pmfs_, model.pmf_smoothing)
    stay = np.asarray(model.stay_, dtype=float)
    pmfs, gain, noise, rival, weight = prior, first_gain, 0.0, None, 0.0
    if model.adapt_iterations >= 2:
        starts = {}
        gains = start_gains(model, sample, first_gain, stay, prior, period)
        for p, g, _, _ in _em_rounds(model, [(prior, g, 0.0) for g in gains], sample, rows, stay, prior,
                                     period):
            starts.setdefault(g, p)
        second = _em_rounds(model, [(p, g, 0.0) for g, p in starts.items()], sample, rows, stay, prior,
                            period)
        pmfs, gain, _, _ = max(second, key=lambda r: r[2])
        rival, weight = rival_of(second)
    for i in range(model.adapt_iterations - 2 if model.adapt_iterations >= 2 else model.adapt_iterations):
        noises = NOISE_GRID if i == 0 else (noise,)
        best, (pmfs, gain, _, stay) = _em_rounds(model, [(pmfs, gain, z) for z in noises], sample, rows,
                                                 stay, prior, period, likeliest=True)
        noise = noises[best]
    emission_weight = emission_weight_of(model, stay)
    if rival is not None:
        rival = Fit(rival[0], rival[1], stay, noise=noise, emission_weight=emission_weight)
    fit = Fit(pmfs, gain, stay, *drifting_gain(model, sample, rows, pmfs, gain, stay, period, noise),
              noise=noise, rival=rival, rival_weight=weight, emission_weight=emission_weight)
    return replace(fit, elsewhere=elsewhere_of(model, fit, sample, rows, period))


def elsewhere_of(model, fit, sample, rows, period):
    """The sensor's (switch-on, switch-off) switch_elsewhere on this series: the model's times
    the ELSEWHERE_FACTORS under which the fitted HMM finds the sample likeliest, a later one only
    where it beats the best before it by its ELSEWHERE_MARGINS_NATS. The candidates share one pass:
    their matrices stacked."""
    base = model.switch_elsewhere
    candidates = [(base * on, 1.0 if off is None else base * off) for on, off in ELSEWHERE_FACTORS]
    found = [transitions(model, fit.stay, sample.seconds, sample.gate, period, e) for e in candidates]
    offsets = np.cumsum([0] + [m.shape[0] for m, _ in found[:-1]])
    log_emission = emission(model, fit, sample, rows)
    log_norm = log_terms(np.tile(log_emission, (len(candidates), 1)),
                         np.concatenate([m for m, _ in found]), chunk=EM_CHUNK, margin=EM_MARGIN,
                         which=np.concatenate([w + o for (_, w), o in zip(found, offsets)]))
    scores = log_norm.reshape(len(candidates), -1).sum(axis=1, dtype=np.float64)
    best = 0
    for k in range(1, len(candidates)):
        if scores[k] > scores[best] + ELSEWHERE_MARGINS_NATS[k]:
            best = k
    return candidates[best]


def rival_of(results):
    """(the likeliest of EM's results at a gain more than RIVAL_GAP away from the best one, its
    weight), or (None, 0) where there is none of weight RIVAL_MIN_WEIGHT."""
    best = max(results, key=lambda r: r[2])
    far = [r for r in results if abs(r[1] / best[1] - 1) > RIVAL_GAP]
    if not far:
        return None, 0.0
    rival = max(far, key=lambda r: r[2])
    weight = 1 / (1 + np.exp(min((best[2] - rival[2]) / GAIN_DOUBT_NATS, 700.0)))
    return (rival, float(weight)) if weight >= RIVAL_MIN_WEIGHT else (None, 0.0)


def _em_rounds(model, params, sample, rows, stay, prior, period, likeliest=False):
    """One EM round from each (pmfs, gain, noise) -> [(pmfs, gain, log posterior of the gain and
    the step distributions before the round, stay)]. The candidates are decoded side by side as
    one long series: one pass of the Python loop for all of them. likeliest: the round's update
    from the likeliest candidate alone -> (its index, its result); only these rounds use the
    switching rates (stay), the others leave them None."""
    matrices, which = transitions(model, stay, sample.seconds, sample.gate, period)
    joint_pmfs = [joint_step_pmf(pmfs) for pmfs, _, _ in params]
    prior_joint = joint_step_pmf(prior)
    emissions = np.concatenate([log_likelihoods(model, jp, g, sample, z)
                                for jp, (_, g, z) in zip(joint_pmfs, params)])
    weights, log_norm = posterior(emissions, matrices, chunk=EM_CHUNK, margin=EM_MARGIN,
                                  which=np.tile(which, len(params)))
    n = sample.bins.size
    # What EM bent the distributions by counts too: a wrong gain (one screen alone taken for the
    # other) needs them bent further.
    scores = [float(log_norm[i * n:(i + 1) * n].sum(dtype=np.float64))
              + gain_log_prior(gain, model.gain_prior_)
              - model.adapt_strength * divergence(prior, pmfs)
              for i, (pmfs, gain, _) in enumerate(params)]
    best = max(range(len(params)), key=scores.__getitem__)
    out = []
    for i in [best] if likeliest else range(len(params)):
        pmfs, _, noise = params[i]
        part = weights[i * n:(i + 1) * n]
        counts = state_histogram(sample.bins, part)
        # The gain is the scale against the trained distributions: fitted against the adapted
        # ones, the gain and the distributions could trade places and wander together.
        new_gain = fit_gain(counts, prior_joint, model.gain_prior_, noise=noise)
        rates = switching_stay(part, rows, sample.seconds, model.stay_) if likeliest else None
        pmfs = adapt_pmfs(counts, pmfs, new_gain, prior, model.adapt_strength, noise)
        out.append((pmfs, new_gain, scores[i], rates))
    return (best, out[0]) if likeliest else out


def divergence(prior, pmfs):
    """KL(prior || pmfs) summed over the devices' states: how far adapted step distributions
    have bent from the trained ones (the log of adapt_pmfs' Dirichlet prior, up to a constant,
    is -strength x this)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(prior > 0, prior * np.log(prior / np.maximum(pmfs, 1e-300)), 0.0)
    return float(terms.sum())


def switching_stay(weights, rows, seconds, trained_stay):
    """Each device's stay per SECONDS_PER_ROW from the expected number of switches between
    consecutive rows (1 - the chance both rows are in the same state) over the time they span,
    pulled towards the trained stay by RATE_PRIOR_SWITCHES."""
    follows = np.flatnonzero(np.diff(rows) == 1)
    marginals = weights.reshape((-1,) + SHAPE)
    stay = np.empty(len(SHAPE))
    exposure = float(seconds[follows + 1].sum())
    for d in range(len(SHAPE)):
        m = marginals.sum(axis=tuple(a + 1 for a in range(len(SHAPE)) if a != d))
        switches = float((1 - (m[follows] * m[follows + 1]).sum(axis=1)).sum())
        trained_rate = -np.log(trained_stay[d]) / SECONDS_PER_ROW
        rate = (switches + RATE_PRIOR_SWITCHES) / (exposure + RATE_PRIOR_SWITCHES / trained_rate)
        stay[d] = np.exp(-rate * SECONDS_PER_ROW)
    return stay


def drifting_gain(model, sample, rows, pmfs, gain, stay, period, noise=0.0):
    """The gain of every row: each block of drift_block sampled rows takes the gain in gain x
    DRIFT_FACTORS under which the HMM finds the block likeliest (the chain weighs a switch
    against a gain change, as fitting the gain to decoded states cannot), with a normal prior
    (DRIFT_SD) around the series' gain; a median of three blocks, interpolated between the
    blocks' centres. -> (rows, gains) of the blocks' centres; (None, None) for fewer than two."""
    n_blocks = rows.size // model.drift_block if model.drift_block else 0
    if n_blocks < 2:
        return None, None
    matrices, which = transitions(model, stay, sample.seconds, sample.gate, period)
    joint_pmf = joint_step_pmf(pmfs)
    candidates = gain * DRIFT_FACTORS
    emissions = np.concatenate([log_likelihoods(model, joint_pmf, g, sample, noise) for g in candidates])
    log_norm = log_terms(emissions, matrices, chunk=EM_CHUNK, margin=EM_MARGIN,
                         which=np.tile(which, candidates.size))
    blocks = np.array_split(np.arange(rows.size), n_blocks)
    starts = [b[0] for b in blocks]
    scores = (np.add.reduceat(log_norm.reshape(candidates.size, -1).astype(np.float64), starts, axis=1)
              - 0.5 * ((candidates[:, None] - gain) / DRIFT_SD) ** 2)
    gains = candidates[scores.argmax(axis=0)]
    if gains.size >= 3:
        gains = np.median(np.stack([np.r_[gains[0], gains[:-1]], gains, np.r_[gains[1:], gains[-1]]]), axis=0)
    return np.array([rows[b].mean() for b in blocks]), gains



def start_gains(model, sample, first_gain, stay, prior, period):
    """EM's starting gains: START_FACTORS around the first estimate, and the likeliest of the
    gains every RANGE_STEP across GAIN_RANGE that lie further away (scored on the first
    SCREEN_ROWS rows of the sample with the trained step distributions: cheap, and enough to
    tell one screen alone from the other)."""
    near = on_grid(first_gain * START_FACTORS)
    far = on_grid(np.arange(GAIN_RANGE[0], GAIN_RANGE[1] + 1e-9, RANGE_STEP))
    far = far[np.abs(far[:, None] - near[None, :]).min(axis=1) > RANGE_STEP / 2]
    if far.size == 0:
        return near
    head = Series(*[np.asarray(v)[:SCREEN_ROWS] if np.ndim(v) else v for v in
                    (sample.bins, sample.seconds, sample.gate, sample.tree_term)])
    matrices, which = transitions(model, stay, head.seconds, head.gate, period)
    joint_pmf = joint_step_pmf(prior)
    emissions = np.concatenate([log_likelihoods(model, joint_pmf, g, head) for g in far])
    log_norm = log_terms(emissions, matrices, chunk=EM_CHUNK, margin=EM_MARGIN,
                         which=np.tile(which, far.size))
    scores = (log_norm.reshape(far.size, -1).sum(axis=1, dtype=np.float64)
              + gain_log_prior(far, model.gain_prior_))
    return np.r_[near, far[np.argmax(scores)]]
