"""nilm.stress: every scenario makes what it claims, from real blocks, the same for the same seed."""
import numpy as np
import pytest

from nilm import stress
from nilm.devices import DEVICES, data_dir
from nilm.io import load_device_recordings

SEEDS = stress.REPORT_SEEDS[:3]
SENSOR = stress.SENSOR


def case(name, seed=SEEDS[0], n_rows=stress.N_ROWS):
    return stress.make_case(name, seed, n_rows, data_dir())


def stay_runs(column):
    """(first row, last row + 1, state) of every run of equal states."""
    edges = np.r_[0, np.flatnonzero(np.diff(column)) + 1, column.size]
    return [(a, b, column[a]) for a, b in zip(edges[:-1], edges[1:])]


def switch_ons(column):
    return np.flatnonzero((column[:-1] == 0) & (column[1:] > 0)) + 1


def test_the_issue_scenarios_exist_and_the_seed_splits_are_disjoint():
    assert {"clean", "noise_6mA", "gain_0.85", "gain_1.25", "gain_drift", "sensor_no_spike",
            "sensor_half_spike", "screen_spikes", "dwell_5_20s", "only_screen1", "only_screen2",
            "only_sensor", "meter_2s", "gaps"} <= set(stress.scenarios())
    assert not set(stress.TUNING_SEEDS) & set(stress.REPORT_SEEDS)
    assert len(stress.REPORT_SEEDS) >= 3


@pytest.mark.parametrize("name", stress.scenarios())
def test_a_case_is_a_recording_with_truth_and_the_same_for_the_same_seed(name):
    a, b, other = case(name), case(name), case(name, SEEDS[1])
    assert len(a) == stress.N_ROWS and a.states.shape == (stress.N_ROWS, 3)
    for field in ("timestamp", "max_current", "effective_current", "states", "gain", "spikes"):
        assert np.array_equal(getattr(a, field), getattr(b, field)), field
    assert not np.array_equal(a.max_current, other.max_current)
    assert np.all(np.diff(a.timestamp) > 0)
    # Like a recording: the maximum current in meter steps, the effective one its 1/sqrt(2).
    steps = a.max_current / stress.METER_STEP_MA
    assert np.allclose(steps, np.round(steps), atol=0.01)
    assert np.allclose(a.effective_current, a.max_current / np.sqrt(2), atol=0.06)
    assert a.recording().fields[0] == (f"{a.timestamp[0]:.6f}", f"{a.max_current[0]:.2f}",
                                       f"{a.effective_current[0]:.1f}")


def test_clean_is_the_quantised_gain_times_the_sum_of_real_samples():
    c = case("clean")
    assert np.array_equal(c.max_current, stress.quantise(c.gain * c.components.sum(axis=1)))
    recordings = load_device_recordings(data_dir())
    for j, device in enumerate(DEVICES):
        recorded = set(recordings[device].max_current.tolist())
        assert set(c.components[~c.spikes[:, j], j].tolist()) <= recorded


def test_stays_are_contiguous_blocks_of_the_recordings():
    recorded = " ".join(f"{v:.2f}" for v in load_device_recordings(data_dir())[DEVICES[SENSOR]].max_current)
    c = case("clean")
    checked = 0
    for a, b, state in stay_runs(c.states[:, SENSOR])[1:-1]:
        rows = slice(a + 1, b) if c.spikes[a, SENSOR] else slice(a, b)
        if state == 1 and 5 <= b - a <= 200:
            assert " ".join(f"{v:.2f}" for v in c.components[rows, SENSOR]) in recorded
            checked += 1
    assert checked >= 2


@pytest.mark.parametrize("name, low, high", [("clean", 0.95, 1.15), ("gain_0.85", 0.85, 0.85),
                                              ("gain_1.25", 1.25, 1.25)])
def test_a_constant_gain_in_its_range(name, low, high):
    for seed in SEEDS:
        gain = case(name, seed).gain
        assert gain.min() == gain.max()
        assert low - 1e-12 <= gain[0] <= high + 1e-12


def test_the_gain_drifts_by_five_percent_within_the_file():
    for seed in SEEDS:
        gain = case("gain_drift", seed).gain
        assert abs(gain[-1] / gain[0] - 1) == pytest.approx(0.05, abs=0.002)
        steps = np.diff(gain)
        assert np.all(steps > 0) or np.all(steps < 0)


def test_noise_of_six_milliamps():
    residual = {name: [] for name in ("clean", "noise_6mA")}
    for name in residual:
        for seed in SEEDS:
            c = case(name, seed)
            quiet = ~c.spikes.any(axis=1)
            residual[name].append(c.max_current[quiet] - c.gain[quiet] * c.components[quiet].sum(axis=1))
    # Quantising alone leaves step / sqrt(12) = 3.5 mA; with the noise sqrt(36 + 3.5^2) = 6.9 mA.
    assert np.std(np.concatenate(residual["clean"])) == pytest.approx(3.5, abs=0.3)
    assert np.std(np.concatenate(residual["noise_6mA"])) == pytest.approx(6.9, abs=0.4)


