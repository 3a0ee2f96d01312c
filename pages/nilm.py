"""/nilm: upload an aggregate recording, see which device was in which state, download the labels.

Wiring only: parsing is nilm.io, states are nilm.model, figures are nilm.figures, the download is
nilm.label.format_labels of the same parse and prediction (so its bytes equal `python -m nilm.label`'s).

The labelled file is made once, with the analysis, and stays on the server keyed by a random token
kept in the browser (nilm-source): the download neither sends the file again nor labels it again.
The keep is per process and holds the last few uploads: with several web processes the download
goes back to the one that saw the upload only if the load balancer is sticky; otherwise the user is
asked to upload again.
"""
import base64
import binascii
import logging
import secrets
import threading
import zlib
from collections import OrderedDict
from pathlib import Path

import dash
import dash_bootstrap_components as dbc
import flask
from dash import Input, Output, State, callback, clientside_callback, ctx, dcc, html, no_update

from nilm import figures
from nilm.devices import MAIN_GLOB, data_dir, find_file
from nilm.evaluate import load_results
from nilm.io import InputError, read_recording
from nilm.label import format_labels
from nilm.model import load as load_model
from readings.settings import NILM_UPLOAD_MAX_BYTES

dash.register_page(__name__, path="/nilm", name="NILM", title="Wattson · NILM")

log = logging.getLogger(__name__)

MAX_BYTES = NILM_UPLOAD_MAX_BYTES  # the server refuses bigger bodies (MAX_CONTENT_LENGTH)
KEEP_UPLOADS = 8
KEEP_BYTES = 4 * MAX_BYTES  # compressed; the newest upload is always kept, older ones while they fit
GRAPH_CONFIG = {"displaylogo": False}
GRAPHS = ("aggregate", "timeline", "shares", "levels")

_uploads = OrderedDict()  # token -> (download name, zlib-compressed labelled CSV), newest last
_uploads_lock = threading.Lock()


# ---- the labelled files, kept server-side ----

def keep_upload(name, data):
    # Compressed (about 6x, ~0.3 s for 50 MB): a kept file's memory adds to every running
    # labelling job's, and the download is rare next to the uploads.
    packed = zlib.compress(data, 1)
    token = secrets.token_urlsafe(16)
    with _uploads_lock:
        _uploads[token] = (name, packed)
        while len(_uploads) > 1 and (len(_uploads) > KEEP_UPLOADS or _kept_bytes() > KEEP_BYTES):
            _uploads.popitem(last=False)
    return token


def _kept_bytes():
    return sum(len(packed) for _, packed in _uploads.values())


def kept_upload(token):
    with _uploads_lock:
        kept = _uploads.get(token)
    return None if kept is None else (kept[0], zlib.decompress(kept[1]))


def labelling_slot():
    """This web process's bound on uploads labelled at once (NILM_LABEL_CONCURRENCY).

    Labelling a 49 MB upload takes ~1 GB for a while: four at once took 3.9 GB. Callbacks beyond
    the bound wait here, their spinner still turning. (When labelling moves to Celery workers,
    the same number becomes the labelling queue's concurrency.)
    """
    app = flask.current_app
    slots = threading.BoundedSemaphore(app.config.get("NILM_LABEL_CONCURRENCY", 1))
    return app.extensions.setdefault("nilm_labelling", slots)


def too_big_message(name, size):
    return f"{name} is {size / 2**20:.1f} MB; the limit is {MAX_BYTES / 2**20:.0f} MB."


def decode_upload(contents, name):
    """Bytes of a dcc.Upload data URL; InputError when it is over the limit or not base64."""
    _, _, payload = (contents or "").partition(",")
    if len(payload) * 3 // 4 > MAX_BYTES + 3:
        raise InputError(too_big_message(name, len(payload) * 3 / 4))
    try:
        data = base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        raise InputError(f"{name}: the upload could not be read; please try again.") from None
    if len(data) > MAX_BYTES:
        raise InputError(too_big_message(name, len(data)))
    return data


def labelled_name(name):
    """main.csv -> main_labelled.csv"""
    path = Path(name or "recording.csv")
    return f"{path.stem}_labelled{path.suffix or '.csv'}"


def sample_file():
    directory = data_dir()
    return find_file(directory, MAIN_GLOB) if directory.is_dir() else None


# ---- what the page shows ----

