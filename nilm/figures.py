"""Plotly figures of recordings and predicted states, shared by the /nilm page and the HTML report.

Every function is pure: numpy arrays (or plain lists/dicts) in, a ``go.Figure`` or plain data out.
No Dash imports. States are given as integer indices into ``nilm.devices.STATES[device]``; an
``(n, 3)`` state array has its columns in ``nilm.devices.DEVICES`` order.

- ``level_histogram(current, levels, spreads, weights, state_names)``: a device's levels with its mixture.
- ``state_series(timestamp, current, states, state_names)``: one recording coloured by state.
- ``aggregate_figure(timestamp, current, states)``: the aggregate with one band of states per device.
- ``state_timeline(timestamp, states)``: each device's state over time as a step line.
- ``shares(timestamp, current, states, state_levels)`` -> dict; ``share_figure(shares_dict)``.
- ``combination_histogram(current, combinations, gain)``: levels with every joint state marked.
- ``device_current_figure(timestamp, states, state_levels, gain)``: each device's estimated
  current, stacked.
- ``stress_matrix_figure(matrix)``; ``shade_doubt(fig, segments, limit)``: issue 8's parts.
- ``CONFIG``: the plotly config (toolbar) every figure is shown with.

Words and tables about the same data are in nilm.texts.

Long series are decimated for display only (min and max per bucket, so spikes survive);
state runs and shares are computed from every row.
"""
import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from nilm.devices import DEVICES, SHAPE, STATES
from nilm.states import QUANTUM_MA

STATE_COLORS = {"OFF": "#adb5bd", "IDLE": "#f4a261", "ON": "#2a9d8f"}
STATE_CODES = {"OFF": 0, "IDLE": 1, "ON": 2}
LINE_COLOR = "#264653"
MARK_COLOR = "#e76f51"
MAX_POINTS = 4000
MAX_BINS = 1000  # bars of a level histogram
SHORT_NAMES = {"PC screen1": "S1", "PC screen2": "S2", "Temperature sensor": "T"}
BAND_NAMES = {"PC screen1": "screen 1", "PC screen2": "screen 2", "Temperature sensor": "sensor"}
FONT = dict(family="system-ui, -apple-system, Segoe UI, Roboto, sans-serif", size=13)
DEVICE_COLORS = {"PC screen1": "#2a9d8f", "PC screen2": "#e9c46a", "Temperature sensor": "#e76f51"}
# The plotly toolbar (modebar) of every figure, on the page and in the report: a few buttons,
# stacked in the right margin (_layout keeps it free), where no legend, note or title can sit.
CONFIG = {"displaylogo": False,
          "modeBarButtonsToRemove": ["select2d", "lasso2d", "zoomIn2d", "zoomOut2d", "autoScale2d"]}
MODEBAR_MARGIN = 40  # px on the right: the vertical modebar is about 30 px wide
# The look of plotly_white, in the few properties these figures use: assigning plotly_white itself
# validated its whole content anew on every figure (a third of a labelling job's figure time) and
# added 6 KB of JSON to each.
_AXIS = dict(gridcolor="#EBF0F8", linecolor="#EBF0F8", zerolinecolor="#EBF0F8", ticks="")
TEMPLATE = go.layout.Template(layout=dict(paper_bgcolor="white", plot_bgcolor="white",
                                          font=dict(color="#2a3f5f"), xaxis=_AXIS, yaxis=_AXIS))


def _layout(fig, title=None, height=None):
    """Common look. On a 390 px phone nothing may overlap: the legend sits above the plot (its
    margin grows to fit it, wrapped or not), axes make room for their labels (automargin) and
    the modebar keeps the right margin to itself."""
    fig.update_layout(
        template=TEMPLATE, font=FONT, title=title, height=height,
        margin=dict(l=60, r=MODEBAR_MARGIN, t=50 if title else 20, b=40),
        legend=dict(orientation="h", yanchor="bottom", y=1.02, xanchor="left", x=0),
        modebar=dict(orientation="v"),
    )
    # A date axis' first label, centred on its tick, ran under the y axis' "0" on a phone.
    fig.update_xaxes(automargin=True, ticklabeloverflow="hide past domain")
    fig.update_yaxes(automargin=True)
    return fig


