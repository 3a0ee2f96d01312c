import json

import plotly.io
import pytest

from readings.figures import PALETTE, live_figure, plotly_time, to_unit

POINTS = [
    {"id": 7, "sensor_id": "s", "taken_at": "2026-11-29T03:00:00.000Z", "temperature_c": 20.0},
    {"id": 9, "sensor_id": "s", "taken_at": "2026-11-29T03:00:10.250Z", "temperature_c": 21.5},
    {"id": 8, "sensor_id": "s", "taken_at": "2026-11-29T03:00:20.000Z", "temperature_c": -40.0},
]


def test_to_unit_converts_known_points():
    assert to_unit(0.0, "F") == 32.0
    assert to_unit(100.0, "F") == 212.0
    assert to_unit(-40.0, "F") == -40.0
    assert to_unit(21.4, "C") == 21.4


def test_to_unit_rejects_unknown_unit():
    with pytest.raises(ValueError, match="unknown unit"):
        to_unit(20.0, "K")


def test_plotly_time_drops_zone_and_keeps_milliseconds():
    assert plotly_time("2026-11-29T03:00:10.250Z") == "2026-11-29 03:00:10.250"


COLORS = {"s": PALETTE[0], "t": PALETTE[1]}


def figure_of(points, unit="C", **options):
    return live_figure({"s": points}, COLORS, unit, **options)


def test_live_figure_keeps_order_ids_and_converts():
    figure = figure_of(POINTS, unit="F", revision="s-3600-F")
    trace = figure.data[0]
    assert list(trace.customdata) == [7, 9, 8]
    assert list(trace.x) == [
        "2026-11-29 03:00:00.000",
        "2026-11-29 03:00:10.250",
        "2026-11-29 03:00:20.000",
    ]
    assert [round(y, 3) for y in trace.y] == [68.0, 70.7, -40.0]
    assert figure.layout.yaxis.title.text == "°F"
    assert figure.layout.uirevision == "s-3600-F"
    assert "°F" in trace.hovertemplate


def test_live_figure_in_celsius_keeps_values():
    trace = figure_of(POINTS).data[0]
    assert list(trace.y) == [20.0, 21.5, -40.0]
    assert figure_of(POINTS).layout.yaxis.title.text == "°C"


def test_live_figure_without_points_is_an_empty_trace():
    figure = figure_of([], unit="C")
    # The browser extends x, y and customdata, so all three exist even when empty.
    data = figure.to_plotly_json()["data"][0]
    assert (list(data["x"]), list(data["y"]), list(data["customdata"])) == ([], [], [])


def test_live_figure_serialises_arrays_as_plain_lists():
    # Not base64 typed arrays: the browser appends to these lists with a Patch.
    data = json.loads(plotly.io.to_json(figure_of(POINTS)))["data"][0]
    assert data["y"] == [20.0, 21.5, -40.0]
    assert data["customdata"] == [7, 9, 8]


def test_empty_window_shows_a_note_instead_of_axes():
    empty = figure_of([])
    assert empty.layout.annotations[0].visible is True
    assert empty.layout.xaxis.visible is False and empty.layout.yaxis.visible is False
    full = figure_of(POINTS)
    assert full.layout.annotations[0].visible is False
    assert full.layout.xaxis.visible is True and full.layout.yaxis.visible is True


def test_each_sensor_has_a_line_and_a_band_in_its_legend_group():
    figure = live_figure({"s": POINTS, "t": POINTS[:1]}, COLORS, "C")
    assert [(t.name, t.legendgroup, t.showlegend) for t in figure.data] == [
        ("s", "s", None), ("s", "s", False), ("s", "s", False),
        ("t", "t", None), ("t", "t", False), ("t", "t", False)]
    assert figure.data[3].line.color == PALETTE[1]
    assert figure.data[5].fillcolor == "rgba(214, 51, 132, 0.18)"  # PALETTE[1], translucent
    assert list(figure.data[3].customdata) == [7]
