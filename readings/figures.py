"""Plotly figures for the monitor page: plain functions of reading dicts, no Dash.

The browser redraws the figure built here from its store (assets/monitor_chart.js `draw`), so its
shape is a contract: three traces per sensor, in the order shown (sensor i: trace 3i the line,
3i + 1 and 3i + 2 a long window's max and min band, all in the sensor's legend group, named
after it); x = taken_at text, y = temperature in the display unit, customdata = reading id (null
for a gap's break); one annotation (the empty-window note), the axes' `visible` flags, and
`shapes` for the threshold bands.
"""
import plotly.graph_objects as go

UNITS = {"C": "°C", "F": "°F"}
# A sensor's colour is PALETTE[its index among all sensors % len]: stable across views.
PALETTE = ["#0d6efd", "#d63384", "#198754", "#fd7e14", "#6f42c1", "#20c997", "#6c757d", "#b02a37"]


def to_unit(celsius, unit):
    """A Celsius value in the display unit ("C" or "F")."""
    if unit == "F":
        return celsius * 9 / 5 + 32
    if unit == "C":
        return celsius
    raise ValueError(f"unknown unit {unit!r}; expected one of {sorted(UNITS)}")


def plotly_time(taken_at):
    """'2026-11-29T03:00:00.123Z' as plotly reads it: UTC wall-clock time, no zone suffix."""
    return taken_at.rstrip("Z").replace("T", " ")


def translucent(color, alpha):
    """'#0d6efd' as 'rgba(13, 110, 253, alpha)'."""
    red, green, blue = (int(color[i:i + 2], 16) for i in (1, 3, 5))
    return f"rgba({red}, {green}, {blue}, {alpha})"


def sensor_traces(sensor, points, color, unit):
    """A sensor's line of `points` (reading dicts, oldest first; invalid ones left out, see
    readings.feed.reading_dict) and its empty min / max band, filled between (the browser fills
    it for long windows)."""
    points = [p for p in points if p.get("valid", True)]
    line = go.Scatter(
        x=[plotly_time(p["taken_at"]) for p in points],
        y=[to_unit(p["temperature_c"], unit) for p in points],
        customdata=[p["id"] for p in points],
        mode="lines+markers",
        line={"width": 2, "color": color},
        marker={"size": 6},
        connectgaps=False,
        hovertemplate=f"{sensor} %{{x|%H:%M:%S}} UTC<br><b>%{{y:.1f}} {UNITS[unit]}</b><extra></extra>",
        name=sensor,
        legendgroup=sensor,
        uid=f"{sensor}/line",  # as monitor_chart.js names it: plotly matches traces by uid
    )
    band = [go.Scatter(x=[], y=[], mode="lines", line={"width": 0, "color": color},
                       connectgaps=False, hoverinfo="skip", name=sensor, legendgroup=sensor,
                       showlegend=False, uid=f"{sensor}/{edge}", **fill)
            for edge, fill in (("max", {}),
                               ("min", {"fill": "tonexty", "fillcolor": translucent(color, 0.18)}))]
    return [line, *band]


def live_figure(lines, colors, unit="C", revision="monitor"):
    """The live chart: `lines` maps each sensor to its points, `colors` each sensor to a colour.

    `revision` keeps the user's zoom and the legend's choices across redraws (the browser stops
    moving the x-axis while the user is zoomed, see monitor_chart.js)."""
    traces = [t for sensor, points in lines.items()
              for t in sensor_traces(sensor, points, colors[sensor], unit)]
    empty = not any(p.get("valid", True) for points in lines.values() for p in points)
    figure = go.Figure(traces)
    symbol = UNITS[unit]
    figure.update_layout(
        template="plotly_white",
        margin={"l": 56, "r": 16, "t": 32, "b": 40},
        height=380,
        showlegend=True,
        # Above the plot on the left: the mode bar takes the right.
        legend={"orientation": "h", "yanchor": "bottom", "y": 1.0, "xanchor": "left", "x": 0},
        uirevision=revision,
        # Without points the axes would show an arbitrary year: a note instead. The browser
        # flips these three `visible` flags as points come and go.
        xaxis={"title": {"text": "time (UTC)"}, "type": "date", "visible": not empty},
        yaxis={"title": {"text": symbol}, "visible": not empty},
        annotations=[{
            "text": "No readings in this window yet",
            "showarrow": False, "xref": "paper", "yref": "paper", "x": 0.5, "y": 0.5,
            "font": {"size": 16, "color": "#6c757d"}, "visible": empty,
        }],
        shapes=[],
    )
    return figure
