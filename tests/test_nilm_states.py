"""State discovery: ordered, spike-proof Gaussian-mixture states per device."""
import numpy as np
import pytest

from nilm.devices import DEVICES, STATES, data_dir
from nilm.io import load_device_recordings
from nilm.states import QUANTUM_MA, fit_device_states, fit_states, spike_mask


@pytest.fixture(scope="module")
def states():
    return fit_states(load_device_recordings(data_dir()), random_state=0)


def test_levels_strictly_increase_from_an_off_near_zero(states):
    for device in DEVICES:
        levels = states[device].levels
        assert levels.size == len(STATES[device])
        assert np.all(np.diff(levels) > QUANTUM_MA), device
        assert levels[0] < QUANTUM_MA / 2, device


def test_screens_on_sit_far_above_idle_and_the_sensor_draws_a_step_or_two(states):
    for device in ("PC screen1", "PC screen2"):
        off, idle, on = states[device].levels
        assert 20 < idle < 50 and on > 150, device
    assert 10 < states["Temperature sensor"].levels[1] < 40


def test_the_sensors_inrush_is_a_spike_not_a_state(states):
    sensor = states["Temperature sensor"]
    raw = load_device_recordings(data_dir())["Temperature sensor"].max_current
    assert raw.max() > 1000 and sensor.spikes[np.argmax(raw)]
    assert sensor.levels.max() < 100


def test_spike_mask_marks_isolated_outliers_only():
    x = np.array([0, 0, 500, 24, 24, 24, 200, 200, 200, 24, 0, 0.0])
    assert np.flatnonzero(spike_mask(x)).tolist() == [2]


def test_a_hand_made_device_with_spikes_gets_its_three_levels():
    rng = np.random.default_rng(1)
    x = np.r_[np.zeros(60), rng.choice([24.41, 36.62], 80), rng.choice([195.3, 207.5, 219.7], 70)]
    x[[70, 100, 150]] = [3000.0, 2500.0, 4000.0]
    fitted = fit_device_states(x, 3, random_state=0)
    assert fitted.levels == pytest.approx([0.0, 30.5, 207.5], abs=4.0)
    assert fitted.labels[:60].max() == 0 and fitted.labels[-70:].min() == 2
    assert fitted.labels[70] == 1 and fitted.labels[150] == 2  # spikes keep the state around them
