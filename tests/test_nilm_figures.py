"""Figure functions of nilm.figures: pure data in, plotly figures out (no browser)."""
import numpy as np
import plotly.graph_objects as go
import pytest

from nilm import figures
from nilm.devices import DEVICES, STATES
from nilm.io import load_device_recordings, load_main
from nilm.states import QUANTUM_MA, fit_states

LEVELS = {"PC screen1": [0.0, 36.6, 207.5], "PC screen2": [0.0, 30.0, 185.0],
          "Temperature sensor": [5.0, 24.4]}


@pytest.fixture(scope="module")
def main():
    return load_main()


@pytest.fixture(scope="module")
def main_states(main):
    """Plausible states for the main file (thresholds, not the model: these tests are about drawing)."""
    c = main.max_current
    return np.column_stack([(c > 200).astype(int) + (c > 400), 2 * (c > 100), (c > 440)]).astype(int)


def test_decimate_keeps_every_row_of_a_short_series():
    assert np.array_equal(figures.decimate(np.arange(10.0), max_points=20), np.arange(10))


def test_decimate_bounds_points_and_keeps_spikes():
    rng = np.random.default_rng(0)
    values = rng.normal(100, 5, 200_001)
    values[[17, 123_456, 200_000]] = [5000.0, -50.0, 7000.0]
    keep = figures.decimate(values, max_points=1000)
    assert len(keep) <= 1004
    assert np.all(np.diff(keep) > 0)
    assert {17, 123_456, 200_000} <= set(keep.tolist())


def test_runs_and_row_durations():
    starts, values = figures.runs(np.array([0, 0, 2, 2, 2, 1]))
    assert starts.tolist() == [0, 2, 5] and values.tolist() == [0, 2, 1]
    seconds = figures.row_durations(np.array([0.0, 1.0, 2.0, 1000.0, 1001.0]))
    # The 998 s logging gap counts as five typical steps, the last row as one.
    assert seconds.tolist() == [1.0, 1.0, 5.0, 1.0, 1.0]


def test_level_histogram_draws_every_mixture_component_on_the_quantised_grid():
    recordings = load_device_recordings()
    fitted = fit_states(recordings, random_state=0)
    device = "PC screen1"
    s = fitted[device]
    fig = figures.level_histogram(recordings[device].max_current, s.levels, s.spreads,
                                  s.weights, STATES[device], title=device)
    bars, *curves = fig.data
    assert bars.type == "bar" and int(np.sum(bars.y)) <= len(recordings[device])
    assert np.allclose(np.diff(bars.x), QUANTUM_MA)
    assert [c.line.color for c in curves] == [figures.STATE_COLORS[n] for n in STATES[device]]
    # Each curve peaks at its component's level.
    for curve, level in zip(curves, s.levels):
        assert abs(curve.x[np.argmax(curve.y)] - level) < 2


def test_level_histogram_leaves_out_and_mentions_inrush_spikes():
    sensor = load_device_recordings()["Temperature sensor"].max_current
    fig = figures.level_histogram(sensor, [1.0, 24.4], [3.0, 5.0], [0.2, 0.8], ("OFF", "ON"))
    assert fig.layout.xaxis.range[1] < 1000 < sensor.max()
    assert "not shown (inrush spikes)" in fig.layout.annotations[0].text


def test_state_series_colours_samples_by_state(main, main_states):
    fig = figures.state_series(main.timestamp, main.max_current, main_states[:, 0],
                               STATES["PC screen1"])
    markers = [t for t in fig.data if t.mode == "markers"]
    assert [t.name for t in markers] == list(STATES["PC screen1"])
    assert sum(len(t.y) for t in markers) == len(main)  # short enough: nothing decimated
    on = markers[2]
    assert on.marker.color == figures.STATE_COLORS["ON"] and min(on.y) > 400


def test_aggregate_figure_bands_follow_the_state_runs(main, main_states):
    fig = figures.aggregate_figure(main.timestamp, main.max_current, main_states)
    line = fig.data[0]
    assert len(line.y) == len(main)
    bands = [t for t in fig.data if t.type == "heatmap"]
    assert [b.y[0] for b in bands] == list(DEVICES)
    for band, column, device in zip(bands, main_states.T, DEVICES):
        starts, values = figures.runs(column)
        assert len(band.x) == len(starts) + 1  # brick edges
        assert list(band.text[0]) == [STATES[device][v] for v in values]
    legend = {t.name for t in fig.data if t.type == "scatter" and t.showlegend is not False}
    assert legend == {"OFF", "IDLE", "ON"}


def test_aggregate_figure_decimates_long_series_but_not_the_bands():
    n = 50_000
    t = np.arange(n, dtype=float)
    states = np.zeros((n, 3), dtype=int)
    states[::2, 2] = 1  # the sensor flickers every row
    fig = figures.aggregate_figure(t, np.full(n, 100.0), states)
    assert len(fig.data[0].y) <= figures.MAX_POINTS + 4
    sensor_band = [d for d in fig.data if d.type == "heatmap"][2]
    assert len(sensor_band.z[0]) == n


def test_state_timeline_steps_through_each_devices_states(main, main_states):
    fig = figures.state_timeline(main.timestamp, main_states)
    assert len(fig.data) == 3
    for trace, column, device in zip(fig.data, main_states.T, DEVICES):
        starts, values = figures.runs(column)
        assert list(trace.y[:-1]) == [STATES[device][v] for v in values]
        assert trace.line.shape == "hv"


