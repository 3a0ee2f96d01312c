"""The monitor's thresholds and alerts (issue 10 item 4): a form for each sensor's band, a live
banner for every open alert and the alert log. Not a page: pages/monitor.py places fragment().

The worker raises and ends alerts (readings/alerts.py); this only shows them and saves bands. The
server renders a snapshot; from then on /ws/alerts pushes every start, end and band change, which
assets/alerts.js folds into the alerts-data store and draws. It also keeps the chart's contract:
window.wattsonThresholds = {sensor: {low_c, high_c}} and the "wattson:thresholds" event.
"""
import logging
import math

import dash_bootstrap_components as dbc
import redis
from dash import (
    ClientsideFunction,
    Input,
    Output,
    Patch,
    State,
    callback,
    clientside_callback,
    dcc,
    html,
    no_update,
)
from dash_extensions import WebSocket

from readings import alerts, redis_client

log = logging.getLogger(__name__)
LOG_ROWS = 50


def parse_limit(name, text, unit):
    """A limit typed on the page, in degrees C (None when empty); ThresholdError if no number."""
    text = (text or "").strip()
    if not text:
        return None
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise alerts.ThresholdError(f"the {name} limit {text!r} is not a number")
    return (value - 32) * 5 / 9 if unit == "F" else value


def band_from_form(low_text, high_text, unit):
    """(low_c, high_c) as the form gives them, checked as the domain checks a band."""
    return alerts.validate_band(parse_limit("low", low_text, unit), parse_limit("high", high_text, unit))


def saved_message(sensor, low_c, high_c):
    if low_c is None and high_c is None:
        return f"{sensor}: no band (no high or low alerts)."
    parts = [f"low {low_c:g} °C" if low_c is not None else "no low limit",
             f"high {high_c:g} °C" if high_c is not None else "no high limit"]
    return f"{sensor}: saved, {', '.join(parts)}."


def announce():
    """Other pages learn a new band at once; if Redis is down, on their next (re)connect."""
    try:
        alerts.announce_thresholds(redis_client())
    except redis.RedisError as error:
        log.warning("could not announce a band change on Redis: %s", error)


def band_form(sensors):
    field = dict(type="text", inputMode="decimal", className="form-control form-control-sm",
                 autoComplete="off")
    return html.Div([
        html.Div([
            html.Label("Sensor", htmlFor="alerts-sensor", className="monitor-label"),
            dbc.Select(id="alerts-sensor", options=sensors, value=sensors[0] if sensors else None,
                       size="sm"),
        ], className="alerts-field"),
        html.Div([
            html.Label(["Low limit ", html.Span(id="alerts-low-unit")], htmlFor="alerts-low",
                       className="monitor-label"),
            dcc.Input(id="alerts-low", placeholder="none", **field),
        ], className="alerts-field"),
        html.Div([
            html.Label(["High limit ", html.Span(id="alerts-high-unit")], htmlFor="alerts-high",
                       className="monitor-label"),
            dcc.Input(id="alerts-high", placeholder="none", **field),
        ], className="alerts-field"),
        dbc.Button("Save band", id="alerts-save", size="sm", color="primary", className="mt-3"),
    ], className="d-flex flex-wrap align-items-start gap-3")


def log_table():
    header = html.Thead(html.Tr([html.Th("Sensor"), html.Th("Kind"),
                                 html.Th("Started", id="alerts-log-started"),
                                 html.Th("Ended", id="alerts-log-ended"), html.Th("Details")]))
    # Rows written by the browser as plain DOM (monitor.js `fillRows`): never children.
    return html.Div(html.Table([header, html.Tbody(id="alerts-log-body")], id="alerts-log",
                               className="table table-sm table-striped mb-0"),
                    className="monitor-table-scroll")


def fragment(sensors):
    """The thresholds form and the alert log, below the chart; the banner floats at the top."""
    return html.Div([
        WebSocket(id="alerts-ws"),
        dcc.Store(id="alerts-data", data=alerts.page_state(LOG_ROWS)),
        html.Div(id="alerts-banner", className="alerts-banner",
                 style={"position": "fixed", "top": "0.5rem", "left": "50%",
                        "transform": "translateX(-50%)", "width": "min(96vw, 60rem)",
                        "zIndex": 1080}),
        dbc.Card([
            dbc.CardHeader("Thresholds and alerts", className="fw-semibold"),
            dbc.CardBody([
                band_form(sensors),
                html.Div(id="alerts-band-message", className="small mt-2", role="status"),
                html.Hr(),
                html.Div("Alert log, newest first", className="monitor-label"),
                log_table(),
            ]),
        ], className="mt-3"),
    ], className="alerts-fragment")


@callback(
    Output("alerts-band-message", "children"),
    Output("alerts-band-message", "className"),
    Output("alerts-data", "data", allow_duplicate=True),
    Input("alerts-save", "n_clicks"),
    State("alerts-sensor", "value"),
    State("alerts-low", "value"),
    State("alerts-high", "value"),
    State("monitor-unit", "value"),
    prevent_initial_call=True,
)
def save_band(_clicks, sensor, low_text, high_text, unit):
    """Store the band; a bad one is refused with the reason, the stored band and the form kept."""
    try:
        low_c, high_c = band_from_form(low_text, high_text, unit)
        alerts.set_threshold(sensor, low_c, high_c)
    except alerts.ThresholdError as error:
        return f"Not saved: {error}.", "small mt-2 text-danger fw-semibold", no_update
    announce()
    state = Patch()
    state["thresholds"] = alerts.thresholds_json()
    return saved_message(sensor, low_c, high_c), "small mt-2 text-success", state


clientside_callback(
    ClientsideFunction(namespace="alerts", function_name="advance"),
    Output("alerts-data", "data", allow_duplicate=True),
    Input("alerts-ws", "message"),
    State("alerts-data", "data"),
    prevent_initial_call=True,
)

clientside_callback(
    ClientsideFunction(namespace="alerts", function_name="render"),
    Output("alerts-banner", "children"),
    Output("alerts-log-started", "children"),
    Output("alerts-log-ended", "children"),
    Input("alerts-data", "data"),
    Input("monitor-tz", "value"),
)

clientside_callback(
    ClientsideFunction(namespace="alerts", function_name="publishThresholds"),
    Input("alerts-data", "data"),
)

clientside_callback(
    ClientsideFunction(namespace="alerts", function_name="fillBand"),
    Output("alerts-low", "value"),
    Output("alerts-high", "value"),
    Output("alerts-low-unit", "children"),
    Output("alerts-high-unit", "children"),
    Input("alerts-sensor", "value"),
    Input("monitor-unit", "value"),
    State("alerts-data", "data"),
)

clientside_callback(
    ClientsideFunction(namespace="alerts", function_name="watchSocket"),
    Output("alerts-ws", "url"),
    Input("alerts-ws", "state"),
)
