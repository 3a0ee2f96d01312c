"""nilm.doubt: doubtful segments of a labelled recording, in plain words."""
import numpy as np
import pytest

from nilm import doubt
from nilm.devices import SHAPE

T0 = 1536129671.0  # 06:41:11 UTC


def labelled(n=20):
    timestamp = T0 + np.arange(n, dtype=float)
    states = np.tile([2, 0, 0], (n, 1))  # screen 1 ON
    confidence = np.full((n, 3), 0.99)
    runner_up = np.full(n, np.ravel_multi_index((0, 2, 1), SHAPE))  # screen 2 ON + sensor ON
    return timestamp, states, confidence, runner_up


def test_close_doubtful_rows_form_one_segment_and_far_ones_another():
    timestamp, states, confidence, runner_up = labelled()
    confidence[[3, 4, 7], 0] = [0.6, 0.8, 0.7]  # 4 -> 7: two rows apart, joined
    confidence[15, 2] = 0.5
    found = doubt.doubtful_segments(timestamp, states, confidence, runner_up)
    assert [(d.first_row, d.last_row) for d in found] == [(3, 7), (15, 15)]
    first = found[0]
    assert first.rows == 5 and first.seconds == 4.0 and first.lowest == pytest.approx(0.6)
    assert first.devices == ("PC screen1",) and found[1].devices == ("Temperature sensor",)
    assert doubt.explanation(first.chosen) == "screen 1 ON + screen 2 OFF + sensor OFF"
    assert doubt.explanation(first.runner_up) == "screen 1 OFF + screen 2 ON + sensor ON"
    assert doubt.share_doubtful(confidence) == pytest.approx(4 / 20)


def test_a_confident_recording_has_no_doubt():
    timestamp, states, confidence, runner_up = labelled()
    assert doubt.doubtful_segments(timestamp, states, confidence, runner_up) == []
    assert doubt.share_doubtful(confidence) == 0.0
    assert doubt.share_doubtful(np.zeros((0, 3))) == 0.0


def test_describe_says_when_what_and_why():
    timestamp, states, confidence, runner_up = labelled()
    confidence[2:5, :2] = 0.55
    segment = doubt.doubtful_segments(timestamp, states, confidence, runner_up)[0]
    levels = np.zeros(18)
    levels[segment.chosen], levels[segment.runner_up] = 228.0, 226.0
    text = doubt.describe(segment, levels)
    assert text.startswith("06:41:13-06:41:15 UTC (rows 3-5, 2 s): unsure of screen 1, screen 2")
    assert "Chosen: screen 1 ON + screen 2 OFF + sensor OFF; runner-up: screen 1 OFF + screen 2 ON" in text
    assert "differ by only 2 mA" in text
    levels[segment.runner_up] = 20.0
    assert "about when a switch happened" in doubt.describe(segment, levels)
    assert doubt.describe(segment).endswith("sensor ON.")


def test_rows_of_different_lengths_are_refused():
    timestamp, states, confidence, runner_up = labelled()
    with pytest.raises(ValueError, match="one entry per row"):
        doubt.doubtful_segments(timestamp[:-1], states, confidence, runner_up)


def test_shade_doubt_covers_every_panel_of_the_aggregate_figure_for_each_segment():
    from nilm import figures

    timestamp, states, confidence, runner_up = labelled()
    confidence[[3, 15], 0] = 0.5
    segments = doubt.doubtful_segments(timestamp, states, confidence, runner_up)
    fig = figures.shade_doubt(figures.aggregate_figure(timestamp, np.full(20, 230.0), states), segments)
    assert len(fig.layout.shapes) == len(segments) * 4  # the aggregate and the three device bands
    # A one-row segment still shows: half a row on either side.
    assert fig.layout.shapes[0].x0 == "2018-09-05T06:41:13.500"
    assert fig.layout.shapes[0].x1 == "2018-09-05T06:41:14.500"


def test_a_flip_inside_a_segment_never_names_one_explanation_twice():
    timestamp, states, confidence, runner_up = labelled(6)
    off, on = np.ravel_multi_index((2, 0, 0), SHAPE), np.ravel_multi_index((2, 0, 1), SHAPE)
    states[3:, 2] = 1  # the sensor switches on at row 3; the model doubts rows 2 and 3
    runner_up[:] = off
    runner_up[:3] = on
    confidence[[2, 3], 2] = 0.6
    (segment,) = doubt.doubtful_segments(timestamp, states, confidence, runner_up)
    assert segment.chosen != segment.runner_up
    assert {segment.chosen, segment.runner_up} == {off, on}