def to_datetime(timestamp):
    """Unix seconds -> datetime64[ms] (UTC) for date axes."""
    return (np.asarray(timestamp, dtype=float) * 1e3).astype("datetime64[ms]")


def decimate(values, max_points=MAX_POINTS):
    """Sorted row indices keeping the min and max of each bucket, at most ~max_points of them."""
    values = np.asarray(values, dtype=float)
    n = len(values)
    if n <= max_points:
        return np.arange(n)
    size = int(np.ceil(2 * n / max_points))
    n_full = n // size * size
    blocks = values[:n_full].reshape(-1, size)
    starts = np.arange(0, n_full, size)
    keep = [starts + blocks.argmin(axis=1), starts + blocks.argmax(axis=1)]
    if n_full < n:
        tail = values[n_full:]
        keep.append(np.array([n_full + tail.argmin(), n_full + tail.argmax()]))
    return np.unique(np.concatenate(keep))


def runs(column):
    """Start indices and values of the runs of equal values in a 1-D array."""
    column = np.asarray(column)
    if len(column) == 0:
        return np.array([], dtype=int), column
    starts = np.concatenate([[0], np.flatnonzero(np.diff(column)) + 1])
    return starts, column[starts]


def row_durations(timestamp):
    """Seconds each row stands for; gaps are capped so a pause in logging does not count as time."""
    timestamp = np.asarray(timestamp, dtype=float)
    if len(timestamp) < 2:
        return np.ones(len(timestamp))
    step = np.diff(timestamp)
    typical = float(np.median(step)) or 1.0
    return np.minimum(np.append(step, typical), 5 * typical)


def _counts(current, upper):
    """(counts, bin centres, bin width) up to upper mA, on the sensor's quantisation grid.

    A bin is one meter step, or several when the range is wide: the figure's size must follow
    MAX_BINS, never the values (one bar per step up to 1e8 mA was a 113 MB response).
    """
    step = QUANTUM_MA * max(1.0, np.ceil((upper / QUANTUM_MA + 1) / MAX_BINS))
    edges = np.arange(-QUANTUM_MA / 2, upper + step, step)
    counts, edges = np.histogram(current, bins=edges)
    return counts, (edges[:-1] + edges[1:]) / 2, step


def _display_upper(current, floor=0.0):
    """Right edge of a level axis: covers the bulk and floor, leaves rare inrush spikes out."""
    current = np.asarray(current, dtype=float)
    bulk = float(np.percentile(current, 99.5)) if len(current) else 0.0
    return max(bulk, floor) + 3 * QUANTUM_MA


def _spike_note(fig, current, upper):
    hidden = int(np.sum(np.asarray(current) > upper))
    if hidden:
        fig.add_annotation(
            # Two short lines: on a phone one long line ran over the y axis' ticks.
            text=f"{hidden} sample(s) above {upper:.0f} mA<br>not shown (inrush spikes)",
            xref="paper", yref="paper", x=1, y=0.98, showarrow=False, xanchor="right",
            yanchor="top", align="right", bgcolor="rgba(255,255,255,0.8)",
            font=dict(size=11, color="#6c757d"),
        )


