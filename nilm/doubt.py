"""Doubtful stretches of a labelled recording, as plain data for the report and the /nilm page.

A row is doubtful when the model's confidence (the marginal posterior of a device's chosen
state, NilmModel.predict_details) is below DOUBT for any device. Doubtful rows close together
form one segment, described by the explanation the model chose and its runner-up.

    row_confidence(confidence) -> (n,) the least confident device's confidence per row
    share_doubtful(confidence, threshold=DOUBT) -> share of rows below it
    doubtful_segments(timestamp, states, confidence, runner_up, threshold=DOUBT) -> [Doubt]
    explanation(joint) -> "screen 1 ON + screen 2 OFF + sensor ON"
    describe(doubt, levels=None) -> one plain sentence (levels: (18,) expected mA per joint state)
"""
from dataclasses import dataclass

import numpy as np

from nilm.devices import DEVICES, SHAPE, STATES

DOUBT = 0.9
# Doubtful rows at most this many rows apart are one segment: a flicker is one doubt, not three.
JOIN_ROWS = 3
PLAIN_NAMES = {"PC screen1": "screen 1", "PC screen2": "screen 2", "Temperature sensor": "sensor"}
# Two explanations whose expected currents lie within this many meter steps look alike in a sample.
LOOK_ALIKE_STEPS = 2
METER_STEP_MA = 12.207


@dataclass(frozen=True)
class Doubt:
    first_row: int  # 0-based, inclusive
    last_row: int  # 0-based, inclusive
    start: float  # timestamp (s) of the first row
    end: float  # timestamp (s) of the last row
    lowest: float  # the lowest confidence in the segment
    devices: tuple  # the devices whose confidence drops below the threshold in it
    # The (chosen, runner-up) pair of joint states (np.ravel_multi_index over SHAPE) most frequent
    # on the segment's doubtful rows: taken as a pair, so that a flip inside the segment never
    # names one explanation twice.
    chosen: int
    runner_up: int

    @property
    def rows(self):
        return self.last_row - self.first_row + 1

    @property
    def seconds(self):
        return self.end - self.start


def row_confidence(confidence):
    confidence = np.asarray(confidence, dtype=float)
    return confidence.min(axis=1) if confidence.size else np.zeros(0)


def share_doubtful(confidence, threshold=DOUBT):
    low = row_confidence(confidence) < threshold
    return float(low.mean()) if low.size else 0.0


def _spans(low, join_rows):
    """[(first, last)] inclusive runs of True, runs at most join_rows apart merged."""
    edges = np.flatnonzero(np.diff(np.r_[0, low.astype(int), 0]))
    spans = []
    for first, stop in zip(edges[::2], edges[1::2]):
        if spans and first - spans[-1][1] - 1 <= join_rows:
            spans[-1] = (spans[-1][0], stop - 1)
        else:
            spans.append((first, stop - 1))
    return spans


def _most_common_pair(first, second):
    found, counts = np.unique(np.c_[first, second], axis=0, return_counts=True)
    return tuple(int(v) for v in found[np.argmax(counts)])


def doubtful_segments(timestamp, states, confidence, runner_up, threshold=DOUBT, join_rows=JOIN_ROWS):
    """The doubtful segments of a labelled recording, in time order (see the module docstring)."""
    confidence = np.asarray(confidence, dtype=float)
    states, runner_up = np.asarray(states), np.asarray(runner_up)
    if not (len(timestamp) == len(states) == len(confidence) == len(runner_up)):
        raise ValueError("timestamp, states, confidence and runner_up must have one entry per row")
    low = row_confidence(confidence) < threshold
    joint = np.ravel_multi_index(states.T, SHAPE) if len(states) else np.zeros(0, dtype=int)
    out = []
    for first, last in _spans(low, join_rows):
        part = slice(first, last + 1)
        below = (confidence[part] < threshold).any(axis=0)
        rows = first + np.flatnonzero(low[part])
        out.append(Doubt(int(first), int(last), float(timestamp[first]), float(timestamp[last]),
                         float(confidence[part].min()), tuple(d for d, b in zip(DEVICES, below) if b),
                         *_most_common_pair(joint[rows], runner_up[rows])))
    return out


def explanation(joint):
    """A joint state in plain words."""
    combo = np.unravel_index(int(joint), SHAPE)
    return " + ".join(f"{PLAIN_NAMES[d]} {STATES[d][s]}" for d, s in zip(DEVICES, combo))


def _clock(timestamp):
    return np.datetime_as_string(np.datetime64(int(round(timestamp)), "s"), unit="s")[11:]


def describe(doubt, levels=None):
    """One plain sentence: when, what the model chose, the runner-up and, given the expected
    current of every joint state (levels, (18,) mA at the recording's gain), why they compete."""
    first, last = doubt.first_row + 1, doubt.last_row + 1
    when = (f"{_clock(doubt.start)} UTC (row {first})" if doubt.rows == 1 else
            f"{_clock(doubt.start)}-{_clock(doubt.end)} UTC (rows {first}-{last}, {doubt.seconds:.0f} s)")
    who = ", ".join(PLAIN_NAMES[d] for d in doubt.devices)
    text = (f"{when}: "
            f"unsure of {who} (confidence down to {doubt.lowest:.2f}). "
            f"Chosen: {explanation(doubt.chosen)}; runner-up: {explanation(doubt.runner_up)}")
    if levels is None:
        return text + "."
    gap = abs(float(levels[doubt.chosen]) - float(levels[doubt.runner_up]))
    if gap <= LOOK_ALIKE_STEPS * METER_STEP_MA:
        return text + (f". Their expected currents differ by only {gap:.0f} mA, within "
                       f"{LOOK_ALIKE_STEPS} meter steps: the samples fit both.")
    return text + (f". Their expected currents differ by {gap:.0f} mA: the doubt is about when "
                   "a switch happened, not what was on.")
