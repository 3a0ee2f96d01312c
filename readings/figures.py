"""Plotly figures for the monitor page: plain functions of reading dicts, no Dash.

The browser redraws the figure built here from its store (assets/monitor.js `draw`), so its
shape is a contract: trace 0 the line, x = taken_at text, y = temperature in the display unit,
customdata = reading id (null for a gap's break); traces 1 and 2 a long window's max and min
band; one annotation (the empty-window note) and the axes' `visible` flags.
"""
import plotly.graph_objects as go

UNITS = {"C": "°C", "F": "°F"}


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


def live_figure(points, unit="C", revision=None):
    """The live line chart of `points` (reading dicts, oldest first) in `unit`.

    `revision` keeps the user's zoom while points are added; change it (sensor, window, unit)
    to reset the view. Invalid readings (see readings.feed.reading_dict) are left out.
    """
    points = [p for p in points if p.get("valid", True)]
    symbol = UNITS[unit]
    trace = go.Scatter(
        x=[plotly_time(p["taken_at"]) for p in points],
        y=[to_unit(p["temperature_c"], unit) for p in points],
        customdata=[p["id"] for p in points],
        mode="lines+markers",
        line={"width": 2, "color": "#0d6efd"},
        marker={"size": 6},
        connectgaps=False,
        hovertemplate=f"%{{x|%H:%M:%S}} UTC<br><b>%{{y:.1f}} {symbol}</b><extra></extra>",
        name="temperature",
    )
    empty = not points
    # A long window's min / max band, filled between; the browser fills it (monitor.js `draw`).
    band = [go.Scatter(x=[], y=[], mode="lines", line={"width": 0, "color": "#0d6efd"},
                       connectgaps=False, hoverinfo="skip", name=name, **fill)
            for name, fill in (("max", {}), ("min", {"fill": "tonexty",
                                                     "fillcolor": "rgba(13, 110, 253, 0.18)"}))]
    figure = go.Figure([trace, *band])
    figure.update_layout(
        template="plotly_white",
        margin={"l": 56, "r": 16, "t": 8, "b": 40},
        height=380,
        showlegend=False,
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
    )
    return figure
