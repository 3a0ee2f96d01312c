"""The shipped model on nilm.stress files where it used to fail (tuning seeds only: the reported
numbers come from REPORT_SEEDS, which no test or setting looks at)."""
import pytest

from nilm import stress
from nilm.devices import data_dir
from nilm.model import load


def joint_accuracy(name, seed):
    case = stress.make_case(name, seed, directory=data_dir())
    return (load().predict(case.recording()) == case.states).all(axis=1).mean()


@pytest.mark.parametrize("seed", [106, 109])
def test_a_gain_of_1_25_keeps_every_level_apart(seed):
    # At gain 1.25 exact rounding makes every other step impossible (6 x 1.25 = 7.5 -> 8, never
    # 7), but a meter shows both: the wrong gain explained them better (joint 0.26 and 0.57).
    assert joint_accuracy("gain_1.25", seed) > 0.85
