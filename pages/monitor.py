"""Monitor page "/": every sensor on one live chart, a latest-value card each, the latest readings.

The server renders a snapshot (readings plus the id of the last change it includes); from then on
the browser applies pushed changes itself (assets/monitor*.js), so after loading it sends no
request while readings arrive, even from a sensor it has never seen. Only a user's choice of
sensors or window calls the server.
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
from readings.figures import PALETTE, live_figure
from readings.models import parse_utc

dash.register_page(__name__, path="/", name="Monitor", title="Wattson · Monitor")

TABLE_ROWS = 50
# The browser keeps more rows per sensor than it shows, so a deleted row's place is filled at once.
RECENT_MAX = 2 * TABLE_ROWS


def epoch_ms(iso_text):
    """'2026-11-29T12:00:00.250Z' (any form parse_utc reads) as epoch milliseconds; else None."""
    moment = parse_utc(iso_text)
    return None if moment is None else int(moment.timestamp() * 1000)


def snapshot(chosen, window_s):
    """What the browser starts from: the change id first, so nothing falls between it and the
    rows (a change read twice is applied twice, harmlessly: it names the whole row). With it,
    what the browser needs to judge staleness by the server's clock, not its own.

    `chosen`: the sensors to show, or none for all of them (then a sensor first seen in a
    pushed change joins the view in the browser)."""
    last = store.last_change_id()
    known = store.sensor_ids()
    shown = [s for s in known if s in chosen] if chosen else known
    configured = store.configured_sensors()
    now = datetime.now(timezone.utc)
    size = bucket_size(window_s)
    raw_from = (datetime.fromtimestamp(bucket_start(int(now.timestamp()), size), timezone.utc)
                if size else None)
    return {
        "all": not chosen,
        "shown": shown,
        "known": known,
        "configured": configured,
        "palette": PALETTE,
        "window_s": window_s,
        "last": last,
        "recent_max": RECENT_MAX,
        "table_rows": TABLE_ROWS,
        "bucket_s": size,
        "raw_from": int(raw_from.timestamp() * 1000) if size else None,
        "series": {s: series(s, window_s, size, now, raw_from) for s in shown},
        "recent": {s: store.latest(s, RECENT_MAX) for s in shown},
        "fresh": {s: epoch_ms(t) for s, t in store.freshest(configured + shown).items()},
        "period_s": current_app.config["SAMPLE_PERIOD_S"],
        "now": now_ms(),
    }


BUCKET_FIELDS = ("t", "min", "mean", "max", "n")


def columns(buckets):
    """Buckets as one list per field: the browser's dash_renderer walks every object in a
    store, and ~1,440 bucket dicts per sensor were most of a 30 d page's load."""
    return {field: [b[field] for b in buckets] for field in BUCKET_FIELDS}


def series(sensor, window_s, size, now, raw_from):
    """One sensor's chart data: every valid reading of a short window; for a long one (`size`
    seconds per bucket) the finished buckets (as columns) and the raw readings of the open
    bucket (the design: readings/buckets.py)."""
    if raw_from is None:
        return {"points": store.window(sensor, window_s, now=now), "buckets": columns([])}
    start = now - timedelta(seconds=window_s + size)  # the bucket the window starts in, whole
    return {
        "points": store.window(sensor, (now - raw_from).total_seconds(), now=now),
        "buckets": columns(store.buckets(sensor, start, raw_from, size)),
    }


def figure(data):
    """The first drawing; from then on the browser draws (monitor_chart.js `draw`), in its zone."""
    lines = {s: data["series"][s]["points"] for s in data["shown"]}
    colors = {s: PALETTE[data["known"].index(s) % len(PALETTE)] for s in data["shown"]}
    return live_figure(lines, colors, "C")


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


def chart_card(data, view):
    controls = html.Div([
        # Empty means every sensor, including one first seen after the page loaded.
        dcc.Dropdown(id="monitor-sensors", options=data["known"], value=view["sensors"], multi=True,
                     placeholder="All sensors", searchable=False, className="monitor-sensors"),
        toggle("monitor-window", {key: label for key, (_, label) in WINDOWS.items()}, view["window"]),
        toggle("monitor-unit", UNIT_LABELS, view["unit"]),
        toggle("monitor-tz", TZ_LABELS, view["tz"]),
        html.Span(id="monitor-zone", className="text-muted small"),
        # The current view as CSV (readings/export.py); its href follows the view and the clock.
        html.A("Download CSV", id="monitor-download", href="/api/readings.csv",
               className="btn btn-outline-secondary btn-sm"),
        # live / stale / reconnecting / offline, and the stale sensors (monitor_cards.js)
        dbc.Badge("reconnecting", id="feed-status", color="warning", pill=True,
                  className="monitor-badge"),
    ], className="d-flex align-items-center gap-3 flex-wrap")
    return dbc.Card([
        dbc.CardHeader(
            html.Div([html.Span("Temperature", className="fw-semibold"), controls],
                     className="d-flex justify-content-between align-items-center flex-wrap gap-2"),
        ),
        # The chart in words for screen readers (monitor_cards.js `chartSummary`).
        html.P(id="monitor-graph-summary", className="visually-hidden"),
        dbc.CardBody(html.Div(dcc.Graph(
            id="monitor-graph",
            figure=figure(data),
            # A double-click always autoranges (never "back to the first range", which would
            # look like a zoom to monitor_chart.js `zoomed`): the x-axis then slides again.
            config={"displaylogo": False, "doubleClick": "autosize",
                    "modeBarButtonsToRemove": ["select2d", "lasso2d", "resetScale2d"]},
        ), role="figure", **{"aria-label": "Temperature chart", "aria-describedby": "monitor-graph-summary"}),
            className="p-1"),
    ])


