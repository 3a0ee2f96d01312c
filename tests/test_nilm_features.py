"""The feature builder on hand-made series."""
import numpy as np

from nilm.features import FEATURE_NAMES, NEVER, build_features, segment, switch_signs

COL = {name: i for i, name in enumerate(FEATURE_NAMES)}


def steps(*parts):
    """A series of (level, length) parts."""
    return np.concatenate([np.full(n, float(level)) for level, n in parts])


def test_segments_start_at_each_level_change():
    x = steps((0, 30), (36.6, 40), (244, 50), (220, 30))
    assert segment(x).tolist() == [0, 30, 70, 120]


def test_a_one_step_wobble_is_not_a_segment():
    x = steps((207.5, 40), (195.3, 1), (207.5, 39))
    assert segment(x).tolist() == [0]


def test_a_small_step_a_few_rows_after_a_large_one_is_a_minor_step():
    # The sensor switching off (~2 meter steps) 9 rows after a screen switched on: the large
    # step's window differences hide it from segment, minor_steps finds it.
    x = steps((48.8, 30), (268.6, 9), (244.1, 30), (36.6, 30))
    signs = switch_signs(x)
    assert signs.starts.tolist() == segment(x).tolist() and 39 not in signs.starts
    assert signs.minor.tolist() == [39]


def test_steps_segment_finds_and_wobbles_are_no_minor_steps():
    for x in (steps((48.8, 30), (268.6, 30), (244.1, 30)), steps((207.5, 40), (195.3, 1), (207.5, 39))):
        assert switch_signs(x).minor.size == 0


def test_segment_levels_lengths_and_neighbours():
    x = steps((0, 30), (36.6, 40), (244, 50))
    F = build_features(x)
    row = 50  # inside the middle segment
    assert F[row, COL["level"]] == np.float32(36.6)
    assert F[row, COL["prev_level"]] == 0 and F[row, COL["next_level"]] == np.float32(244)
    assert F[row, COL["prev2_level"]] == -1 and F[row, COL["next2_level"]] == -1
    assert F[row, COL["seg_length"]] == 40 and F[row, COL["seg_position"]] == 20
    assert F[0, COL["prev_level"]] == -1


def test_an_inrush_at_a_segment_start_is_flagged_and_counted_from():
    x = steps((200, 30), (224, 40))
    x[30] = 3000.0
    F = build_features(x)
    assert F[40, COL["inrush_at_start"]] == 1 and F[10, COL["inrush_at_start"]] == 0
    assert F[10, COL["inrush_at_next"]] == 1
    assert F[35, COL["since_inrush"]] == 5 and F[10, COL["since_inrush"]] == NEVER
    # The spike does not move the segment's level.
    assert abs(F[40, COL["level"]] - 224) < 1


def test_rolling_features_and_shape():
    x = steps((0, 10), (100, 10))
    F = build_features(x)
    assert F.shape == (20, len(FEATURE_NAMES)) and F.dtype == np.float32
    assert F[3, COL["median5"]] == 0 and F[16, COL["median5"]] == 100
    assert F[10, COL["lead_mean"]] == 100 and F[10, COL["trail_mean"]] == 0  # the 6 after vs before