def level_histogram(current, levels, spreads, weights, state_names, title=None):
    """Histogram of a device's maximum current with each mixture component drawn over it.

    levels, spreads, weights: mean, standard deviation and weight of each component (as in
    nilm.states.DeviceStates), ordered like state_names.
    """
    current = np.asarray(current, dtype=float)
    means, sigmas, weights = (np.asarray(a, dtype=float) for a in (levels, spreads, weights))
    upper = _display_upper(current, float(np.max(means + 3 * sigmas)))
    counts, centres, width = _counts(current, upper)
    fig = go.Figure(go.Bar(
        x=centres, y=counts, width=width * 0.9, name="samples",
        marker_color="#ced4da", hovertemplate="%{x:.2f} mA: %{y} samples<extra></extra>",
    ))
    grid = np.linspace(0, upper, 600)
    for name, mu, sigma, weight in zip(state_names, means, sigmas, weights):
        sigma = max(sigma, QUANTUM_MA / 4)  # a point mass would draw as an invisible needle
        with np.errstate(over="ignore"):  # far out on a huge axis the density is 0 anyway
            density = np.exp(-0.5 * ((grid - mu) / sigma) ** 2) / (sigma * np.sqrt(2 * np.pi))
        fig.add_trace(go.Scatter(
            x=grid, y=len(current) * weight * QUANTUM_MA * density, mode="lines",
            name=f"{name}: {mu:.1f} mA", line=dict(color=STATE_COLORS[name], width=2.5),
            hoverinfo="skip",
        ))
    _spike_note(fig, current, upper)
    fig.update_xaxes(title="maximum current (mA)", range=[-QUANTUM_MA, upper])
    fig.update_yaxes(title="samples")
    return _layout(fig, title, height=320)


def state_series(timestamp, current, states, state_names, title=None):
    """A recording's current over time, each sample coloured by its state."""
    current = np.asarray(current, dtype=float)
    states = np.asarray(states)
    keep = decimate(current)
    times = to_datetime(np.asarray(timestamp)[keep])
    fig = go.Figure(go.Scatter(
        x=times, y=current[keep], mode="lines", line=dict(color="#dee2e6", width=1),
        showlegend=False, hoverinfo="skip",
    ))
    for index, name in enumerate(state_names):
        mask = states[keep] == index
        fig.add_trace(go.Scatter(
            x=times[mask], y=current[keep][mask], mode="markers", name=name,
            marker=dict(color=STATE_COLORS[name], size=5),
            hovertemplate=f"%{{x}}<br>%{{y:.2f}} mA<br>{name}<extra></extra>",
        ))
    upper = _display_upper(current)
    _spike_note(fig, current, upper)
    fig.update_yaxes(title="maximum current (mA)", range=[-QUANTUM_MA, upper])
    return _layout(fig, title, height=320)


def _state_legend(fig, row=1, col=1):
    """Legend entries for the state colours (heatmaps have none of their own)."""
    for name, color in STATE_COLORS.items():
        fig.add_trace(go.Scatter(
            x=[None], y=[None], mode="markers", name=name,
            marker=dict(color=color, size=12, symbol="square"),
        ), row=row, col=col)


def _band(timestamp, column, device):
    """One device's states as a one-row heatmap whose bricks are the runs of equal state."""
    starts, values = runs(column)
    durations = row_durations(timestamp)
    edges = np.append(np.asarray(timestamp, dtype=float)[starts],
                      float(timestamp[-1]) + durations[-1])
    names = np.array(STATES[device])[values]
    codes = np.array([STATE_CODES[name] for name in STATES[device]])[values]
    colors = [STATE_COLORS[name] for name in ("OFF", "IDLE", "ON")]
    scale = [[0, colors[0]], [1 / 3, colors[0]], [1 / 3, colors[1]], [2 / 3, colors[1]],
             [2 / 3, colors[2]], [1, colors[2]]]
    return go.Heatmap(
        x=to_datetime(edges), y=[device], z=codes[None, :], text=names[None, :], zmin=-0.5, zmax=2.5,
        colorscale=scale, showscale=False, xgap=0,
        hovertemplate=f"{device}: %{{text}}<br>from %{{x}}<extra></extra>",
    )