def table_card():
    header = html.Thead(html.Tr([
        html.Th("Taken at", id="monitor-table-zone"),
        html.Th("Sensor"),
        html.Th("Temperature", className="text-end"),
        html.Th("#", className="text-end"),
    ]))
    return dbc.Card([
        dbc.CardHeader(f"Latest {TABLE_ROWS} readings", className="fw-semibold"),
        html.Div(
            html.Table(
                # Rows written by the browser as plain DOM (monitor.js `fillRows`): never children.
                [header, html.Tbody(id="monitor-table-body")],
                id="readings-table",
                className="table table-sm table-striped table-hover mb-0",
            ),
            className="monitor-table-scroll",
        ),
    ], className="mt-3")


def layout(**query):
    known = store.sensor_ids()
    view, problems = view_from_query(query, known)
    data = snapshot(view["sensors"], WINDOWS[view["window"]][0])
    return html.Div([
        WebSocket(id="monitor-ws"),
        # The last view chosen, for a bare "/" (monitor_socket.js `remember`).
        dcc.Store(id="monitor-prefs", storage_type="local"),
        dbc.Alert(" ".join(problems), id="monitor-url-note", color="warning", is_open=bool(problems),
                  className="py-2 small"),
        dcc.Store(id="monitor-data", data=data),
        dcc.Store(id="monitor-clock"),
        dcc.Store(id="monitor-resync"),  # set by the browser when the socket says resync
        dcc.Store(id="monitor-thresholds"),  # set by the browser on a "wattson:thresholds" event
        # A card per shown sensor, drawn in the browser (monitor_cards.js): a new sensor gets one.
        html.Div(id="monitor-cards", className="monitor-cards mb-3"),
        chart_card(data, view),
        alerts_fragment(known),
        table_card(),
    ], className="monitor-page")


@callback(
    Output("monitor-data", "data", allow_duplicate=True),
    Input("monitor-sensors", "value"),
    Input("monitor-window", "value"),
    Input("monitor-resync", "data"),
    prevent_initial_call=True,
)
def refresh(sensors, window, _resync):
    """A user's choice, or a socket that could not serve the browser's change id (a database
    reset under an open tab): a fresh snapshot; the browser carries on from its change id."""
    return snapshot(sensors or [], WINDOWS[window][0])


def clientside(name, *dependencies, **options):
    clientside_callback(ClientsideFunction(namespace="monitor", function_name=name),
                        *dependencies, **options)


clientside("advance", Output("monitor-data", "data", allow_duplicate=True),
           Input("monitor-ws", "message"), Input("monitor-clock", "data"),
           State("monitor-data", "data"), prevent_initial_call=True)
clientside("draw", Output("monitor-graph", "figure", allow_duplicate=True),
           Input("monitor-data", "data"), Input("monitor-unit", "value"), Input("monitor-tz", "value"),
           Input("monitor-thresholds", "data"), prevent_initial_call="initial_duplicate")
clientside("slide", Output("monitor-graph", "figure", allow_duplicate=True),
           Input("monitor-clock", "data"), State("monitor-data", "data"), State("monitor-tz", "value"),
           State("monitor-unit", "value"), prevent_initial_call=True)
# A user's zoom or pan stops the slide; a double-click (autorange) starts it again.
clientside("zoomed", Output("monitor-graph", "figure", allow_duplicate=True),
           Input("monitor-graph", "relayoutData"), State("monitor-data", "data"),
           State("monitor-unit", "value"), State("monitor-tz", "value"), prevent_initial_call=True)
clientside("resync", Input("monitor-data", "data"), prevent_initial_call=True)
clientside("renderCards", Output("monitor-cards", "children"),
           Input("monitor-data", "data"), Input("monitor-unit", "value"), Input("monitor-tz", "value"),
           Input("monitor-clock", "data"))
clientside("renderTable", Output("monitor-table-zone", "children"), Output("monitor-zone", "children"),
           Input("monitor-data", "data"), Input("monitor-unit", "value"), Input("monitor-tz", "value"))
clientside("chartSummary", Output("monitor-graph-summary", "children"),
           Input("monitor-data", "data"), Input("monitor-unit", "value"), Input("monitor-tz", "value"))
clientside("sensorOptions", Output("monitor-sensors", "options"), Input("monitor-data", "data"))
clientside("downloadHref", Output("monitor-download", "href"),
           Input("monitor-data", "data"), Input("monitor-clock", "data"))
clientside("watchSocket", Output("monitor-ws", "url"),
           Input("monitor-ws", "state"), State("monitor-data", "data"))
clientside("showStatus", Output("feed-status", "children"), Output("feed-status", "color"),
           Input("monitor-ws", "state"), Input("monitor-clock", "data"), Input("monitor-data", "data"))
clientside("remember", Output("monitor-prefs", "data"),
           Input("monitor-sensors", "value"), Input("monitor-window", "value"),
           Input("monitor-unit", "value"), Input("monitor-tz", "value"), State("monitor-data", "data"))
