"""The shipped model on nilm.stress files where it used to fail (tuning seeds only: the reported
numbers come from REPORT_SEEDS, which no test or setting looks at)."""
import pytest

from nilm import decode, stress
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


@pytest.mark.parametrize("seed", [103, 108])
def test_screen_2_alone_at_a_high_gain_is_not_screen_1(seed):
    # The first gain estimate (0.94) was 15-20 % below the drawn gain (1.11, 1.15): EM, started
    # only near it, settled on screen 1 at 1.02 (joint 0.73 and 0.79).
    assert joint_accuracy("only_screen2", seed) > 0.95


# Files that a sharp emission and a weak pull to the trained step distributions got wrong:
# (scenario, seed) -> joint accuracy before -> measured after.
STRESS_CASES = {("noise_6mA", 102): (0.890, 0.972), ("gain_1.25", 105): (0.877, 0.997),
                ("clean", 109): (0.954, 0.983)}


@pytest.mark.parametrize("name, seed", list(STRESS_CASES))
def test_stress_files_the_sharp_emission_got_wrong_stay_right(name, seed):
    before, measured = STRESS_CASES[name, seed]
    assert joint_accuracy(name, seed) >= measured - 0.01 > before


def test_a_long_stretch_between_look_alikes_is_doubtful(monkeypatch):
    # Gain 0.85, tuning seed 109: a stretch of 167 rows whose level fits the wrong combination of
    # the screens about as well as the right one. Counted row by row, its samples made the wrong
    # label certain (13 of the 167 wrong rows below 0.9); as at most CONFIDENCE_STAY_ROWS samples,
    # the confidence marks them (159).
    case = stress.make_case("gain_0.85", 109, directory=data_dir())

    def flagged():
        states, confidence = load().predict(case.recording(), return_confidence=True)
        wrong = ~(states == case.states).all(axis=1)
        return (confidence[wrong].min(axis=1) < 0.9).mean()

    assert flagged() > 0.9
    monkeypatch.setattr(decode, "CONFIDENCE_STAY_ROWS", 1e9)
    assert flagged() < 0.2
