"""What a labelling job computes: the page's analysis of an upload and its labelled CSV.

Pure wiring of nilm (no Dash, no Celery): parsing is nilm.io, states are nilm.model, figures are
nilm.figures, the labelled file is nilm.label.format_labels of the same parse and prediction (so
its bytes equal `python -m nilm.label`'s). run() is the job: upload from the store, result back.
"""
import logging

from plotly.io.json import to_json_plotly

from nilm import doubt, figures, texts
from nilm.io import InputError, read_recording
from nilm.label import format_labels
from nilm.model import joint_levels
from nilm.model import load as load_model

from . import store

GRAPHS = ("aggregate", "devices", "timeline", "shares", "levels")
MAX_SHADED = 100  # doubtful stretches shaded on the aggregate plot (the longest ones)
KEYS = ("name", "summary", "figures", "texts", "preview", "doubt")
OUTDATED = "That result was made by an earlier version of Wattson; please upload the file again."
log = logging.getLogger(__name__)
_model = []


def model():
    """The stored model, loaded once per process (a worker labels many uploads)."""
    if not _model:
        _model.append(load_model())
    return _model[0]


def warm_up():
    """Load the model and plotly's figure machinery on a tiny recording, so that a worker's
    first upload is as fast as the rest (forked pool processes inherit what this loads)."""
    rows = (f"{1536129671 + i:.1f},{(i % 50) * 12.21:.2f},{(i % 50) * 8.63:.1f}\n" for i in range(300))
    analyse(read_recording("".join(rows).encode(), "warm-up.csv"))


def analyse(recording):
    """(analysis, labelled CSV bytes) of one parsed upload; the analysis is JSON-able:
    {"name", "summary": [[label, text]], "figures": {graph: plotly figure}, "texts": {graph: its
    text alternative}, "preview": [header, rows], "doubt": {"overview", "stretches"}: [sentence]}.
    """
    fitted = model()
    prediction = fitted.predict_details(recording)
    t, current, states = recording.timestamp, recording.max_current, prediction.states
    segments = doubt.doubtful_segments(t, states, prediction.confidence, prediction.runner_up)
    levels = joint_levels(fitted.state_levels_) * prediction.gain
    share_data = figures.shares(t, current, states, fitted.state_levels_)
    aggregate = figures.aggregate_figure(t, current, states)
    analysis = {
        "name": recording.name,
        "summary": texts.summary(recording, prediction.gain, prediction.confidence),
        "figures": {
            "aggregate": figures.shade_doubt(aggregate, segments, limit=MAX_SHADED),
            "devices": figures.device_current_figure(t, states, fitted.state_levels_, prediction.gain),
            "timeline": figures.state_timeline(t, states),
            "shares": figures.share_figure(share_data),
            "levels": figures.combination_histogram(current, fitted.combination_levels(),
                                                    prediction.gain),
        },
        "texts": texts.chart_summaries(recording, states, share_data, prediction.gain, segments),
        "preview": texts.preview(recording.fields, states),
        "doubt": {"overview": texts.doubt_overview(segments, levels),
                  "stretches": texts.doubt_lines(segments, levels)},
    }
    return analysis, format_labels(recording.fields, prediction.states)


def complete(analysis):
    """Whether a stored analysis has everything today's page shows: a job finished by an older
    release (jobs live for NILM_JOB_TTL_S, across a deploy) may lack a newer part."""
    return (all(key in analysis for key in KEYS)
            and all(graph in analysis["figures"] and graph in analysis["texts"] for graph in GRAPHS))


def run(job_id):
    """Label one stored upload and store the outcome; False when the job was not there to run."""
    claimed = store.start(job_id)
    if claimed is None:
        log.info("labelling job %s is gone or already taken", job_id)
        return False
    name, data = claimed
    try:
        recording = read_recording(data, name)
        del data  # a 49 MB upload: keep only its parse
        analysis, labelled = analyse(recording)
        del recording
    except InputError as error:
        store.fail(job_id, str(error))
    except Exception:  # the user sees a plain message; the details go to the worker's log
        log.exception("labelling job %s (%r) failed", job_id, name)
        store.fail(job_id, f"Something went wrong while analysing {name}; it has been logged.")
    else:
        store.finish(job_id, name, to_json_plotly(analysis), labelled)
    return True