def analyse(recording):
    """Labels, figures and summary of one parsed upload (a nilm.io.Recording)."""
    model = load_model()
    prediction = model.predict_details(recording)
    t, current, states = recording.timestamp, recording.max_current, prediction.states
    levels = model.state_levels_
    return {
        "labelled": format_labels(recording.fields, prediction.states),
        "summary": figures.summary(recording, prediction.gain),
        "aggregate": figures.aggregate_figure(t, current, states),
        "timeline": figures.state_timeline(t, states),
        "shares": figures.share_figure(figures.shares(t, current, states, levels)),
        "levels": figures.combination_histogram(current, model.combination_levels(),
                                                prediction.gain),
    }


def summary_cards(items):
    return dbc.Row([
        dbc.Col(dbc.Card(dbc.CardBody([
            html.Span(label, className="nilm-label"),
            html.Span(value, className="nilm-value"),
        ])), xs=6, md=True) for label, value in items
    ], className="g-2 mb-3", id="nilm-summary-cards")


def evaluation_section():
    try:
        header, rows = figures.evaluation_rows(load_results())
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
    upload = dcc.Upload(
        id="nilm-upload", max_size=MAX_BYTES, multiple=False, className="nilm-upload",
        children=html.Div(["Drop an aggregate recording here, or ",
                           html.A("choose a file", className="link-primary"),
                           html.Div("CSV: timestamp, maximum current (mA), effective current (mA)"
                                    " · up to 50 MB", className="text-muted small")]),
    )
    results = html.Div(id="nilm-results", className="d-none", children=[
        html.Div(id="nilm-summary"),
        dbc.Button("Download labelled CSV", id="nilm-download-button", color="primary",
                   className="mb-3"),
        dcc.Download(id="nilm-download"),  # in the spinner's reach: big files take a moment
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
        dcc.Store(id="nilm-source"),
        dcc.Store(id="nilm-rejected"),
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
    Input("nilm-upload", "contents"),
    Input("nilm-sample", "n_clicks"),
    State("nilm-upload", "filename"),
    prevent_initial_call=True,
)
def show_upload(contents, _clicks, filename):
    unchanged = [no_update] * (3 + len(GRAPHS))
    try:
        # Decoded inside the slot, and dropped once parsed: a waiting upload holds only its
        # request, and a running one not its bytes as well as their parse.
        with labelling_slot():
            name, source = _chosen_file(contents, filename)
            recording = read_recording(source, name)
            del source
            result = analyse(recording)
            del recording
    except InputError as error:
        return [alert(str(error)), *unchanged]
    except Exception:  # the user sees a plain message; the details go to the server log
        log.exception("analysing %r failed", filename)
        return [alert("Something went wrong while analysing this file; it has been logged."),
                *unchanged]
    source = {"token": keep_upload(labelled_name(name), result["labelled"]), "name": name}
    return [None, source, "", summary_cards(result["summary"]),
            *[result[key] for key in GRAPHS]]


def _chosen_file(contents, filename):
    """(name, bytes or path) of the upload, or of the sample when its button was pressed."""
    if ctx.triggered_id == "nilm-sample":
        path = sample_file()
        if path is None:
            raise InputError("The sample recording is not available on this server.")
        return path.name, path
    name = filename or "upload.csv"
    return name, decode_upload(contents, name)


@callback(
    Output("nilm-download", "data"),
    Output("nilm-alert", "children", allow_duplicate=True),
    Input("nilm-download-button", "n_clicks"),
    State("nilm-source", "data"),
    prevent_initial_call=True,
)
def download_labels(_clicks, source):
    kept = kept_upload((source or {}).get("token"))
    if kept is None:
        return no_update, alert("That upload is no longer on the server; please upload it again.",
                                color="warning")
    name, labelled = kept
    return dcc.send_bytes(labelled, name), no_update


@callback(
    Output("nilm-alert", "children", allow_duplicate=True),
    Input("nilm-rejected", "data"),
    prevent_initial_call=True,
)
def show_rejected(rejected):
    return alert(too_big_message(rejected["name"], rejected["size"]))


# The browser drops files over max_size without telling Dash; this listener reports them.
clientside_callback(
    """
    function (id) {
        if (!window.nilmSizeGuard) {
            window.nilmSizeGuard = true;
            const check = function (event) {
                const root = document.getElementById(id);
                if (!root || !root.contains(event.target)) { return; }
                const files = (event.dataTransfer || event.target).files || [];
                for (const file of files) {
                    if (file.size > %d) {
                        dash_clientside.set_props("nilm-rejected",
                            {data: {name: file.name, size: file.size, at: Date.now()}});
                    }
                }
            };
            document.addEventListener("change", check, true);
            document.addEventListener("drop", check, true);
        }
        return dash_clientside.no_update;
    }
    """ % MAX_BYTES,
    Output("nilm-rejected", "data"),
    Input("nilm-upload", "id"),
)
