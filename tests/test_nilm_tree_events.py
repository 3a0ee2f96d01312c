"""nilm.events: the event classes, features, the gate the event tree refines, and the tree itself."""
import subprocess
import sys

import numpy as np
import pytest

from nilm.adapt import NOTHING, SPIKE, STEP
from nilm.decode import switch_on_gate
from nilm.devices import data_dir
from nilm.events import (
    EVENT_FEATURES,
    EVENTS,
    SCREEN_MOVES,
    SCREEN_OFF,
    SCREEN_ON,
    SCREEN_STEP,
    SENSOR_OFF,
    SENSOR_ON,
    EventGate,
    augmented,
    event_features,
    event_gate,
    event_labels,
    event_rows,
    fit_event_tree,
    screen_move,
    sensor_move,
)
from nilm.io import load_device_recordings
from nilm.synth import generate, make_source

COL = {name: i for i, name in enumerate(EVENT_FEATURES)}


def test_each_step_is_labelled_by_what_switched_and_its_neighbours_share_it():
    # (screen1, screen2, sensor) from row 0; one change every 5 rows, the last two at once.
    path = [(0, 0, 0), (0, 0, 1), (1, 0, 1), (2, 0, 1), (0, 0, 1), (0, 0, 0), (0, 1, 1), (0, 1, 1)]
    labels = event_labels(np.repeat(np.array(path), 5, axis=0))
    rows = [5, 10, 15, 20, 25, 30]
    assert sensor_move(labels[rows]).tolist() == [SENSOR_ON, 0, 0, 0, SENSOR_OFF, SENSOR_ON]
    assert screen_move(labels[rows]).tolist() == [0, SCREEN_ON, SCREEN_STEP, SCREEN_OFF, 0, SCREEN_ON]
    assert labels[4] == labels[6] == labels[5] and labels[0] == labels[2] == labels[37] == 0


def test_features_measure_the_spike_and_the_step_against_the_level():
    x = np.r_[np.full(40, 200.0), np.full(40, 224.0)]
    x[40] = 3000.0
    rows = np.array([20, 40, 41])
    F = event_features(x, rows)
    assert F.shape == (3, len(EVENT_FEATURES)) and F.dtype == np.float32
    assert F[1, COL["over_level"]] == pytest.approx(2776, abs=1)
    assert F[1, COL["step"]] == pytest.approx(24, abs=0.1) and F[0, COL["step"]] == 0
    assert F[1, COL["step_ratio"]] == pytest.approx(24 / 200, abs=1e-3)
    assert F[1, COL["level"]] == 200 and F[2, COL["over_level_before"]] == pytest.approx(2776, abs=1)


def test_the_gate_moves_only_the_rows_the_hand_rules_mark():
    hand = np.array([NOTHING, SPIKE, SPIKE, STEP, STEP, STEP, NOTHING])
    rows = event_rows(hand)
    assert rows.tolist() == [1, 2, 3, 4, 5]
    proba = np.zeros((rows.size, len(EVENTS)), dtype=np.float32)
    # shares of (sensor on, sensor off) per marked row, the screens staying; the rest: nothing
    on, off = len(SCREEN_MOVES) * SENSOR_ON, len(SCREEN_MOVES) * SENSOR_OFF
    proba[:, [on, off]] = [[0.95, 0.0], [0.1, 0.0], [0.95, 0.0], [0.3, 0.3], [0.01, 0.02]]
    proba[:, 0] = 1 - proba.sum(axis=1)
    gate = event_gate(hand, rows, proba, on_threshold=0.9, spike_floor=0.2, step_floor=0.05)
    assert gate.tolist() == [NOTHING, SPIKE, STEP, SPIKE, STEP, NOTHING, NOTHING]


@pytest.fixture(scope="module")
def source():
    return make_source(load_device_recordings(data_dir()), random_state=0)


def test_augmented_series_drop_some_sensor_spikes_and_give_some_screens_one(source):
    synthetic = generate(source, 4000, random_state=2, gain=1.0, dwell=0.3)
    current = augmented(synthetic, np.random.default_rng(0))
    excess = current - synthetic.components.sum(axis=1)
    sensor_on = synthetic.spikes > 0
    assert 0 < (excess[sensor_on] > 150).sum() < sensor_on.sum()
    screen_on = screen_move(event_labels(synthetic.states)) == SCREEN_ON
    screen_on &= np.r_[False, np.diff(synthetic.states[:, :2], axis=0).any(axis=1)] & ~sensor_on
    assert (excess[screen_on] > 150).any()


def test_the_tree_tells_the_sensors_spikes_from_the_screens(source):
    tree = fit_event_tree(source, lambda current: 1.0, n_series=12, n_rows=3000, random_state=0)
    synthetic = generate(source, 6000, random_state=99, gain=1.0, dwell=0.5)
    current = augmented(synthetic, np.random.default_rng(1))
    hand = switch_on_gate(current)
    spikes = event_rows(hand)[hand[event_rows(hand)] == SPIKE]
    proba = EventGate(tree, 1.0).shares(current, spikes)
    shares = proba[:, sensor_move(np.arange(len(EVENTS))) == SENSOR_ON].sum(axis=1)
    truth = event_labels(synthetic.states)[spikes]
    sensor = sensor_move(truth) == SENSOR_ON
    screen = (screen_move(truth) == SCREEN_ON) & (sensor_move(truth) == 0)
    assert sensor.any() and screen.any()
    assert shares[sensor].mean() > shares[screen].mean() + 0.3


def test_importing_the_events_needs_no_sklearn():
    code = "import sys, nilm.events; print('sklearn' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
