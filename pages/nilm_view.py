"""The parts of the /nilm page (pages/nilm.py wires them): Dash components from plain data, no
callbacks. Every chart comes with its text alternative: a visually hidden paragraph the chart's
wrapper names with aria-describedby, filled from the analysis (nilm.texts.chart_summaries).
"""
import logging
from functools import lru_cache

import dash_bootstrap_components as dbc
from dash import dcc, html

from nilm import figures, texts
from nilm.evaluate import RESULTS_PATH, load_results
from nilm.stress_matrix import matrix_rows

log = logging.getLogger(__name__)

# (graph key, card title, visible help) in the page's order (labelling.analysis.GRAPHS).
GRAPH_CARDS = (
    ("aggregate", "Aggregate current and predicted states",
     "The measured maximum current; below it, each device's state over time. Shaded: stretches "
     "where the model is unsure (confidence below 0.9)."),
    ("devices", "Estimated current of each device",
     "Each device's current as the model explains it (the level of its state times the estimated "
     "gain), stacked: the top of the stack is the model's account of the aggregate above."),
    ("timeline", "State timeline per device", "When each device changed state."),
    ("shares", "Time and charge per device and state",
     "Charge splits the measured current between the devices in proportion to their state levels."),
    ("levels", "Current levels and the expected level of each state combination",
     "Marks sit at the model's level for every joint state, times the estimated gain; marks close "
     "together are combinations one sample cannot tell apart."),
)


def summary_cards(items):
    return dbc.Row([
        dbc.Col(dbc.Card(dbc.CardBody([
            html.Span(label, className="nilm-label"),
            html.Span(value, className="nilm-value"),
        ])), xs=6, md=True) for label, value in items
    ], className="g-2 mb-3", id="nilm-summary-cards")


def text_table(header, rows, **props):
    return dbc.Table([html.Thead(html.Tr([html.Th(h) for h in header])),
                      html.Tbody([html.Tr([html.Td(cell) for cell in row]) for row in rows])],
                     striped=True, hover=True, size="sm", responsive=True, **props)


def graph_card(key, title, help_text):
    text_id = f"nilm-{key}-text"
    return dbc.Card([
        dbc.CardHeader(html.H3(title, className="h6 mb-0")),
        dbc.CardBody([
            html.P(help_text, className="text-muted small mb-1"),
            html.P(id=text_id, className="visually-hidden"),
            html.Div(dcc.Graph(id=f"nilm-{key}", config=figures.CONFIG),
                     role="figure", **{"aria-describedby": text_id, "aria-label": title}),
        ]),
    ], className="mb-3")


def doubt_card():
    return dbc.Card([
        dbc.CardHeader(html.H3("Where the model is unsure", className="h6 mb-0")),
        dbc.CardBody([
            html.P("For every row the model gives each device's confidence: the probability of the "
                   "state it chose, given the whole recording. A stretch of rows below 0.9 is listed "
                   "with the explanation the model chose and the runner-up it weighed against it.",
                   className="text-muted small"),
            html.Div(id="nilm-doubt"),
        ]),
    ], className="mb-3")


def doubt_children(found):
    """The doubt card's body from the analysis' "doubt" part."""
    if not found["stretches"]:
        return html.P("No stretch is below 0.9: the model is sure of every row.")
    return [*[html.P(sentence) for sentence in found["overview"]],
            html.Ul([html.Li(line) for line in found["stretches"]], id="nilm-doubt-list",
                    className="small")]


def preview_card():
    return dbc.Card([
        dbc.CardHeader(html.H3(f"The first {texts.PREVIEW_ROWS} labelled rows", className="h6 mb-0")),
        dbc.CardBody(html.Div(id="nilm-preview"), className="p-0"),
    ], className="mb-3")


def preview_table(preview):
    header, rows = preview
    return text_table(header, rows, id="nilm-preview-table", className="mb-0 small")


def unavailable(error):
    log.warning("evaluation results unavailable: %s", error)
    return dbc.Alert("The model's evaluation results are not available.", color="secondary")


def evaluation_table(results):
    try:
        header, rows = texts.evaluation_rows(results)
    except (ValueError, KeyError) as error:
        return unavailable(error)
    return text_table(header, rows, id="nilm-evaluation-table")


def stress_section(results):
    """The stored stress matrix (nilm.evaluate's "stress"): its figure, table and the scenarios
    below the target with their reason."""
    matrix = (results or {}).get("stress")
    if not matrix:
        return html.P("No stress matrix is stored.", className="text-muted small")
    s = matrix["settings"]
    below = [html.Li([html.B(r["name"]), f" (model {r['model']['mean']:.3f}): {r['reason']}."])
             for r in matrix["scenarios"] if r["reason"]]
    summary = texts.stress_summary(matrix)
    return html.Div([
        html.H3("How the model holds up under stress", className="h6 mt-3"),
        html.P(f"A second generator, sharing no code with the model, builds aggregates from "
               f"contiguous blocks of the real recordings under conditions real meters show. "
               f"{len(s['seeds'])} files of {s['rows_per_file']:,} rows per scenario. A row counts "
               f"as confident when every device is at \u2265 {s['confident']}; \"errors flagged\" is "
               f"the share of wrong rows that were not.", className="text-muted small"),
        html.P(summary, id="nilm-stress-text", className="visually-hidden"),
        html.Div(dcc.Graph(id="nilm-stress", figure=figures.stress_matrix_figure(matrix),
                           config=figures.CONFIG),
                 role="figure", **{"aria-describedby": "nilm-stress-text",
                                   "aria-label": "Stress matrix"}),
        text_table(*matrix_rows(matrix), id="nilm-stress-table", className="small"),
        html.P(f"Scenarios below joint accuracy {s['target_joint']}, and why:", className="small mb-1"),
        html.Ul(below or [html.Li("none")], className="small"),
    ])


@lru_cache(maxsize=1)
def _trust_body(mtime):
    """Built once per version of the stored results, not on every page load."""
    results = load_results()
    return [
        html.P("No labels exist for a real aggregate, so the model is judged on held-out "
               "synthetic aggregates built from parts of the single-device recordings it "
               "did not train on, against simple baselines and an oracle that knows the "
               "generator.", className="text-muted small"),
        evaluation_table(results),
        stress_section(results),
    ]


def trust_card():
    try:
        body = _trust_body(RESULTS_PATH.stat().st_mtime if RESULTS_PATH.exists() else None)
    except (OSError, ValueError, KeyError) as error:
        body = unavailable(error)
    return dbc.Card([dbc.CardHeader(html.H3("How far to trust the labels", className="h6 mb-0")),
                     dbc.CardBody(body)], className="mb-3")
