"""nilm.emission: the devices' step distributions, their sums, the gain fit and the EM update."""
import numpy as np
import pytest

from nilm.emission import (
    N_BINS,
    N_STEPS,
    adapt_pmfs,
    fit_gain,
    joint_step_pmf,
    log_emission_table,
    observed_bins,
    smooth_pmfs,
    state_histogram,
    step_pmfs,
)
from nilm.states import QUANTUM_MA


def pmfs_of(steps):
    """Step distributions from {(device, state): [step counts drawn]}."""
    pools = [[[0.0], [0.0], [0.0]], [[0.0], [0.0], [0.0]], [[0.0], [0.0]]]
    for (d, k), drawn in steps.items():
        pools[d][k] = np.asarray(drawn, dtype=float) * QUANTUM_MA
    return step_pmfs(pools)


PMFS = pmfs_of({(0, 1): [3, 3, 3, 2], (0, 2): [17] * 5, (1, 1): [2, 3], (1, 2): [15, 16],
                (2, 1): [1, 2, 2, 2]})


def test_step_pmfs_are_distributions_over_the_recorded_steps():
    assert PMFS.shape == (3, 3, N_STEPS)
    assert np.allclose(PMFS[:, :2].sum(axis=-1), 1) and np.allclose(PMFS[:2, 2].sum(axis=-1), 1)
    assert PMFS[0, 1, 3] == pytest.approx(0.75) and PMFS[0, 1, 2] == pytest.approx(0.25)
    assert not PMFS[2, 2].any()  # the sensor has two states only


def test_joint_pmf_is_the_distribution_of_the_sum():
    joint = joint_step_pmf(PMFS)
    assert joint.shape == (18, 3 * N_STEPS) and np.allclose(joint.sum(axis=1), 1)
    # screen1 IDLE + screen2 IDLE + sensor ON: 7 steps are 3 + 3 + 1, 3 + 2 + 2 or 2 + 3 + 2.
    j = np.ravel_multi_index((1, 1, 1), (3, 3, 2))
    assert joint[j, 7] == pytest.approx(0.75 * 0.5 * 0.25 + 0.75 * 0.5 * 0.75 + 0.25 * 0.5 * 0.75)
    assert joint[j, 8] == pytest.approx(0.75 * 0.5 * 0.75)
    assert joint[j, :5].sum() == 0 and joint[j, 9:].sum() == 0


def test_emission_table_scales_by_the_gain_and_rounds_like_the_meter():
    table = np.exp(log_emission_table(joint_step_pmf(PMFS), 1.1))
    assert table.shape == (N_BINS, 18) and np.allclose(table.sum(axis=0), 1, atol=1e-5)
    screen1_on = np.ravel_multi_index((2, 0, 0), (3, 3, 2))
    assert table[:, screen1_on].argmax() == round(17 * 1.1)
    assert table[17, screen1_on] < 1e-3  # the floor only


def test_smoothing_keeps_unused_states_empty_and_spreads_mass_to_neighbours():
    smooth = smooth_pmfs(PMFS, 0.1)
    assert np.allclose(smooth[:, :2].sum(axis=-1), 1) and not smooth[2, 2].any()
    assert smooth[0, 2, 16] > 0 and smooth[0, 2, 18] > 0 and smooth[0, 2, 17] > 0.8


def test_fit_gain_finds_the_gain_that_made_the_counts():
    rng = np.random.default_rng(0)
    joint = joint_step_pmf(PMFS)
    states = rng.integers(18, size=5000)
    sums = np.array([rng.choice(joint.shape[1], p=joint[j]) for j in states])
    bins = np.rint(1.07 * sums).astype(int)
    counts = state_histogram(bins, np.eye(18)[states])
    assert counts.shape == (N_BINS, 18) and counts.sum() == 5000
    assert fit_gain(counts, joint) == pytest.approx(1.07, abs=0.01)


def test_adapt_moves_a_shifted_level_towards_the_data_and_strength_holds_it_back():
    # screen2 IDLE was 2 or 3 steps in training; the series shows it at 2 steps only.
    idle2 = np.ravel_multi_index((0, 1, 0), (3, 3, 2))
    counts = np.zeros((N_BINS, 18))
    counts[2, idle2] = 400
    weak = adapt_pmfs(counts, PMFS, 1.0, PMFS, strength=10.0)
    strong = adapt_pmfs(counts, PMFS, 1.0, PMFS, strength=1e6)
    assert weak[1, 1, 2] > 0.95 and strong[1, 1, 2] == pytest.approx(0.5, abs=1e-3)
    # Devices the counts say nothing about keep their distributions.
    assert np.allclose(weak[0], PMFS[0]) and np.allclose(weak[2], PMFS[2])