def test_sensor_spikes_always_never_or_half_the_time():
    def spiked_share(name):
        spiked = total = 0
        for seed in SEEDS:
            c = case(name, seed)
            on = switch_ons(c.states[:, SENSOR])
            spiked += int(c.spikes[on, SENSOR].sum())
            total += on.size
            assert c.spikes[:, SENSOR].sum() == c.spikes[on, SENSOR].sum()  # only at switch-ons
        return spiked / total

    assert spiked_share("clean") == 1.0
    assert spiked_share("sensor_no_spike") == 0.0
    assert 0.3 <= spiked_share("sensor_half_spike") <= 0.7
    for seed in SEEDS:
        c = case("sensor_no_spike", seed)
        # Without the spike the sensor never draws more than its ON level's recorded samples.
        assert c.components[:, SENSOR].max() < 100
        assert not c.spikes.any()


def test_screen_switch_ons_show_spikes_only_in_their_scenario():
    for name, expected in (("clean", False), ("screen_spikes", True)):
        c = case(name)
        for j in (0, 1):
            on = switch_ons(c.states[:, j])
            assert on.size
            assert c.spikes[on, j].all() == expected and c.spikes[:, j].any() == expected
            if expected:
                assert np.all(c.components[on, j] > 200)


@pytest.mark.parametrize("name, low, high", [("clean", 15.0, 600.0), ("dwell_5_20s", 5.0, 20.0)])
def test_stays_last_the_dwell_law_in_seconds(name, low, high):
    durations = []
    for seed in SEEDS:
        c = case(name, seed)
        period = np.diff(c.timestamp).max()
        for j in range(len(DEVICES)):
            for a, b, _ in stay_runs(c.states[:, j])[1:-1]:  # the first and last are cut
                durations.append(c.timestamp[b] - c.timestamp[a])
    durations = np.array(durations)
    assert durations.size >= 20
    assert durations.min() >= low - period and durations.max() <= high + period
    # Spread over the law, not bunched at one end.
    assert np.median(durations) == pytest.approx(np.sqrt(low * high), rel=0.5)


@pytest.mark.parametrize("name, device", [("only_screen1", 0), ("only_screen2", 1), ("only_sensor", 2)])
def test_only_one_device_switches(name, device):
    for seed in SEEDS:
        c = case(name, seed)
        others = [j for j in range(len(DEVICES)) if j != device]
        assert not c.states[:, others].any()
        assert not c.components[:, others].any()
        assert np.unique(c.states[:, device]).size >= 2


def test_meter_clocks_jitter_run_at_two_seconds_or_drop_rows():
    clean, slow, gaps = case("clean"), case("meter_2s"), case("gaps")
    dt = np.diff(clean.timestamp)
    assert np.median(dt) == pytest.approx(stress.NATIVE_PERIOD_S, abs=0.01)
    assert 0 < dt.std() < 0.01 and dt.max() < 1.2
    assert np.median(np.diff(slow.timestamp)) == pytest.approx(2.0, abs=0.01)
    gap_dt = np.diff(gaps.timestamp)
    assert (gap_dt > 5 * stress.NATIVE_PERIOD_S).sum() >= 5  # runs of 5-60 rows dropped
    assert (gap_dt > 1.5 * stress.NATIVE_PERIOD_S).sum() >= 15  # and single rows too


def test_find_segments_drops_switch_on_spikes_and_keeps_glitches():
    x = np.array([0, 0, 0, 269, 37, 24, 37, 183, 183, 49, 183, 183], dtype=float)
    labels, spikes = stress.find_segments(x, (12.0, 120.0))
    assert spikes.tolist() == [i == 3 for i in range(x.size)]
    assert labels.tolist() == [0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 2]
    segments = stress.device_segments(x, (12.0, 120.0))
    assert [[b.tolist() for b in blocks] for blocks in segments.blocks] == [
        [[0, 0, 0]], [[37, 24, 37]], [[183, 183, 49, 183, 183]]]
    assert segments.spikes.tolist() == [269]


def test_bad_requests_say_what_is_wrong():
    with pytest.raises(KeyError, match="unknown stress scenario 'cleen'.*clean"):
        stress.make_case("cleen", 1)
    with pytest.raises(ValueError, match="at least 2 rows"):
        stress.make_case("clean", 1, n_rows=1)


def test_dropping_rows_still_gives_the_rows_asked_for():
    for seed in stress.TUNING_SEEDS:
        for n_rows in (50, 600):
            c = case("gaps", seed, n_rows)
            assert len(c) == n_rows and c.states.shape == (n_rows, 3)
