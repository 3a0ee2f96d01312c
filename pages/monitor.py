"""Monitor page "/": the latest temperature, a live chart and the latest readings.

The server renders a snapshot (readings plus the id of the last change it includes); from then on
the browser applies pushed changes itself (assets/monitor.js), so after loading it sends no
request while readings arrive. Only a user's choice of sensor, window or unit calls the server.
"""
from datetime import datetime, timedelta, timezone

import dash
import dash_bootstrap_components as dbc
from dash import ClientsideFunction, Input, Output, State, callback, clientside_callback, dcc, html
from dash_extensions import WebSocket
from flask import current_app

from pages.monitor_alerts import fragment as alerts_fragment
from pages.monitor_view import TZ_LABELS, UNIT_LABELS, WINDOWS, view_from_query
from readings import store
from readings.buckets import bucket_size, bucket_start
from readings.feed import now_ms
from readings.figures import live_figure

dash.register_page(__name__, path="/", name="Monitor", title="Wattson · Monitor")

TABLE_ROWS = 50
# The browser keeps more rows than it shows, so a deleted row's place is filled at once.
RECENT_MAX = 2 * TABLE_ROWS


def snapshot(sensor, window_s):
    """What the browser starts from: the change id first, so nothing falls between it and the
    rows (a change read twice is applied twice, harmlessly: it names the whole row). With it,
    what the browser needs to judge staleness by the server's clock, not its own."""
    last = store.last_change_id()
    sensors = store.configured_sensors()
    return {
        "sensor": sensor,
        "window_s": window_s,
        "last": last,
        "recent_max": RECENT_MAX,
        "table_rows": TABLE_ROWS,
        **series(sensor, window_s),
        "recent": store.latest(sensor, RECENT_MAX) if sensor else [],
        "sensors": sensors,
        "period_s": current_app.config["SAMPLE_PERIOD_S"],
        "freshest": store.freshest(sensors),
        "now": now_ms(),
    }


def series(sensor, window_s):
    """The chart's data: every valid reading of a short window; for a long one the finished
    buckets and the raw readings of the open bucket (the design: readings/buckets.py)."""
    size = bucket_size(window_s)
    if not sensor:
        return {"points": [], "buckets": [], "bucket_s": size, "raw_from": None}
    if not size:
        return {"points": store.window(sensor, window_s), "buckets": [], "bucket_s": None,
                "raw_from": None}
    now = datetime.now(timezone.utc)
    raw_from = datetime.fromtimestamp(bucket_start(int(now.timestamp()), size), timezone.utc)
    start = now - timedelta(seconds=window_s + size)  # the bucket the window starts in, whole
    return {
        "points": store.window(sensor, (now - raw_from).total_seconds(), now=now),
        "buckets": store.buckets(sensor, start, raw_from, size),
        "bucket_s": size,
        "raw_from": int(raw_from.timestamp() * 1000),
    }


def figure(data):
    """The first drawing; from then on the browser draws (monitor.js `draw`), in its zone."""
    return live_figure(data["points"], "C", revision=f"{data['sensor']}-{data['window_s']}")


def toggle(component_id, options, value):
    """A row of buttons choosing one option."""
    return dbc.RadioItems(
        id=component_id,
        options=[{"label": label, "value": key} for key, label in options.items()],
        value=value,
        class_name="monitor-toggle",
        input_class_name="btn-check",
        label_class_name="btn btn-outline-primary btn-sm",
        label_checked_class_name="active",
    )


def latest_card(sensors, sensor):
    # Hidden, not absent, with one sensor: the refresh callback listens to the selector.
    selector = html.Div([
        html.Label("Sensor", className="monitor-label", htmlFor="monitor-sensor"),
        dbc.Select(id="monitor-sensor", options=sensors, value=sensor, size="sm"),
    ], className="mt-3", style=None if len(sensors) > 1 else {"display": "none"})
    return dbc.Card(
        dbc.CardBody([
            html.Div(["Latest reading · ",
                      html.Span(id="monitor-sensor-name", className="monitor-sensor-name")],
                     className="monitor-label"),
            html.Div(id="latest-temperature", className="monitor-latest"),
            html.Div(id="monitor-delta", className="monitor-delta"),
            html.Div([
                html.Span(id="monitor-age", className="fw-semibold"),
                html.Br(),
                html.Span(id="monitor-taken-at"),
            ], className="text-muted small mt-2"),
            html.Hr(),
            html.Div("In the window", className="monitor-label"),
            html.Div(id="monitor-range", className="monitor-range"),
            selector,
        ]),
        className="h-100",
    )


def chart_card(data, view):
    controls = html.Div([
        toggle("monitor-window", {key: label for key, (_, label) in WINDOWS.items()}, view["window"]),
        toggle("monitor-unit", UNIT_LABELS, view["unit"]),
        toggle("monitor-tz", TZ_LABELS, view["tz"]),
        html.Span(id="monitor-zone", className="text-muted small"),
        # live / stale / reconnecting / offline, from assets/monitor.js (feedStatus)
        dbc.Badge("reconnecting", id="feed-status", color="warning", pill=True,
                  className="monitor-badge"),
    ], className="d-flex align-items-center gap-3")
    return dbc.Card([
        dbc.CardHeader(
            html.Div([html.Span("Temperature", className="fw-semibold"), controls],
                     className="d-flex justify-content-between align-items-center flex-wrap gap-2"),
        ),
        dbc.CardBody(dcc.Graph(
            id="monitor-graph",
            figure=figure(data),
            config={"displaylogo": False, "modeBarButtonsToRemove": ["select2d", "lasso2d"]},
        ), className="p-1"),
    ], className="h-100")


