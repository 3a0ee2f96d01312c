"""nilm.smooth: gated transitions, chunked Viterbi and posterior decoding against brute force."""
import itertools

import numpy as np
import pytest

from nilm.smooth import gated_transitions, log_terms, posterior, sticky_transitions, viterbi

SHAPE = (3, 3, 2)
STAY = (0.9, 0.9, 0.9)
SENSOR = 2


def sensor_of(joint):
    return np.unravel_index(joint, SHAPE)[SENSOR]


def brute_force(log_emission, log_transitions, which):
    """Every path of a tiny series: the best one and the per-sample posteriors."""
    n, k = log_emission.shape
    scores = {}
    for path in itertools.product(range(k), repeat=n):
        scores[path] = log_emission[0, path[0]] + sum(
            log_transitions[which[t], path[t - 1], path[t]] + log_emission[t, path[t]] for t in range(1, n))
    best = max(scores, key=scores.get)
    weights = np.exp(np.array(list(scores.values())) - max(scores.values()))
    post = np.zeros((n, k))
    for w, path in zip(weights, scores):
        post[np.arange(n), path] += w
    log_likelihood = np.log(weights.sum()) + max(scores.values())
    return np.array(best), post / post.sum(axis=1, keepdims=True), log_likelihood


def test_gated_transitions_ban_the_switch_on_except_where_allowed():
    plain, gated = np.exp(gated_transitions(SHAPE, STAY, SENSOR, 0.0, 0.8))
    assert np.allclose(plain.sum(axis=1), 1) and np.allclose(gated.sum(axis=1), 1)
    off, on = np.ravel_multi_index((1, 1, 0), SHAPE), np.ravel_multi_index((1, 1, 1), SHAPE)
    assert plain[off, on] == 0 and gated[off, on] == pytest.approx(0.9 * 0.9 * 0.8)
    # Switching off and every screen move are as in the plain sticky matrix.
    sticky = np.exp(sticky_transitions(SHAPE, STAY))
    assert plain[on, off] == pytest.approx(sticky[on, off])
    assert gated[on, off] == pytest.approx(sticky[on, off])


def test_viterbi_and_posterior_match_brute_force_with_gates():
    rng = np.random.default_rng(1)
    small = (2, 2)
    stack = gated_transitions(small, (0.7, 0.6), 1, 0.0, 0.9)
    log_emission = rng.normal(size=(6, 4)).astype(np.float32)
    which = np.array([0, 0, 1, 0, 0, 1])
    best, post, log_likelihood = brute_force(log_emission, stack, which)
    assert viterbi(log_emission, stack, which=which).tolist() == best.tolist()
    weights, log_norm = posterior(log_emission, stack, which=which)
    assert np.allclose(weights, post, atol=1e-5)
    # The decoder starts from a uniform state: log(1/4) on top of the paths' own scores.
    assert log_norm.sum() == pytest.approx(log_likelihood - np.log(4), abs=1e-4)


def test_a_banned_switch_on_never_happens_however_strong_the_evidence():
    n = 3000
    log_emission = np.zeros((n, 18), dtype=np.float32)
    sensor_on = sensor_of(np.arange(18)) == 1
    log_emission[:, sensor_on] = 1.0  # every sample prefers the sensor ON ...
    log_emission[:10, sensor_on] = -1e4  # ... except the first ten: it starts OFF
    which = np.zeros(n, dtype=int)
    which[2000] = 1  # the only inrush
    stack = gated_transitions(SHAPE, (0.99, 0.99, 0.99), SENSOR, 0.0, 0.9)
    path = viterbi(log_emission, stack, chunk=n, margin=0, which=which)
    switch_ons = np.flatnonzero(np.diff(sensor_of(path)) > 0) + 1
    assert switch_ons.tolist() == [2000]
    weights, _ = posterior(log_emission, stack, chunk=n, margin=0, which=which)
    assert np.allclose(weights.sum(axis=1), 1, atol=1e-4) and np.all(np.isfinite(weights))
    assert weights[1500, sensor_on].sum() < 1e-6 and weights[2500, sensor_on].sum() > 0.99


def test_chunked_decoding_agrees_with_one_exact_pass_on_sticky_data():
    rng = np.random.default_rng(2)
    truth = np.repeat(rng.integers(18, size=40), 50)
    noise = rng.normal(0, 1.0, (truth.size, 18))
    log_emission = (np.where(np.eye(18, dtype=bool)[truth], 0.0, -1.5) + noise).astype(np.float32)
    stack = sticky_transitions(SHAPE, (0.99, 0.99, 0.99))
    exact = viterbi(log_emission, stack, chunk=truth.size, margin=0)
    chunked = viterbi(log_emission, stack, chunk=256, margin=128)
    assert (exact == chunked).mean() > 0.99
    weights, _ = posterior(log_emission, stack, chunk=256, margin=128)
    assert (weights.argmax(axis=1) == truth).mean() > 0.95


def test_log_terms_are_the_forward_pass_of_posterior_bit_for_bit():
    # EM scores candidates with the forward pass alone: the very numbers posterior gives, so
    # that the candidate chosen is the same.
    rng = np.random.default_rng(3)
    log_emission = rng.normal(0, 2.0, (3000, 18)).astype(np.float32)
    stack = gated_transitions(SHAPE, STAY, SENSOR, 0.01, 0.5)
    which = (rng.random(3000) < 0.1).astype(int)
    for chunk, margin in ((256, 64), (4096, 0)):
        _, terms = posterior(log_emission, stack, chunk=chunk, margin=margin, which=which)
        alone = log_terms(log_emission, stack, chunk=chunk, margin=margin, which=which)
        assert alone.dtype == terms.dtype and np.array_equal(alone, terms)


def test_posterior_padded_gives_posterior_weights_bit_for_bit_without_the_log_terms():
    # The final decode asks for the weights alone: no (n, K + 1) array is built and sliced.
    from nilm.smooth import pad, posterior_padded

    rng = np.random.default_rng(4)
    log_emission = rng.normal(0, 2.0, (5000, 18)).astype(np.float32)
    stack = gated_transitions(SHAPE, STAY, SENSOR, 0.01, 0.5)
    which = (rng.random(5000) < 0.1).astype(int)
    weights, _ = posterior(log_emission, stack, chunk=1024, margin=256, which=which)
    padded = posterior_padded(pad(log_emission, 1024, 256, 0.0), stack, pad(which, 1024, 256, 0), 1024, 256)
    assert padded.shape == (5120, 18) and padded.flags.c_contiguous
    assert np.array_equal(padded[:5000], weights)
