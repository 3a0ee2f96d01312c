"""How the aggregate's current arises from the joint state, in meter steps (numpy only).

    step_pmfs(pools) -> (devices, 3, N_STEPS): P(a device in a state draws k steps)
    smooth_pmfs(pmfs, share) -> the same with a share moved to the neighbouring steps
    joint_step_pmf(pmfs) -> (18, 3 * N_STEPS): P(the three devices sum to s steps | joint state)
    log_emission_table(joint_pmf, gain, noise=0) -> (N_BINS, 18): log P(observed step | joint state, gain)
    rounding_kernel(gains, n_sums, noise=0) -> P(observed step | sum of the devices' steps, gain)
    normal_cdf(z) -> the standard normal CDF (numpy only: labelling imports no scipy)
    observed_bins(current) -> int meter steps of every sample, within the emission's bins
    state_histogram(bins, weights) -> (N_BINS, 18) weighted counts of the observed steps
    fit_gain(histogram, joint_pmf, centre, grid, sd, noise=0) -> the gain that best explains those counts
    GAIN_RANGE, GAIN_GRID, GAIN_CENTRE, GAIN_PRIOR_SD: the one gain range every estimate uses
    adapt_pmfs(histogram, pmfs, gain, prior, strength, noise=0) -> one EM update of the step distributions

`noise` everywhere is the sd (in meter steps) of noise the series adds to the aggregate before
the meter rounds it (nilm.adapt estimates it per series): 0 keeps the sharp emission clean
files need, a noisy file gets an emission as wide as its noise.

The recordings are quantised to QUANTUM_MA, so each device in each state draws from a handful of
step counts; the aggregate is round(gain * (sum of the three draws)) steps, as nilm.synth makes it
and as the meter measures it (up to a small dither, rounding_kernel: where gain x sum lands on a
half step, the meter may show either neighbour). The likelihood of every joint state is therefore
exact up to how well the step distributions are known, and those shift between parts of a
recording (screen 2's IDLE is 2 or 3 steps, in proportions that drift). adapt_pmfs re-estimates
them on the very series being labelled (expected counts of each device's draw given the decoded
states), pulled towards the training distributions by `strength` pseudo-samples, so a shifted
level is absorbed.

The tables and kernels are memoised by their arguments (read-only arrays): EM asks for the same
ones round after round (fit_gain's grid under the trained distributions, a start's gain).
"""
from functools import lru_cache

import numpy as np

from nilm.devices import SHAPE
from nilm.states import QUANTUM_MA

N_JOINT = int(np.prod(SHAPE))
N_STEPS = 32  # per device: the screens' ON is ~17 steps, the sensor's ON 1-5
N_BINS = 96  # observed steps: every sum of three devices times the largest gain
# A share of the pure generator likelihood that any step is seen in any state: real recordings
# have levels no combination explains, and they must not break the decode.
EMISSION_FLOOR = 1e-4
# The gains an aggregate may have (aggregate / plain sum of the devices): every estimate (the
# first one from segment levels, EM's re-fit, the prior) searches this one range.
GAIN_RANGE = (0.7, 1.4)
GAIN_STEP = 0.0025
GAIN_GRID = np.round(np.arange(GAIN_RANGE[0], GAIN_RANGE[1] + GAIN_STEP / 2, GAIN_STEP), 4)
# The prior: centred in the range, which spans +-3 sd (the real aggregate sits at ~1.08).
GAIN_CENTRE = float(np.mean(GAIN_RANGE))
GAIN_PRIOR_SD = (GAIN_RANGE[1] - GAIN_RANGE[0]) / 6
# fit_gain searches every COARSE-th gain of its grid, then the gains around the best.
COARSE = 4
# Half-width (in the devices' steps) over which a recorded step count is spread before the gain
# and the meter's rounding (see rounding_kernel); chosen on nilm.stress's tuning seeds.
DITHER = 0.03
# How many tables and kernels the memo keeps (a table of every coarse gain is ~0.5 MB).
MEMO_SIZE = 32


def _steps(current):
    return np.rint(np.asarray(current, dtype=float) / QUANTUM_MA).astype(np.int64)


def step_pmfs(pools):
    """Per device and state, the share of each step count in its pool of recorded currents."""
    pmfs = np.zeros((len(SHAPE), max(SHAPE), N_STEPS))
    for d, states in enumerate(pools):
        for k, pool in enumerate(states):
            counts = np.bincount(np.clip(_steps(pool), 0, N_STEPS - 1), minlength=N_STEPS)
            pmfs[d, k] = counts / max(counts.sum(), 1)
    return pmfs