def table_card():
    header = html.Thead(html.Tr([
        html.Th("Taken at", id="monitor-table-zone"),
        html.Th("Temperature", className="text-end"),
        html.Th("#", className="text-end"),
    ]))
    return dbc.Card([
        dbc.CardHeader(f"Latest {TABLE_ROWS} readings", className="fw-semibold"),
        html.Div(
            html.Table(
                [header, html.Tbody(id="monitor-table-body")],
                id="readings-table",
                className="table table-sm table-striped table-hover mb-0",
            ),
            className="monitor-table-scroll",
        ),
    ], className="mt-3")


def layout(**query):
    sensors = store.sensor_ids()
    view, problems = view_from_query(query, sensors)
    sensor = view["sensor"]
    data = snapshot(sensor, WINDOWS[view["window"]][0])
    return html.Div([
        WebSocket(id="monitor-ws"),
        # The last view chosen, for a bare "/" (assets/monitor.js `remember`).
        dcc.Store(id="monitor-prefs", storage_type="local"),
        dbc.Alert(" ".join(problems), id="monitor-url-note", color="warning", is_open=bool(problems),
                  className="py-2 small"),
        dcc.Store(id="monitor-data", data=data),
        dcc.Store(id="monitor-clock"),
        dcc.Store(id="monitor-resync"),  # set by the browser when the socket says resync
        dbc.Row([
            dbc.Col(latest_card(sensors, sensor), lg=3, md=4),
            dbc.Col(chart_card(data, view), lg=9, md=8),
        ], className="g-3"),
        alerts_fragment(sensors),
        table_card(),
    ], className="monitor-page")


@callback(
    Output("monitor-data", "data", allow_duplicate=True),
    Input("monitor-sensor", "value"),
    Input("monitor-window", "value"),
    Input("monitor-resync", "data"),
    prevent_initial_call=True,
)
def refresh(sensor, window, _resync):
    """A user's choice, or a socket that could not serve the browser's change id (a database
    reset under an open tab): a fresh snapshot; the browser carries on from its change id."""
    return snapshot(sensor, WINDOWS[window][0])


clientside_callback(
    ClientsideFunction(namespace="monitor", function_name="advance"),
    Output("monitor-data", "data", allow_duplicate=True),
    Input("monitor-ws", "message"),
    Input("monitor-clock", "data"),
    State("monitor-data", "data"),
    prevent_initial_call=True,
)

clientside_callback(
    ClientsideFunction(namespace="monitor", function_name="draw"),
    Output("monitor-graph", "figure", allow_duplicate=True),
    Input("monitor-data", "data"),
    Input("monitor-unit", "value"),
    Input("monitor-tz", "value"),
    prevent_initial_call="initial_duplicate",
)

clientside_callback(
    ClientsideFunction(namespace="monitor", function_name="slide"),
    Output("monitor-graph", "figure", allow_duplicate=True),
    Input("monitor-clock", "data"),
    State("monitor-data", "data"),
    State("monitor-tz", "value"),
    prevent_initial_call=True,
)

clientside_callback(
    ClientsideFunction(namespace="monitor", function_name="resync"),
    Input("monitor-data", "data"),
    prevent_initial_call=True,
)

clientside_callback(
    ClientsideFunction(namespace="monitor", function_name="render"),
    Output("monitor-sensor-name", "children"),
    Output("latest-temperature", "children"),
    Output("monitor-delta", "children"),
    Output("monitor-taken-at", "children"),
    Output("monitor-range", "children"),
    Output("monitor-table-body", "children"),
    Output("monitor-table-zone", "children"),
    Output("monitor-zone", "children"),
    Input("monitor-data", "data"),
    Input("monitor-unit", "value"),
    Input("monitor-tz", "value"),
)

clientside_callback(
    ClientsideFunction(namespace="monitor", function_name="showAge"),
    Output("monitor-age", "children"),
    Input("monitor-clock", "data"),
    Input("monitor-data", "data"),
)

clientside_callback(
    ClientsideFunction(namespace="monitor", function_name="watchSocket"),
    Output("monitor-ws", "url"),
    Input("monitor-ws", "state"),
    State("monitor-data", "data"),
)

clientside_callback(
    ClientsideFunction(namespace="monitor", function_name="showStatus"),
    Output("feed-status", "children"),
    Output("feed-status", "color"),
    Input("monitor-ws", "state"),
    Input("monitor-clock", "data"),
    Input("monitor-data", "data"),
)

clientside_callback(
    ClientsideFunction(namespace="monitor", function_name="remember"),
    Output("monitor-prefs", "data"),
    Input("monitor-sensor", "value"),
    Input("monitor-window", "value"),
    Input("monitor-unit", "value"),
    Input("monitor-tz", "value"),
)
