"""The baselines: CO picks the nearest sum, the FHMM decodes sequences, the oracle is a ceiling."""
import numpy as np
import pytest

from nilm import baselines
from nilm.baselines import JOINT_STATES, CombinatorialOptimisation, FactorialHMM
from nilm.devices import DEVICES

# Hand-made state levels (mA); every one of the 18 sums differs from the others by >= 2 mA.
LEVELS = {"PC screen1": [0.0, 40.0, 200.0], "PC screen2": [0.0, 25.0, 170.0],
          "Temperature sensor": [0.0, 12.0]}


def training_data(levels, rows_per_run=30, noise=0.0, seed=0):
    """Per-device currents and states: each state held for a run, visited twice."""
    rng = np.random.default_rng(seed)
    currents, states = {}, {}
    for device, device_levels in levels.items():
        order = list(range(len(device_levels))) * 2
        states[device] = np.repeat(order, rows_per_run)
        currents[device] = (np.asarray(device_levels)[states[device]]
                            + noise * rng.standard_normal(states[device].size))
    return currents, states


# Levels far enough apart (>= 12 mA) for a sequence decoder to tell every sum apart.
SPREAD_LEVELS = {"PC screen1": [0.0, 60.0, 300.0], "PC screen2": [0.0, 25.0, 130.0],
                 "Temperature sensor": [0.0, 12.0]}


def aggregate(levels, truth, gain=1.0):
    return gain * sum(np.asarray(levels[d])[truth[:, i]] for i, d in enumerate(DEVICES))


def test_joint_states_cover_every_combination_once():
    assert JOINT_STATES.shape == (18, 3)
    assert len({tuple(row) for row in JOINT_STATES}) == 18


def test_co_picks_the_nearest_sum_of_state_means():
    co = CombinatorialOptimisation().fit(*training_data(LEVELS))
    observed = np.array([0.0, 41.0, 52.0, 66.0, 171.0, 236.0, 370.0, 383.0, 210.6])
    expected = [(0, 0, 0), (1, 0, 0), (1, 0, 1), (1, 1, 0), (0, 2, 0), (2, 1, 1),
                (2, 2, 0), (2, 2, 1), (1, 2, 0)]
    assert [tuple(row) for row in co.predict(observed)] == expected


def test_co_with_a_gain_scales_the_sums():
    truth = JOINT_STATES
    observed = aggregate(LEVELS, truth, gain=1.1)
    data = training_data(LEVELS)
    assert (CombinatorialOptimisation(gain=1.1).fit(*data).predict(observed) == truth).all()
    assert (CombinatorialOptimisation(gain="fit").fit(*data).predict(observed) == truth).all()
    assert not (CombinatorialOptimisation().fit(*data).predict(observed) == truth).all()


def test_co_state_means_ignore_an_inrush_spike():
    currents, states = training_data(LEVELS)
    sensor = currents["Temperature sensor"].copy()
    sensor[np.flatnonzero(states["Temperature sensor"] == 1)[0]] = 5000.0
    currents["Temperature sensor"] = sensor
    co = CombinatorialOptimisation().fit(currents, states)
    assert co.state_means_["Temperature sensor"] == pytest.approx([0.0, 12.0])


def test_predict_before_fit_is_a_clear_error():
    from nilm.model import NotFittedError

    with pytest.raises(NotFittedError, match="not fitted"):
        FactorialHMM().predict(np.zeros(3))


def test_viterbi_prefers_staying_over_a_one_sample_blip():
    # Two states; the middle sample alone looks like state 1, but switching costs more.
    log_emission = np.log([[0.9, 0.1], [0.9, 0.1], [0.4, 0.6], [0.9, 0.1], [0.9, 0.1]])
    log_transition = np.log([[0.95, 0.05], [0.05, 0.95]])
    path = baselines.viterbi_with_start(log_emission, log_transition, np.log([0.5, 0.5]))
    assert path.tolist() == [0, 0, 0, 0, 0]
    sticky_emission = np.log([[0.9, 0.1]] * 2 + [[0.01, 0.99]] * 3)
    assert baselines.viterbi_with_start(sticky_emission, log_transition, np.log([0.5, 0.5])).tolist() == \
        [0, 0, 1, 1, 1]