def smooth_pmfs(pmfs, share):
    """Move `share` of every step's mass to each neighbour: a level seen at 2 and 3 steps in
    one part of a recording may reach 4 in another. Unused (all-zero) states stay zero."""
    out = pmfs * 1.0
    out[..., 1:] += share * pmfs[..., :-1]
    out[..., :-1] += share * pmfs[..., 1:]
    total = out.sum(axis=-1, keepdims=True)
    return np.divide(out, total, out=np.zeros_like(out), where=total > 0)


def joint_step_pmf(pmfs):
    """P(sum of the devices' steps = s | joint state), rows in np.ravel_multi_index(SHAPE) order."""
    out = np.zeros((N_JOINT, len(SHAPE) * N_STEPS))
    for j in range(N_JOINT):
        total = np.ones(1)
        for d, k in enumerate(np.unravel_index(j, SHAPE)):
            total = np.convolve(total, pmfs[d, k])
        out[j, :total.size] = total[:out.shape[1]]
    return out


def _cdf_and_pdf(z):
    """The standard normal CDF (Abramowitz & Stegun 7.1.26, error < 1.5e-7) and density, sharing
    one exp: the noisy tables are built for every gain EM tries."""
    z = np.asarray(z, dtype=float)
    t = 1 / (1 + 0.3275911 / np.sqrt(2) * np.abs(z))
    poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))))
    density = np.exp(-0.5 * z * z)
    return 0.5 * (1 + np.sign(z) * (1 - poly * density)), density / np.sqrt(2 * np.pi)


def normal_cdf(z):
    """Standard normal CDF (numpy only: labelling imports no scipy)."""
    return _cdf_and_pdf(z)[0]


def _uniform_normal_cdf(x, half, sd):
    """P(U + N <= x) for U uniform on +-half and N normal (0, sd): the mean over U of the normal
    CDF, through its antiderivative y * Phi(y / sd) + sd * phi(y / sd)."""
    def integral(y):
        cdf, pdf = _cdf_and_pdf(y / sd)
        return y * cdf + sd * pdf

    return (integral(x + half) - integral(x - half)) / (2 * half)


def rounding_kernel(gains, n_sums, noise=0.0):
    """P(observed step b | the devices' steps sum to s, gain g): float (gains, n_sums, N_BINS).

    A recorded step count stands for any current within half a step of it, so g x s is spread
    evenly over g x (s +- DITHER) before the meter rounds it. Exact rounding of g x s (no spread)
    would make a gain such as 1.25 unable to show half the steps (7.5 -> 8, never 7), while the
    real aggregate shows them all. Noise of sd `noise` steps adds a normal spread on top. The
    first and last bins take everything beyond them."""
    gains = np.atleast_1d(np.asarray(gains, dtype=float))
    return _memo_kernel(gains.tobytes(), int(n_sums), float(noise))


@lru_cache(maxsize=MEMO_SIZE)
def _memo_kernel(gains, n_sums, noise):
    return _read_only(_kernel(np.frombuffer(gains), n_sums, noise))


def _kernel(gains, n_sums, noise):
    centre = np.multiply.outer(gains, np.arange(n_sums))[..., None]
    half = np.maximum(gains * DITHER, 1e-6)[:, None, None]
    edges = np.arange(N_BINS + 1) - 0.5
    if noise > 0:
        cdf = _uniform_normal_cdf(edges - centre, half, noise)
    else:
        cdf = np.clip((edges - (centre - half)) / (2 * half), 0.0, 1.0)
    cdf[..., 0], cdf[..., -1] = 0.0, 1.0
    return np.diff(cdf, axis=-1)


def _log_tables(joint_pmf, gains, floor=EMISSION_FLOOR, noise=0.0):
    """log P(observed step | joint state, gain) for every gain: float32 (gains, N_BINS, 18)."""
    joint_pmf = np.ascontiguousarray(joint_pmf, dtype=float)
    gains = np.atleast_1d(np.asarray(gains, dtype=float))
    return _memo_tables(joint_pmf.tobytes(), joint_pmf.shape, gains.tobytes(), float(floor), float(noise))


@lru_cache(maxsize=MEMO_SIZE)
def _memo_tables(joint_pmf, shape, gains, floor, noise):
    joint_pmf = np.frombuffer(joint_pmf).reshape(shape)
    # Sums no joint state reaches need no row of the kernel.
    used = int(np.flatnonzero(joint_pmf.any(axis=0))[-1]) + 1 if joint_pmf.any() else 1
    # The kernel of many gains is large and not asked for again once its tables are kept.
    kernel = _kernel(np.frombuffer(gains), used, noise)
    tables = np.matmul(joint_pmf[:, :used], kernel).transpose(0, 2, 1)
    return _read_only(np.log((tables + floor) / (1 + N_BINS * floor)).astype(np.float32))


