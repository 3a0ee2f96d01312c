"""Words and tables about a labelled recording, shared by the /nilm page and the HTML report.

Pure functions: numpy arrays and plain data in, strings and lists of strings out (no Dash, no
plotly). The figures themselves are nilm.figures; these are what a reader, or a screen reader,
gets in words.

    duration_text(seconds) -> '1 h 02 min'
    summary(recording, gain, confidence=None) -> [(label, text)] for the summary cards
    evaluation_rows(results) -> (header, rows) of the stored evaluation, one row per method
    preview(fields, states, rows=PREVIEW_ROWS) -> (header, rows): the first labelled rows
    chart_summaries(recording, states, share_data, gain, segments) -> {graph: one short paragraph}
    doubt_overview(segments, levels) -> [sentence]: which kinds of doubt, how many rows, why
    doubt_lines(segments, levels, limit=MAX_DOUBTS) -> [sentence]: each stretch, then "and N more"
"""
from collections import defaultdict

import numpy as np

from nilm import doubt
from nilm.devices import DEVICES, STATES
from nilm.label import HEADER

PREVIEW_ROWS = 10
MAX_DOUBTS = 25  # stretches listed one by one; the rest are counted


def duration_text(seconds):
    """'1 h 02 min', '52 min 56 s', '8.5 s'."""
    seconds = float(seconds)
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(int(round(seconds)), 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def utc_text(timestamp):
    """'2018-09-05 06:41:11' (UTC) of Unix seconds."""
    return np.datetime_as_string(np.datetime64(int(np.floor(timestamp)), "s")).replace("T", " ")


def summary(recording, gain, confidence=None):
    """[(label, text)] describing an aggregate recording, the gain the model estimated and, given
    the confidence (n, 3), the share of rows below doubt.DOUBT for some device."""
    t = np.asarray(recording.timestamp, dtype=float)
    interval = float(np.median(np.diff(t))) if len(t) > 1 else 0.0
    items = [
        ("rows", f"{len(t):,}"),
        ("time span", f"{duration_text(t[-1] - t[0])} from {utc_text(t[0])} UTC"),
        ("sampling interval", f"{interval:.2f} s (median)"),
        ("estimated gain", f"{gain:.3f} x the sum of the state levels"),
    ]
    if confidence is not None:
        items.append((f"confidence below {doubt.DOUBT}",
                      f"{doubt.share_doubtful(confidence):.1%} of the rows"))
    return items


def evaluation_rows(results):
    """(header, rows) of text cells from nilm.evaluate.load_results(), one row per method."""
    if not results:
        raise ValueError("no evaluation results stored (run python -m nilm.evaluate)")
    header = ["method", "joint accuracy"] + [f"{device} accuracy / macro-F1" for device in DEVICES]
    rows = [[m["label"], f"{m['joint_accuracy']:.3f}"]
            + [f"{m['devices'][d]['accuracy']:.3f} / {m['devices'][d]['macro_f1']:.3f}"
               for d in DEVICES]
            for m in results["methods"]]
    return header, rows


def preview(fields, states, rows=PREVIEW_ROWS):
    """The first rows of the labelled CSV (the header of `python -m nilm.label`), as text cells."""
    names = [np.array(STATES[device])[np.asarray(states)[:rows, i]] for i, device in enumerate(DEVICES)]
    shown = range(min(rows, len(fields)))
    return HEADER.split(","), [[*fields[r], *(str(n[r]) for n in names)] for r in shown]


def _percent(share):
    return f"{100 * share:.0f} %"


def chart_summaries(recording, states, share_data, gain, segments):
    """{graph key: a short paragraph saying what the chart shows, with its key numbers}: the text
    alternative of each chart for screen readers (labelling.analysis.GRAPHS keys)."""
    current = np.asarray(recording.max_current, dtype=float)
    states = np.asarray(states)
    t = np.asarray(recording.timestamp, dtype=float)
    span = duration_text(t[-1] - t[0]) if len(t) else "0 s"
    doubtful = sum(d.rows for d in segments)
    mostly = []
    changes = []
    for i, device in enumerate(DEVICES):
        by_state = share_data[device]
        top = max(by_state, key=lambda name: by_state[name]["time_share"])
        mostly.append(f"{device} {top} {_percent(by_state[top]['time_share'])} of the time")
        changes.append(f"{device} {int(np.count_nonzero(np.diff(states[:, i])))}")
    charge = "; ".join(f"{d} {_percent(sum(v['charge_share'] for v in share_data[d].values()))}"
                       for d in DEVICES)
    return {
        "aggregate": (f"Measured maximum current over {span} ({len(t):,} rows): from "
                      f"{current.min():.0f} to {current.max():.0f} mA, median {np.median(current):.0f} mA. "
                      f"Below it, one band per device coloured by its predicted state. "
                      f"{len(segments)} doubtful stretches ({doubtful:,} rows) are shaded."),
        "devices": (f"Each device's estimated current (its state's level x the gain {gain:.3f}), "
                    f"stacked. Share of the charge: {charge}."),
        "timeline": "State changes per device: " + ", ".join(changes) + ". Mostly: "
                    + "; ".join(mostly) + ".",
        "shares": "Time and charge per device and state. Mostly: " + "; ".join(mostly)
                  + f". Share of the charge: {charge}.",
        "levels": (f"Histogram of the measured current, median {np.median(current):.0f} mA, with "
                   f"the expected current of each of the 18 state combinations at gain {gain:.3f}."),
    }


def _gap(segment, levels):
    return abs(float(levels[segment.chosen]) - float(levels[segment.runner_up]))


def doubt_overview(segments, levels):
    """Sentences that group the doubtful stretches by the devices in doubt: how many stretches and
    rows, the typical gap between the expected currents of the two explanations, and so why."""
    groups = defaultdict(list)
    for segment in segments:
        groups[segment.devices].append(segment)
    out = []
    for devices, found in sorted(groups.items(), key=lambda item: -sum(s.rows for s in item[1])):
        gap = float(np.median([_gap(s, levels) for s in found]))
        who = " and ".join(doubt.PLAIN_NAMES[d] for d in devices)
        why = (f"the two explanations it weighs differ by a median {gap:.0f} mA, within "
               f"{doubt.LOOK_ALIKE_STEPS} meter steps of {doubt.METER_STEP_MA:.1f} mA, so the "
               "samples fit both"
               if gap <= doubt.LOOK_ALIKE_STEPS * doubt.METER_STEP_MA else
               f"the two explanations differ by a median {gap:.0f} mA, so the doubt is about when "
               "the switch happened, not what was on")
        out.append(f"{len(found)} stretch(es), {sum(s.rows for s in found):,} rows, are unsure of "
                   f"{who}: {why}.")
    return out


def doubt_lines(segments, levels, limit=MAX_DOUBTS):
    """One sentence per doubtful stretch (nilm.doubt.describe), the first `limit`, then a count."""
    lines = [doubt.describe(segment, levels) for segment in segments[:limit]]
    if len(segments) > limit:
        lines.append(f"and {len(segments) - limit} more stretches")
    return lines


def stress_summary(matrix):
    """The stress matrix (nilm.evaluate's "stress") in one sentence: its text alternative."""
    return (f"Joint accuracy of the model on {len(matrix['scenarios'])} conditions real meters "
            f"show, beside a near-ceiling decoder that knows the generator. "
            + "; ".join(f"{r['name']} {r['model']['mean']:.3f}" for r in matrix["scenarios"]) + ".")
