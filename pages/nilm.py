"""/nilm: upload an aggregate recording, see which device was in which state, download the labels.

Wiring only. The browser posts the file itself to POST /nilm/upload (labelling/routes.py, from
assets/nilm.js), which streams it into the job store and queues a job on the `labelling` workers;
the job id lands in nilm-job, and show_job waits on the server for the job's end (labelling/jobs.py
says why a server-side wait) and draws the stored analysis. The download is GET
/nilm/download/<job>, from whichever web process: the result lives in the database, not here.
"""
import json
import logging

import dash
import dash_bootstrap_components as dbc
from dash import Input, Output, State, callback, clientside_callback, ctx, dcc, html, no_update

from labelling import jobs, routes, store
from labelling.analysis import GRAPHS
from nilm.devices import MAIN_GLOB, data_dir, find_file
from nilm.evaluate import load_results
from nilm.figures import evaluation_rows

dash.register_page(__name__, path="/nilm", name="NILM", title="Wattson · NILM")

log = logging.getLogger(__name__)

MAX_BYTES = store.UPLOAD_MAX_BYTES
GRAPH_CONFIG = {"displaylogo": False}


def sample_file():
    directory = data_dir()
    return find_file(directory, MAIN_GLOB) if directory.is_dir() else None


# ---- what the page shows ----

def summary_cards(items):
    return dbc.Row([
        dbc.Col(dbc.Card(dbc.CardBody([
            html.Span(label, className="nilm-label"),
            html.Span(value, className="nilm-value"),
        ])), xs=6, md=True) for label, value in items
    ], className="g-2 mb-3", id="nilm-summary-cards")


def evaluation_section():
    try:
        header, rows = evaluation_rows(load_results())
    except (OSError, ValueError, KeyError) as error:
        log.warning("evaluation results unavailable: %s", error)
        return dbc.Alert("The model's evaluation results are not available.", color="secondary")
    return dbc.Table(
        [html.Thead(html.Tr([html.Th(h) for h in header])),
         html.Tbody([html.Tr([html.Td(cell) for cell in row]) for row in rows])],
        id="nilm-evaluation-table", striped=True, hover=True, size="sm", responsive=True,
    )


def graph_card(key, title, help_text):
    return dbc.Card([
        dbc.CardHeader(title),
        dbc.CardBody([html.P(help_text, className="text-muted small mb-1"),
                      dcc.Graph(id=f"nilm-{key}", config=GRAPH_CONFIG)]),
    ], className="mb-3")


def layout(**_):
    sample = sample_file()
    # dcc.Upload for its drop zone and file dialog only: assets/nilm.js takes the file before the
    # component reads it (no base64, no Dash body) and posts it to the upload route.
    upload = html.Div(dcc.Upload(
        id="nilm-upload", max_size=MAX_BYTES, multiple=False, className="nilm-upload",
        children=html.Div(["Drop an aggregate recording here, or ",
                           html.A("choose a file", className="link-primary"),
                           html.Div("CSV: timestamp, maximum current (mA), effective current (mA)"
                                    " · up to 50 MB", className="text-muted small")]),
    ), id="nilm-upload-zone", **{"data-url": "/nilm/upload", "data-max-bytes": str(MAX_BYTES)})
    results = html.Div(id="nilm-results", className="d-none", children=[
        html.Div(id="nilm-summary"),
        dbc.Button("Download labelled CSV", id="nilm-download-button", color="primary",
                   className="mb-3"),
        graph_card("aggregate", "Aggregate current and predicted states",
                   "The measured maximum current; below it, each device's state over time."),
        graph_card("timeline", "State timeline per device", "When each device changed state."),
        graph_card("shares", "Time and charge per device and state",
                   "Charge splits the measured current between the devices in proportion to "
                   "their state levels."),
        graph_card("levels", "Current levels and the expected level of each state combination",
                   "Marks sit at the model's level for every joint state, times the estimated "
                   "gain; marks close together are combinations one sample cannot tell apart."),
    ])
    return html.Div([
        html.H2("Which device was on, and when?", className="mb-1"),
        html.P("Upload a recording of the mains current; the model labels every row with the "
               "state of PC screen 1, PC screen 2 and the temperature sensor.",
               className="text-muted"),
        dbc.Row([
            dbc.Col(upload, md=9),
            dbc.Col(dbc.Button("Try the sample", id="nilm-sample", color="primary",
                               outline=True, className="w-100 h-100",
                               style=None if sample else {"display": "none"}), md=3),
        ], className="g-2 mb-3 align-items-stretch"),
        html.Div(id="nilm-alert"),
        dcc.Store(id="nilm-job"),  # {job, at}: set by assets/nilm.js once an upload is stored
        dcc.Store(id="nilm-source"),  # {job, download}: the result on show
        dcc.Store(id="nilm-rejected"),  # {message} or {name, size}: refused before labelling
        dcc.Loading(results, id="nilm-loading", delay_show=200, parent_className="nilm-loading",
                    overlay_style={"visibility": "visible", "opacity": 0.35},
                    custom_spinner=html.Div([dbc.Spinner(size="sm", color="primary"),
                                             html.Span("Labelling the recording…")],
                                            className="nilm-working")),
        dbc.Card([
            dbc.CardHeader("How far to trust the labels"),
            dbc.CardBody([
                html.P("No labels exist for a real aggregate, so the model is judged on held-out "
                       "synthetic aggregates built from parts of the single-device recordings it "
                       "did not train on, against simple baselines and an oracle that knows the "
                       "generator.", className="text-muted small"),
                evaluation_section(),
            ]),
        ], className="mb-3"),
    ])


