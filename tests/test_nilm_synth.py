"""The synthetic generator: truth, quantisation, inrush spikes, seeds, splits."""
import numpy as np
import pytest

from nilm.devices import DEVICES, data_dir
from nilm.io import load_device_recordings
from nilm.states import QUANTUM_MA
from nilm.synth import generate, make_source, quantise, run_lengths, slice_recording, split_recordings

SENSOR = DEVICES.index("Temperature sensor")


@pytest.fixture(scope="module")
def recordings():
    return load_device_recordings(data_dir())


@pytest.fixture(scope="module")
def source(recordings):
    return make_source(recordings, random_state=0)


def test_current_is_the_quantised_gain_times_the_sum_plus_inrush(source):
    s = generate(source, 5000, random_state=3, gain=(1.02, 1.1))
    assert 1.02 <= s.gain <= 1.1
    assert np.array_equal(s.current, quantise(s.gain * s.components.sum(axis=1) + s.spikes))
    steps = s.current / QUANTUM_MA
    assert np.allclose(steps, np.round(steps), atol=1e-3)


def test_inrush_falls_exactly_on_the_sensors_switch_ons(source):
    s = generate(source, 5000, random_state=4)
    on = np.flatnonzero(np.diff(s.states[:, SENSOR]) > 0) + 1
    assert on.size > 0
    assert np.array_equal(np.flatnonzero(s.spikes), on)
    assert s.spikes[on].min() >= source.spike_range[0]


def test_each_sample_comes_from_the_recorded_samples_of_its_state(source):
    s = generate(source, 3000, random_state=5)
    for j, pools in enumerate(source.pools):
        for k, pool in enumerate(pools):
            drawn = s.components[s.states[:, j] == k, j]
            assert np.isin(drawn, pool).all()


def test_stays_follow_the_dwell_regime(source):
    calm = generate(source, 20000, random_state=6, dwell=[300.0] * 3)
    busy = generate(source, 20000, random_state=6, dwell=[20.0] * 3)
    for j in range(3):
        assert run_lengths(calm.states[:, j]).mean() > 5 * run_lengths(busy.states[:, j]).mean()


def test_seeds_reproduce(source):
    a, b = generate(source, 2000, random_state=9), generate(source, 2000, random_state=9)
    c = generate(source, 2000, random_state=10)
    assert np.array_equal(a.current, b.current) and np.array_equal(a.states, b.states)
    assert not np.array_equal(a.states, c.states)


def test_slices_and_splits_keep_rows_in_time_order(recordings):
    rec = recordings["PC screen2"]
    head = slice_recording(rec, 0.0, 0.7)
    assert len(head.max_current) == round(0.7 * len(rec.max_current)) == len(head.fields)
    assert np.array_equal(head.timestamp, rec.timestamp[:len(head.timestamp)])
    train, test = split_recordings(recordings, 0.7)
    for d in DEVICES:
        assert len(train[d].max_current) + len(test[d].max_current) == len(recordings[d].max_current)
        assert np.all(np.diff(train[d].timestamp) >= 0)
    # Held-out parts still hold every state, so a generator can be built from them alone.
    held_out = make_source(test, random_state=0)
    assert all(pool.size > 1 for pools in held_out.pools for pool in pools)