def _read_only(array):
    array.flags.writeable = False  # shared by every caller of the memo
    return array


def log_emission_table(joint_pmf, gain, floor=EMISSION_FLOOR, noise=0.0):
    """log P(observed step | joint state, gain), float32 (N_BINS, 18)."""
    return _log_tables(joint_pmf, gain, floor, noise)[0]


def log_emission(joint_pmf, gains, bins, floor=EMISSION_FLOOR, noise=0.0):
    """log P(each row's observed step | joint state) under each row's own gain: float32 (n, 18).
    gains: one number, or one per row (a drifting gain; rounded to GAIN_STEP)."""
    if np.ndim(gains) == 0:
        return log_emission_table(joint_pmf, gains, floor, noise)[bins]
    steps = np.rint(np.asarray(gains) / GAIN_STEP).astype(np.int64)
    unique, index = np.unique(steps, return_inverse=True)
    return _log_tables(joint_pmf, unique * GAIN_STEP, floor, noise)[index.ravel(), bins]


def observed_bins(current):
    """Step count of every sample, within 0 .. N_BINS - 1."""
    return np.clip(_steps(current), 0, N_BINS - 1)


def state_histogram(bins, weights):
    """Counts of each observed step per joint state; weights (n, 18) posteriors or one-hot."""
    return np.stack([np.bincount(bins, weights=w, minlength=N_BINS) for w in np.asarray(weights).T], axis=1)


def gain_log_prior(gain, centre=GAIN_CENTRE, sd=GAIN_PRIOR_SD):
    """A weak normal prior on the gain: a short or one-device series fits many gains about
    equally, and must not land at the edge of the grid."""
    return -0.5 * ((np.asarray(gain) - centre) / sd) ** 2


def fit_gain(histogram, joint_pmf, centre=GAIN_CENTRE, grid=GAIN_GRID, sd=GAIN_PRIOR_SD, noise=0.0):
    """The gain on the grid under which the counted steps are likeliest (MAP, gain_log_prior):
    every COARSE-th gain first, then the grid around the best of those (a plateau of equal
    likelihood spans about 1 / (steps of the sum) ~ 0.025, several coarse steps)."""
    def best(gains):
        scores = (np.einsum("gbj,bj->g", _log_tables(joint_pmf, gains, noise=noise), histogram)
                  + gain_log_prior(gains, centre, sd))
        return int(np.argmax(scores))

    i = best(grid[::COARSE]) * COARSE
    near = slice(max(i - COARSE + 1, 0), i + COARSE)
    return float(grid[near][best(grid[near])])


def adapt_pmfs(histogram, pmfs, gain, prior, strength, noise=0.0):
    """One EM update of every device's step distribution from the counts of the joint states.

    For each joint state and observed step, the three devices' draws are shared out in
    proportion to how likely each combination of draws is to give that step; the expected
    counts plus `strength` samples of the prior give the new distributions (MAP). Only steps
    the prior allows can gain mass, so the sums run over the prior's support alone.
    """
    support = [[np.flatnonzero(prior[d, k]) for k in range(prior.shape[1])] for d in range(len(SHAPE))]
    counts = np.zeros_like(pmfs)
    kernel = rounding_kernel(gain, 3 * N_STEPS, noise=noise)[0]
    for j in range(N_JOINT):
        if not histogram[:, j].any():
            continue
        states = np.unravel_index(j, SHAPE)
        steps = [support[d][k] for d, k in enumerate(states)]
        draws = np.einsum("i,j,k->ijk", *[pmfs[d, k, s] for d, (k, s) in enumerate(zip(states, steps))])
        sums = np.add.outer(np.add.outer(steps[0], steps[1]), steps[2])
        p_sum = np.bincount(sums.ravel(), weights=draws.ravel(), minlength=kernel.shape[0])
        p_bin = p_sum @ kernel
        per_bin = np.divide(histogram[:, j], p_bin, out=np.zeros(N_BINS), where=p_bin > 1e-12)
        share = draws * (kernel @ per_bin)[sums]
        for d, (k, s) in enumerate(zip(states, steps)):
            counts[d, k, s] += share.sum(axis=tuple(a for a in range(3) if a != d))
    updated = counts + strength * prior
    total = updated.sum(axis=-1, keepdims=True)
    return np.divide(updated, total, out=prior.copy(), where=total > 0)