def test_observed_bins_are_meter_steps_within_the_bins():
    current = np.array([0, 6.0, 24.41, 5000.0, 24.41])
    assert observed_bins(current).tolist() == [0, 0, 2, N_BINS - 1, 2]


def test_a_series_that_says_nothing_about_the_gain_gets_the_prior_centre():
    counts = np.zeros((N_BINS, 18))
    counts[0, 0] = 1000  # everything OFF: every gain explains it
    assert fit_gain(counts, joint_step_pmf(PMFS), centre=1.05) == pytest.approx(1.05)


def test_a_gain_that_lands_on_half_steps_can_show_both_neighbours():
    from nilm.emission import rounding_kernel

    kernel = rounding_kernel([1.0, 1.25], 8)
    assert np.allclose(kernel.sum(axis=-1), 1)
    assert kernel[0, 6, 6] == pytest.approx(1.0)  # gain 1: a step count stays itself
    # 6 steps x 1.25 = 7.5: the meter shows 7 or 8, never one of them only.
    assert kernel[1, 6, 7] == pytest.approx(0.5) and kernel[1, 6, 8] == pytest.approx(0.5)
    assert kernel[1, 5, 6] == pytest.approx(1.0)  # 6.25: far from a tie


def test_normal_cdf_matches_the_error_function():
    import math

    from nilm.emission import normal_cdf

    z = np.linspace(-6, 6, 241)
    exact = np.array([0.5 * (1 + math.erf(v / math.sqrt(2))) for v in z])
    assert np.abs(normal_cdf(z) - exact).max() < 2e-7


def test_noise_widens_the_rounding_like_normal_noise_before_the_meter():
    from nilm.emission import normal_cdf, rounding_kernel

    sharp = rounding_kernel([1.0], 10)
    assert np.allclose(rounding_kernel([1.0], 10, noise=1e-4), sharp, atol=1e-9)
    # A sum of 5 steps with noise of 0.5 steps sd: the meter shows 4, 5 or 6 as a normal
    # variable rounds (the dither of +-0.03 steps hardly changes it).
    noisy = rounding_kernel([1.0], 10, noise=0.5)[0, 5]
    assert np.allclose(rounding_kernel([1.0, 1.25], 10, noise=0.5).sum(axis=-1), 1)
    assert noisy[5] == pytest.approx(normal_cdf(1.0) - normal_cdf(-1.0), abs=2e-3)
    assert noisy[6] == pytest.approx(normal_cdf(3.0) - normal_cdf(1.0), abs=2e-3)
    # The emission of a noisy series lets a state show steps a sharp one calls impossible.
    joint = joint_step_pmf(PMFS)
    screen1_on = np.ravel_multi_index((2, 0, 0), (3, 3, 2))
    assert log_emission_table(joint, 1.0)[15, screen1_on] < np.log(1e-3)
    assert log_emission_table(joint, 1.0, noise=0.8)[15, screen1_on] > np.log(1e-2)


def test_tables_and_kernels_are_memoised_read_only_and_equal_to_a_fresh_computation():
    from nilm.emission import _kernel, _memo_tables, fit_gain, rounding_kernel

    joint = joint_step_pmf(PMFS)
    first = log_emission_table(joint, 1.1, noise=0.3)
    assert np.shares_memory(log_emission_table(joint.copy(), 1.1, noise=0.3), first)  # not rebuilt
    with pytest.raises(ValueError):
        first[0, 0] = 0.0  # shared by every caller: nobody may change it
    kernel = rounding_kernel([1.0, 1.25], 8, noise=0.3)
    assert rounding_kernel(np.array([1.0, 1.25]), 8, 0.3) is kernel
    assert np.array_equal(kernel, _kernel(np.array([1.0, 1.25]), 8, 0.3))
    _memo_tables.cache_clear()
    assert np.array_equal(log_emission_table(joint, 1.1, noise=0.3), first)
    counts = np.zeros((N_BINS, 18))
    counts[round(17 * 1.1), np.ravel_multi_index((2, 0, 0), (3, 3, 2))] = 10
    hits = _memo_tables.cache_info().hits
    assert fit_gain(counts, joint) == fit_gain(counts, joint)
    assert _memo_tables.cache_info().hits >= hits + 2  # the second fit reuses the first one's tables