def test_shares_add_up_and_split_the_charge_by_state_level(main, main_states):
    result = figures.shares(main.timestamp, main.max_current, main_states, LEVELS)
    for device in DEVICES:
        assert sum(v["time_share"] for v in result[device].values()) == pytest.approx(1.0)
    assert sum(v["charge_share"] for d in DEVICES for v in result[d].values()) == pytest.approx(1.0)
    seconds = figures.row_durations(main.timestamp)
    total_mah = float(np.sum(main.max_current * seconds)) / 3600
    assert sum(v["charge_mah"] for d in DEVICES for v in result[d].values()) == pytest.approx(total_mah)
    # A device at level 0 draws no share of the charge.
    assert result["PC screen1"]["OFF"]["charge_mah"] == 0.0


def test_shares_of_a_hand_made_case():
    t = np.array([0.0, 1.0, 2.0, 3.0])
    current = np.array([100.0, 100.0, 100.0, 100.0])
    states = np.array([[2, 0, 0], [2, 0, 0], [0, 2, 0], [0, 2, 0]])
    levels = {"PC screen1": [0, 0, 100], "PC screen2": [0, 0, 100], "Temperature sensor": [0, 10]}
    result = figures.shares(t, current, states, levels)
    assert result["PC screen1"]["ON"]["time_share"] == 0.5
    assert result["PC screen1"]["ON"]["charge_mah"] == pytest.approx(200 / 3600)
    assert result["Temperature sensor"]["OFF"]["time_share"] == 1.0


def test_share_figure_stacks_time_and_charge_per_state(main, main_states):
    data = figures.shares(main.timestamp, main.max_current, main_states, LEVELS)
    fig = figures.share_figure(data)
    assert fig.layout.barmode == "stack"
    time_on = [t for t in fig.data if t.name == "ON" and t.xaxis == "x"][0]
    assert list(time_on.y) == list(DEVICES)
    assert time_on.x[0] == pytest.approx(100 * data["PC screen1"]["ON"]["time_share"])
    # The sensor has no IDLE state: its bar is empty, not zero-length noise.
    idle = [t for t in fig.data if t.name == "IDLE" and t.xaxis == "x"][0]
    assert idle.x[2] is None


def test_combination_histogram_marks_every_joint_state_scaled_by_gain(main):
    combinations = [((a, b, c), LEVELS["PC screen1"][a] + LEVELS["PC screen2"][b]
                     + LEVELS["Temperature sensor"][c])
                    for a in range(3) for b in range(3) for c in range(2)]
    fig = figures.combination_histogram(main.max_current, combinations, gain=1.08)
    marks = fig.data[1]
    assert len(marks.x) == 18 and len(fig.layout.shapes) == 18
    assert marks.x[-1] == pytest.approx(1.08 * (207.5 + 185.0 + 24.4))
    assert marks.text[-1] == "S1 ON · S2 ON · T ON"
    assert int(np.sum(fig.data[0].y)) == int(np.sum(main.max_current <= fig.layout.xaxis.range[1]))


@pytest.mark.parametrize("peak", [150.0, 1e5, 1e8, 1e300])
def test_level_histograms_are_bounded_by_their_bins_not_by_the_values(peak):
    # Once one bar per meter step: 1e8 mA made a 113 MB response, 1e300 an error.
    current = np.full(100, peak)
    current[:50] = 12.21
    combinations = [((0, 0, 0), 5.0), ((2, 2, 1), 420.0)]
    for fig in (figures.combination_histogram(current, combinations),
                figures.level_histogram(current, [5.0, 200.0], [2.0, 9.0], [0.5, 0.5],
                                        ("OFF", "ON"))):
        bars = fig.data[0]
        assert len(bars.x) <= figures.MAX_BINS + 1
        assert int(np.sum(bars.y)) == 100
        assert len(fig.to_json()) < 200_000
        # Wider bins are still whole meter steps, centred on the quantised values.
        step = bars.x[1] - bars.x[0]
        assert step / QUANTUM_MA == pytest.approx(round(step / QUANTUM_MA))
        assert bars.width == pytest.approx(0.9 * step)


def test_figures_serialise_to_json(main, main_states):
    fig = figures.aggregate_figure(main.timestamp, main.max_current, main_states)
    assert isinstance(fig, go.Figure)
    assert fig.to_json().startswith("{")


def test_device_current_figure_stacks_each_devices_level_times_the_gain():
    t = np.arange(6, dtype=float)
    states = np.array([[0, 0, 0], [2, 0, 0], [2, 0, 0], [2, 2, 1], [1, 2, 1], [1, 2, 1]])
    fig = figures.device_current_figure(t, states, LEVELS, gain=1.1)
    assert [trace.name for trace in fig.data] == list(DEVICES)
    assert {trace.stackgroup for trace in fig.data} == {"devices"}
    # One point per change of any device, and the last row.
    assert list(fig.data[0].y) == pytest.approx([0.0, 228.25, 228.25, 40.26, 40.26], abs=0.1)
    assert list(fig.data[2].y) == pytest.approx([5.5, 5.5, 26.84, 26.84, 26.84], abs=0.1)