def test_fhmm_recovers_a_clean_hand_made_sequence():
    fhmm = FactorialHMM().fit(*training_data(SPREAD_LEVELS, noise=2.0))
    runs = [(0, 0, 0), (1, 0, 0), (1, 0, 1), (2, 0, 1), (2, 1, 1), (2, 2, 1), (1, 2, 0),
            (0, 2, 0), (0, 1, 1), (0, 0, 0)]
    truth = np.repeat(np.array(runs), 15, axis=0)
    rng = np.random.default_rng(1)
    observed = aggregate(SPREAD_LEVELS, truth) + 2.0 * rng.standard_normal(len(truth))
    assert (fhmm.predict(observed) == truth).all()


def test_fhmm_smooths_noise_that_fools_co():
    data = training_data(LEVELS, noise=4.0, seed=2)
    truth = np.repeat(np.array([(1, 0, 0), (1, 0, 1), (2, 1, 0), (2, 1, 1)]), 50, axis=0)
    rng = np.random.default_rng(3)
    observed = aggregate(LEVELS, truth) + 4.0 * rng.standard_normal(len(truth))
    fhmm_right = (FactorialHMM().fit(*data).predict(observed) == truth).all(axis=1).mean()
    co_right = (CombinatorialOptimisation().fit(*data).predict(observed) == truth).all(axis=1).mean()
    assert fhmm_right > 0.97
    assert fhmm_right > co_right + 0.1


# A small generator in the image of the recordings: per-state pools of quantised currents (mA).
POOLS = (
    (np.array([0.0]), np.array([36.62] * 9 + [24.41]), np.array([195.31, 207.52, 207.52, 219.73])),
    (np.array([0.0]), np.array([24.41, 36.62]), np.array([183.11, 183.11, 195.31])),
    (np.array([0.0]), np.array([12.21, 24.41, 24.41])),
)


def small_source():
    from nilm.synth import Source

    return Source(pools=POOLS, dwell_means=np.array([60.0, 60.0, 60.0]), spike_range=(400.0, 4000.0))


def pool_training_data():
    """CO's training data: every pool value labelled with its state."""
    currents = {d: np.concatenate(POOLS[i]) for i, d in enumerate(DEVICES)}
    states = {d: np.repeat(np.arange(len(POOLS[i])), [p.size for p in POOLS[i]])
              for i, d in enumerate(DEVICES)}
    return currents, states


def test_oracle_on_a_small_synthetic_case_beats_co():
    from nilm.synth import generate

    source = small_source()
    case = generate(source, 2000, random_state=5, gain=1.05, dwell=[60.0] * 3)
    oracle = baselines.Oracle(source, gain=1.05, dwell=[60.0] * 3, n_rows=50_000, random_state=6)
    oracle_right = (oracle.fit().predict(case.current) == case.states).all(axis=1).mean()
    co = CombinatorialOptimisation().fit(*pool_training_data())
    co_right = (co.predict(case.current) == case.states).all(axis=1).mean()
    assert oracle_right > 0.9
    assert oracle_right > co_right + 0.2


def test_oracle_decoders_agree_on_the_easy_parts():
    from nilm.synth import generate

    source = small_source()
    case = generate(source, 1000, random_state=8, gain=1.0, dwell=[200.0] * 3)
    kwargs = dict(source=source, gain=1.0, dwell=[200.0] * 3, n_rows=50_000, random_state=9)
    viterbi = baselines.Oracle(decode="viterbi", **kwargs).fit().predict(case.current)
    posterior = baselines.Oracle(**kwargs).fit().predict(case.current)
    assert (viterbi == case.states).all(axis=1).mean() > 0.95
    assert (posterior == case.states).all(axis=1).mean() > 0.95


def test_oracle_hidden_state_marks_only_the_sensors_switch_on_sample():
    states = np.array([[0, 0, 0], [0, 0, 1], [0, 0, 1], [0, 0, 0], [2, 1, 1], [2, 1, 1]])
    hidden = np.column_stack(np.unravel_index(baselines.hidden_index(states), baselines.HIDDEN_SHAPE))
    assert hidden[:, 2].tolist() == [0, 2, 1, 0, 2, 1]
    assert (hidden[:, :2] == states[:, :2]).all()
