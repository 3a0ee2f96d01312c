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
from labelling.analysis import GRAPHS, OUTDATED, complete
from nilm.devices import MAIN_GLOB, data_dir, find_file
from pages import nilm_view as view

dash.register_page(__name__, path="/nilm", name="NILM", title="Wattson · NILM")

log = logging.getLogger(__name__)

MAX_BYTES = store.UPLOAD_MAX_BYTES
UPLOAD_LABEL = "Upload an aggregate recording (CSV)"


def sample_file():
    directory = data_dir()
    return find_file(directory, MAIN_GLOB) if directory.is_dir() else None


def layout(**_):
    sample = sample_file()
    # dcc.Upload for its drop zone and file dialog only: assets/nilm.js takes the file before the
    # component reads it (no base64, no Dash body) and posts it to the upload route. nilm.js also
    # gives the hidden <input type=file> the zone's label (data-label): dcc.Upload takes no
    # attributes for it.
    upload = html.Div(dcc.Upload(
        id="nilm-upload", max_size=MAX_BYTES, multiple=False, className="nilm-upload",
        children=html.Div(["Drop an aggregate recording here, or ",
                           html.Span("choose a file", className="link-primary text-decoration-underline"),
                           html.Div("CSV: timestamp (Unix seconds or ISO 8601), maximum current (mA),"
                                    " effective current (mA) · up to 50 MB",
                                    className="text-muted small")]),
    ), id="nilm-upload-zone", **{"data-url": "/nilm/upload", "data-max-bytes": str(MAX_BYTES),
                                 "data-label": UPLOAD_LABEL})
    results = html.Div(id="nilm-results", className="d-none", children=[
        html.H3(id="nilm-shown", className="h5 mb-2"),
        html.Div(id="nilm-summary"),
        dbc.Button("Download labelled CSV", id="nilm-download-button", color="primary",
                   className="mb-3"),
        view.graph_card(*view.GRAPH_CARDS[0]),
        view.doubt_card(),
        *[view.graph_card(*card) for card in view.GRAPH_CARDS[1:]],
        view.preview_card(),
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
        html.Div(id="nilm-alert", role="status"),
        dcc.Store(id="nilm-job"),  # {job, at}: set by assets/nilm.js once an upload is stored
        dcc.Store(id="nilm-source"),  # {job, download, name}: the result on show
        dcc.Store(id="nilm-rejected"),  # {message} or {name, size}: refused before labelling
        dcc.Loading(results, id="nilm-loading", delay_show=200, parent_className="nilm-loading",
                    overlay_style={"visibility": "visible", "opacity": 0.35},
                    custom_spinner=html.Div([dbc.Spinner(size="sm", color="primary"),
                                             html.Span("Labelling the recording…")],
                                            className="nilm-working")),
        view.trust_card(),
    ])


def alert(message, color="danger"):
    return dbc.Alert(message, color=color, dismissable=True, className="mb-3")


# ---- callbacks ----

def still_showing(message, source):
    """An alert's text, saying whose results still stand below it when some are on show."""
    if source and source.get("name"):
        return f"{message} The results below are still those of {source['name']}."
    return message


@callback(
    Output("nilm-alert", "children"),
    Output("nilm-source", "data"),
    Output("nilm-results", "className"),
    Output("nilm-shown", "children"),
    Output("nilm-summary", "children"),
    Output("nilm-doubt", "children"),
    Output("nilm-preview", "children"),
    *[Output(f"nilm-{key}", "figure") for key in GRAPHS],
    *[Output(f"nilm-{key}-text", "children") for key in GRAPHS],
    Input("nilm-job", "data"),
    Input("nilm-sample", "n_clicks"),
    State("nilm-source", "data"),
    prevent_initial_call=True,
)
def show_job(job, _clicks, shown):
    unchanged = [no_update] * (6 + 2 * len(GRAPHS))

    def refuse(message, color="danger"):
        return [alert(still_showing(message, shown), color), *unchanged]

    sample = sample_file() if ctx.triggered_id == "nilm-sample" else None
    if ctx.triggered_id == "nilm-sample" and sample is None:
        return refuse("The sample recording is not available on this server.")
    name = sample.name if sample else job.get("name", "this file")
    try:
        job_id = submit_file(sample) if sample else job["job"]
        outcome = jobs.wait(job_id)
    except Exception:  # the user sees a plain message; the details go to the server log
        log.exception("waiting for labelling job %r failed", job)
        return refuse(f"Something went wrong while analysing {name}; it has been logged.")
    if outcome is not None and not outcome.finished:
        return refuse(f"The labelling of {name} is taking longer than it should; please try "
                      "again later.", color="warning")
    if outcome is not None and outcome.error:  # every job's message names its file
        return refuse(outcome.error)
    stored = None if outcome is None else store.analysis_json(job_id)
    if stored is None:  # expired meanwhile
        return refuse(routes.GONE, color="warning")
    analysis = json.loads(stored)
    if not complete(analysis):
        return refuse(OUTDATED, color="warning")
    source = {"job": job_id, "download": store.labelled_name(outcome.name), "name": outcome.name}
    return [None, source, "", f"Results for {outcome.name}", view.summary_cards(analysis["summary"]),
            view.doubt_children(analysis["doubt"]), view.preview_table(analysis["preview"]),
            *[analysis["figures"][key] for key in GRAPHS],
            *[analysis["texts"][key] for key in GRAPHS]]


def submit_file(path):
    return jobs.submit(path.name, store.compress_chunks([path.read_bytes()], path.name))


@callback(
    Output("nilm-alert", "children", allow_duplicate=True),
    Input("nilm-rejected", "data"),
    State("nilm-source", "data"),
    prevent_initial_call=True,
)
def show_rejected(rejected, shown):
    if "message" in rejected:
        return alert(still_showing(rejected["message"], shown), color=rejected.get("color", "danger"))
    return alert(still_showing(store.too_big_message(rejected["name"], rejected["size"]), shown))


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