def aggregate_figure(timestamp, current, states, title=None):
    """The aggregate current over time, with one band per device coloured by its predicted state."""
    current = np.asarray(current, dtype=float)
    states = np.asarray(states)
    fig = make_subplots(rows=1 + len(DEVICES), cols=1, shared_xaxes=True, vertical_spacing=0.02,
                        row_heights=[0.64] + [0.12] * len(DEVICES))
    keep = decimate(current)
    fig.add_trace(go.Scatter(
        x=to_datetime(np.asarray(timestamp)[keep]), y=current[keep], mode="lines",
        name="aggregate", line=dict(color=LINE_COLOR, width=1.2), showlegend=False,
        hovertemplate="%{x}<br>%{y:.2f} mA<extra></extra>",
    ), row=1, col=1)
    for row, device in enumerate(DEVICES, start=2):
        fig.add_trace(_band(timestamp, states[:, row - 2], device), row=row, col=1)
        # Short names on the axis: "Temperature sensor" took a third of a phone's width.
        fig.update_yaxes(tickvals=[device], ticktext=[BAND_NAMES[device]], row=row, col=1)
    _state_legend(fig)
    fig.update_yaxes(title="max current (mA)", row=1, col=1)
    fig.update_yaxes(range=[0, _display_upper(current)], row=1, col=1)
    _spike_note(fig, current, _display_upper(current))
    return _layout(fig, title, height=460)


def state_timeline(timestamp, states, title=None):
    """Each device's state over time as a step line, one small panel per device."""
    states = np.asarray(states)
    fig = make_subplots(rows=len(DEVICES), cols=1, shared_xaxes=True, vertical_spacing=0.06,
                        subplot_titles=DEVICES)
    for row, device in enumerate(DEVICES, start=1):
        starts, values = runs(states[:, row - 1])
        x = np.append(np.asarray(timestamp, dtype=float)[starts], timestamp[-1])
        names = list(np.array(STATES[device])[np.append(values, values[-1:])])
        fig.add_trace(go.Scatter(
            x=to_datetime(x), y=names, mode="lines", line=dict(shape="hv", color=LINE_COLOR),
            showlegend=False, hovertemplate=f"{device}: %{{y}}<br>from %{{x}}<extra></extra>",
        ), row=row, col=1)
        fig.update_yaxes(type="category", categoryorder="array",
                         categoryarray=list(STATES[device]), row=row, col=1)
    return _layout(fig, title, height=120 + 110 * len(DEVICES))