def alert(message, color="danger"):
    return dbc.Alert(message, color=color, dismissable=True, className="mb-3")


# ---- callbacks ----

@callback(
    Output("nilm-alert", "children"),
    Output("nilm-source", "data"),
    Output("nilm-results", "className"),
    Output("nilm-summary", "children"),
    *[Output(f"nilm-{key}", "figure") for key in GRAPHS],
    Input("nilm-job", "data"),
    Input("nilm-sample", "n_clicks"),
    prevent_initial_call=True,
)
def show_job(job, _clicks):
    unchanged = [no_update] * (3 + len(GRAPHS))
    sample = sample_file() if ctx.triggered_id == "nilm-sample" else None
    if ctx.triggered_id == "nilm-sample" and sample is None:
        return [alert("The sample recording is not available on this server."), *unchanged]
    try:
        job_id = submit_file(sample) if sample else job["job"]
        outcome = jobs.wait(job_id)
    except Exception:  # the user sees a plain message; the details go to the server log
        log.exception("waiting for labelling job %r failed", job)
        return [alert("Something went wrong while analysing this file; it has been logged."),
                *unchanged]
    if outcome is not None and not outcome.finished:
        return [alert("The labelling is taking longer than it should; please try again later.",
                      color="warning"), *unchanged]
    if outcome is not None and outcome.error:
        return [alert(outcome.error), *unchanged]
    stored = None if outcome is None else store.analysis_json(job_id)
    if stored is None:  # expired meanwhile
        return [alert(routes.GONE, color="warning"), *unchanged]
    analysis = json.loads(stored)
    source = {"job": job_id, "download": store.labelled_name(outcome.name)}
    return [None, source, "", summary_cards(analysis["summary"]),
            *[analysis["figures"][key] for key in GRAPHS]]


def submit_file(path):
    return jobs.submit(path.name, store.compress_chunks([path.read_bytes()], path.name))


@callback(
    Output("nilm-alert", "children", allow_duplicate=True),
    Input("nilm-rejected", "data"),
    prevent_initial_call=True,
)
def show_rejected(rejected):
    if "message" in rejected:
        return alert(rejected["message"], color=rejected.get("color", "danger"))
    return alert(store.too_big_message(rejected["name"], rejected["size"]))


# Downloads straight from GET /nilm/download/<job> (the browser streams it to disk), once a HEAD
# has said the result is still stored; if not, the alert says so instead of a failed download.
clientside_callback(
    """
    function (_clicks, source) {
        if (source) { window.nilmDownload(source, %s); }
        return dash_clientside.no_update;
    }
    """ % json.dumps(routes.GONE),
    Input("nilm-download-button", "n_clicks"),
    State("nilm-source", "data"),
    prevent_initial_call=True,
)
