"""nilm.ceiling: the near-ceiling decoder of the stress generator."""
import numpy as np
import pytest

from nilm import ceiling, stress
from nilm.devices import data_dir

ROWS = 800
SEED = stress.TUNING_SEEDS[0]


def decode(name, seed=SEED):
    case = stress.make_case(name, seed, ROWS, data_dir())
    decoder = ceiling.NearCeiling(name, data_dir())
    return case, decoder.predict(case), decoder


def joint(case, predicted):
    return float((case.states == predicted).all(axis=1).mean())


@pytest.mark.parametrize("n", [2, 3])
def test_device_transitions_are_stochastic_and_switch_ons_land_on_the_first_row_twin(n):
    short, long = (ceiling.device_transitions(n, 1 / 100, dt) for dt in (1.0, 1e5))
    assert np.allclose(short.sum(axis=1), 1) and np.allclose(long.sum(axis=1), 1)
    first_twins = list(range(n, 2 * n - 1))
    assert short[0, first_twins].sum() > 0 and short[0, 1:n].sum() == 0  # OFF -> ON goes via the twin
    assert short[first_twins[0], first_twins].sum() == 0  # the twin lasts one row
    assert short[1, 1] == pytest.approx(np.exp(-n / (n - 1) / 100) * (1 - 1 / n) + 1 / n)
    assert np.allclose(long[0, :n].sum() + long[0, n:].sum(), 1)
    assert long[1, 0] == pytest.approx(1 / n, abs=1e-6)  # a long gap forgets the state


def test_forward_backward_posteriors_are_distributions_that_follow_the_evidence():
    mats = np.array([[[0.9, 0.1], [0.1, 0.9]]])
    emission = np.array([[0.9, 0.1]] * 5 + [[0.1, 0.9]] * 5)
    post = ceiling.forward_backward(emission, mats, np.zeros(9, dtype=int))
    assert np.allclose(post.sum(axis=1), 1)
    assert post.argmax(axis=1).tolist() == [0] * 5 + [1] * 5


# 800 rows with 8 gaps of up to 60 rows lose much of what the chain carries: a lower bar there.
@pytest.mark.parametrize("name, least", [("clean", 0.97), ("gain_1.25", 0.97), ("sensor_no_spike", 0.97),
                                         ("gaps", 0.9)])
def test_the_ceiling_finds_the_gain_and_nearly_every_state(name, least):
    case, predicted, decoder = decode(name)
    # Rounding to the meter's step leaves a band of gains that explain a file equally well.
    assert decoder.gain_ == pytest.approx(case.gain[0], abs=0.02)
    assert joint(case, predicted) >= least
    assert predicted.shape == case.states.shape and predicted.dtype.kind == "i"


def test_the_ceiling_follows_a_drifting_gain():
    case, predicted, decoder = decode("gain_drift")
    assert decoder.gain_ == pytest.approx(case.gain[0], abs=0.015)
    assert joint(case, predicted) >= 0.95


def test_the_ceiling_is_not_told_which_device_is_alone():
    # Screen 1 alone at one gain looks like screen 2 alone at a ~10 % higher gain: a real file
    # never says which devices stay off, so the decoder's model is the same as for every device.
    alone, every = (ceiling.NearCeiling(name, data_dir()).fit() for name in ("only_screen1", "clean"))
    assert np.array_equal(alone.pmfs_, every.pmfs_) and alone.rate_ == every.rate_


def test_an_unknown_scenario_is_refused_by_name():
    with pytest.raises(KeyError, match="unknown stress scenario 'nope'"):
        ceiling.NearCeiling("nope").fit()