def device_current_figure(timestamp, states, state_levels, gain=1.0, title=None):
    """Each device's estimated current over time (the level of its state x gain), stacked. The
    measured current is the aggregate figure's: drawn here too it doubled the figure's size."""
    states = np.asarray(states)
    timestamp = np.asarray(timestamp, dtype=float)
    starts, _ = runs(np.ravel_multi_index(states.T, SHAPE)) if len(states) else (np.zeros(0, int), None)
    if len(starts) > MAX_POINTS // 2:  # display only: a flickering file keeps an even sample
        starts = starts[np.linspace(0, len(starts) - 1, MAX_POINTS // 2).astype(int)]
    rows = np.append(starts, len(states) - 1)
    x = to_datetime(timestamp[rows])
    fig = go.Figure()
    for i, device in enumerate(DEVICES):
        level = np.asarray(state_levels[device], dtype=float)[states[rows, i]] * gain
        fig.add_trace(go.Scatter(
            x=x, y=np.round(level, 1), mode="lines", name=device, stackgroup="devices",
            line_shape="hv", line=dict(width=0.5, color=DEVICE_COLORS[device]),
            hovertemplate=f"{device}: %{{y:.0f}} mA<br>from %{{x}}<extra></extra>",
        ))
    fig.update_yaxes(title="estimated current (mA)", rangemode="tozero")
    return _layout(fig, title, height=320)


def shares(timestamp, current, states, state_levels):
    """Time share and share of charge (current x time) per device and state.

    The measured aggregate is split between the devices in proportion to the level of the state
    each is in, so the charges add up to the aggregate's. Returns {device: {state: {"time": s,
    "time_share": fraction of the recording, "charge_mah": mAh, "charge_share": fraction of all}}}.
    """
    states = np.asarray(states)
    current = np.asarray(current, dtype=float)
    seconds = row_durations(timestamp)
    levels = np.column_stack([np.asarray(state_levels[device], dtype=float)[states[:, i]]
                              for i, device in enumerate(DEVICES)])
    total_level = levels.sum(axis=1, keepdims=True)
    portion = np.divide(levels, total_level, out=np.zeros_like(levels), where=total_level > 0)
    charge = portion * (current * seconds)[:, None] / 3600.0
    all_charge = float(charge.sum()) or 1.0
    all_time = float(seconds.sum()) or 1.0
    result = {}
    for i, device in enumerate(DEVICES):
        result[device] = {}
        for index, name in enumerate(STATES[device]):
            mask = states[:, i] == index
            result[device][name] = {
                "time": float(seconds[mask].sum()),
                "time_share": float(seconds[mask].sum()) / all_time,
                "charge_mah": float(charge[mask, i].sum()),
                "charge_share": float(charge[mask, i].sum()) / all_charge,
            }
    return result


def share_figure(share_data, title=None):
    """Stacked bars: share of time per device and state (top panel), and share of the charge."""
    # One panel above the other, each named by its y axis title: side by side, two subplot
    # titles (or x axis titles) overlapped each other on any screen narrower than about 900 px.
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, vertical_spacing=0.12)
    devices = list(share_data)
    for name, color in STATE_COLORS.items():
        for row, key in ((1, "time_share"), (2, "charge_share")):
            values = [share_data[d].get(name, {}).get(key) for d in devices]
            extra = [share_data[d].get(name, {}).get("charge_mah") for d in devices]
            fig.add_trace(go.Bar(
                y=devices, x=[100 * v if v is not None else None for v in values],
                customdata=extra, orientation="h", name=name, marker_color=color,
                legendgroup=name, showlegend=row == 1,
                hovertemplate=(f"%{{y}} {name}: %{{x:.1f}} %"
                               + ("<br>%{customdata:.3f} mAh" if row == 2 else "")
                               + "<extra></extra>"),
            ), row=row, col=1)
    fig.update_layout(barmode="stack")
    fig.update_xaxes(rangemode="tozero")
    fig.update_xaxes(title="%", row=2, col=1)
    fig.update_yaxes(autorange="reversed", tickvals=devices, ticktext=[BAND_NAMES.get(d, d) for d in devices])
    fig.update_yaxes(title="time", row=1, col=1)
    fig.update_yaxes(title="charge", row=2, col=1)
    return _layout(fig, title, height=360)


def combination_name(combination):
    """'S1 ON · S2 IDLE · T OFF' for a tuple of state indices in DEVICES order."""
    return " · ".join(f"{SHORT_NAMES[device]} {STATES[device][index]}"
                      for device, index in zip(DEVICES, combination))


def combination_histogram(current, combinations, gain=1.0, title=None):
    """Histogram of the aggregate's levels with the expected level of every joint state marked.

    combinations: [(tuple of state indices, expected mA without gain), ...]; the marks sit at
    expected x gain, where the model says the aggregate actually lands.
    """
    current = np.asarray(current, dtype=float)
    expected = np.array([level for _, level in combinations], dtype=float) * gain
    upper = _display_upper(current, float(expected.max()) if len(expected) else 0.0)
    counts, centres, width = _counts(current, upper)
    fig = go.Figure(go.Bar(
        x=centres, y=counts, width=width * 0.9, name="samples", marker_color="#ced4da",
        hovertemplate="%{x:.2f} mA: %{y} samples<extra></extra>",
    ))
    top = float(counts.max()) if len(counts) else 1.0
    for level in expected:
        fig.add_shape(type="line", x0=level, x1=level, y0=0, y1=top * 1.05,
                      line=dict(color=MARK_COLOR, width=1, dash="dot"))
    fig.add_trace(go.Scatter(
        x=expected, y=np.full(len(expected), top * 1.08), mode="markers",
        marker=dict(color=MARK_COLOR, symbol="triangle-down", size=9),
        name="expected level",
        text=[combination_name(c) for c, _ in combinations],
        hovertemplate="%{text}<br>%{x:.1f} mA<extra></extra>",
    ))
    _spike_note(fig, current, upper)
    fig.update_xaxes(title="maximum current (mA)", range=[-QUANTUM_MA, upper])
    fig.update_yaxes(title="samples")
    return _layout(fig, title, height=360)


# ---- The stress matrix and the doubtful segments (issue 8), for the report and the /nilm page ----
DOUBT_COLOR = "rgba(231, 111, 81, 0.22)"
# Column names on two short lines, so that six columns fit a phone's width.
MATRIX_COLUMNS = (
    ("model<br>mean", lambda s: s["model"]["mean"]),
    ("model<br>worst", lambda s: s["model"]["worst"]),
    ("without<br>tree", lambda s: s["model_no_tree"]["mean"]),
    ("near<br>ceiling", lambda s: s["ceiling"]["mean"]),
    ("accurate<br>if \u2265 0.9", lambda s: s["confident_accuracy"]),
    ("errors<br>flagged", lambda s: s["errors_flagged"]),
)


def stress_matrix_figure(matrix, title=None):
    """Heatmap of the stress matrix (nilm.stress_matrix.run): one row per scenario, red below 0.95."""
    scenarios = matrix["scenarios"]
    z = np.array([[np.nan if f(s) is None else f(s) for _, f in MATRIX_COLUMNS] for s in scenarios])
    text = [["-" if np.isnan(v) else f"{v:.3f}" for v in row] for row in z]
    fig = go.Figure(go.Heatmap(
        z=z, x=[name for name, _ in MATRIX_COLUMNS], y=[s["name"] for s in scenarios], text=text,
        texttemplate="%{text}", textfont=dict(size=11), zmin=0.85, zmax=1.0, colorscale="RdYlGn",
        showscale=False, hovertemplate="%{y}: %{x} %{text}<extra></extra>",
    ))
    fig.update_yaxes(autorange="reversed")
    fig.update_xaxes(side="top")
    return _layout(fig, title, height=100 + 28 * len(scenarios))


def shade_doubt(fig, segments, pad_s=0.5, limit=None):
    """Shade each doubtful segment (nilm.doubt.Doubt) on a figure with a time x axis, over every
    panel of a figure made with subplots (aggregate_figure); returns the figure. With a limit, only
    the `limit` longest segments: a shape per segment and panel must not outgrow a long file."""
    if limit is not None and len(segments) > limit:
        segments = sorted(segments, key=lambda d: d.rows)[-limit:]
    # The rectangles are written out, not added with add_vrect(row="all"): that resolves the
    # subplot grid on every call, 2 s a segment on the aggregate figure.
    shapes = []
    for d in segments:
        x0, x1 = (str(x) for x in to_datetime([d.start - pad_s, d.end + pad_s]))
        shapes += [dict(type="rect", xref=x, yref=f"{y} domain", x0=x0, x1=x1, y0=0, y1=1,
                        fillcolor=DOUBT_COLOR, line_width=0, layer="below")
                   for x, y in _axis_pairs(fig)]
    fig.update_layout(shapes=[*fig.layout.shapes, *shapes])
    return fig


def _axis_pairs(fig):
    """[("x", "y"), ("x2", "y2"), ...]: the axes of each panel of a figure."""
    if fig._grid_ref is None:
        return [("x", "y")]
    keys = [cell[0].layout_keys for row in fig._grid_ref for cell in row if cell]
    return [(x.replace("axis", ""), y.replace("axis", "")) for x, y in keys]
