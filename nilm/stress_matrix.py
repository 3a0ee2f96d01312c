"""The stress matrix: the shipped model on nilm.stress's scenarios, beside the near ceiling.

For every scenario, several files (REPORT_SEEDS for the stored numbers, TUNING_SEEDS while tuning):
the model's mean joint accuracy and its worst file, the same model without its tree, the
near-ceiling decoder (nilm.ceiling), and how well the model's confidence predicts its errors: the
accuracy of the rows where every device's confidence is >= CONFIDENT, the share of rows that
are, and the share of wrong rows it flags (confidence < CONFIDENT on some device).

    run(model, scenarios=None, seeds=REPORT_SEEDS, n_rows=N_ROWS, directory=None) -> dict (below)
    matrix_rows(matrix) -> (header, rows of text): the table for the report and the /nilm page
    format_matrix(matrix) -> plain text

    {"settings": {"seeds", "split", "rows_per_file", "confident", "target_joint", "share_of_ceiling"},
     "scenarios": [{"name", "description",
                    "model" / "model_no_tree" / "ceiling": {"mean", "worst", "worst_seed"},
                    "confident_accuracy", "confident_share", "errors_flagged" (None: no rows/errors),
                    "model_mistake" / "ceiling_mistake": {"true", "predicted", "rows"} or None (the
                        most frequent wrong joint state, in words),
                    "verdict": "met" | "near ceiling" | "not met", "reason": text or None}]}
"""
import copy

import numpy as np

from nilm import stress
from nilm.ceiling import NearCeiling
from nilm.devices import SHAPE
from nilm.doubt import explanation

CONFIDENT = 0.9
TARGET_JOINT = 0.95
SHARE_OF_CEILING = 0.97
# Why a scenario may stay below TARGET_JOINT whatever the decoder (the ceiling's number says
# whether it does); the issue expects the first two.
LIMITS = {
    "dwell_5_20s": "stays of 5-20 s are 5 to 19 rows long: a switch of the sensor (2 meter steps) "
                   "hides in the screens' noise before the chain can confirm it",
    "only_screen1": "screen 1's levels are about 1.1 x screen 2's and the gain is unknown: screen 1 "
                    "alone at one gain looks like screen 2 alone at a gain 10 % higher",
    "only_screen2": "screen 2's levels are about 0.9 x screen 1's and the gain is unknown: screen 2 "
                    "alone at one gain looks like screen 1 alone at a gain 10 % lower",
    "sensor_no_spike": "without its inrush spike a sensor switch-on is a step of about 22 mA (2 meter "
                       "steps), no bigger than the gaps between look-alike combinations of the screens",
    "gaps": "a minute without rows hides switches: what happened inside a gap cannot be known",
    "gain_drift": "as the gain moves, look-alike combinations of the screens move into each other",
    "noise_6mA": "6 mA of noise blurs the sensor's 22 mA step and the screens' IDLE levels",
}


def model_variants(model):
    """{"model": the model as shipped, "model_no_tree": the same decoding without its tree}."""
    no_tree = copy.copy(model)
    no_tree.use_tree = False
    return {"model": model, "model_no_tree": no_tree}


def file_scores(truth, predicted, confidence=None):
    """Counts of one file: rows, right rows and, with confidence, the confident and flagged ones."""
    right = (truth == predicted).all(axis=1)
    out = {"rows": int(right.size), "right": int(right.sum())}
    if confidence is not None:
        sure = np.asarray(confidence).min(axis=1) >= CONFIDENT
        out.update(confident=int(sure.sum()), confident_right=int((sure & right).sum()),
                   flagged_errors=int((~sure & ~right).sum()))
    return out


def _spread(seeds, files):
    joint = [f["right"] / f["rows"] for f in files]
    worst = int(np.argmin(joint))
    return {"mean": float(np.mean(joint)), "worst": float(joint[worst]), "worst_seed": int(seeds[worst])}


def _share(part, whole):
    return float(part / whole) if whole else None


def top_mistake(truth, predicted):
    """The most frequent (true joint state, predicted joint state) among wrong rows, in words."""
    wrong = ~(truth == predicted).all(axis=1)
    if not wrong.any():
        return None
    pairs = np.c_[np.ravel_multi_index(truth[wrong].T, SHAPE),
                  np.ravel_multi_index(predicted[wrong].T, SHAPE)]
    found, counts = np.unique(pairs, axis=0, return_counts=True)
    k = int(np.argmax(counts))
    return {"true": explanation(found[k, 0]), "predicted": explanation(found[k, 1]), "rows": int(counts[k])}


def verdict(name, model_mean, ceiling_mean, ceiling_mistake=None):
    """("met" | "near ceiling" | "not met", reason or None) against the issue's targets."""
    if model_mean >= TARGET_JOINT:
        return "met", None
    # The known limit is named first, whatever the ceiling: a decoder that knows the generator's
    # gain law can tell what the model, which must allow any gain, may not.
    why = [LIMITS[name]] if name in LIMITS else []
    if ceiling_mean < TARGET_JOINT:
        if ceiling_mistake:
            why.append(f"even the near-ceiling decoder ({ceiling_mean:.3f}) takes {ceiling_mistake['true']} "
                       f"for {ceiling_mistake['predicted']} ({ceiling_mistake['rows']} rows)")
        else:
            why.append(f"the near-ceiling decoder reaches {ceiling_mean:.3f}")
        near = model_mean >= SHARE_OF_CEILING * ceiling_mean
        return ("near ceiling" if near else "not met"), "; ".join(why)
    why.append(f"the near-ceiling decoder reaches {ceiling_mean:.3f}: the data allow {TARGET_JOINT}, "
               "the model falls short")
    return "not met", "; ".join(why)


def summarise(name, seeds, files, mistakes=None):
    """One scenario's row of the matrix from its files' scores (see file_scores) and the
    model's and the ceiling's top mistakes (see top_mistake)."""
    mistakes = mistakes or {}
    model = [f["model"] for f in files]
    total = {k: sum(f[k] for f in model) for k in ("rows", "right", "confident", "confident_right",
                                                   "flagged_errors")}
    out = {"name": name, "description": stress.SCENARIOS[name].description,
           **{key: _spread(seeds, [f[key] for f in files]) for key in ("model", "model_no_tree", "ceiling")},
           "confident_accuracy": _share(total["confident_right"], total["confident"]),
           "confident_share": _share(total["confident"], total["rows"]),
           "errors_flagged": _share(total["flagged_errors"], total["rows"] - total["right"]),
           "model_mistake": mistakes.get("model"), "ceiling_mistake": mistakes.get("ceiling")}
    out["verdict"], out["reason"] = verdict(name, out["model"]["mean"], out["ceiling"]["mean"],
                                            out["ceiling_mistake"])
    return out


def run(model, scenarios=None, seeds=stress.REPORT_SEEDS, n_rows=stress.N_ROWS, directory=None):
    """The matrix (see the module docstring) of a fitted NilmModel."""
    variants = model_variants(model)
    rows = []
    for name in scenarios or stress.scenarios():
        ceiling = NearCeiling(name, directory).fit()
        files, truth, predicted = [], [], {"model": [], "ceiling": []}
        for seed in seeds:
            case = stress.make_case(name, seed, n_rows, directory)
            recording = case.recording()
            states, confidence = variants["model"].predict(recording, return_confidence=True)
            no_tree = variants["model_no_tree"].predict(recording)
            best = ceiling.predict(case)
            files.append({"model": file_scores(case.states, states, confidence),
                          "model_no_tree": file_scores(case.states, no_tree),
                          "ceiling": file_scores(case.states, best)})
            truth.append(case.states)
            predicted["model"].append(states)
            predicted["ceiling"].append(best)
        mistakes = {k: top_mistake(np.concatenate(truth), np.concatenate(v)) for k, v in predicted.items()}
        rows.append(summarise(name, seeds, files, mistakes))
    split = "report" if tuple(seeds) == stress.REPORT_SEEDS else (
        "tuning" if tuple(seeds) == stress.TUNING_SEEDS else "other")
    return {"settings": {"seeds": list(seeds), "split": split, "rows_per_file": n_rows,
                         "confident": CONFIDENT, "target_joint": TARGET_JOINT,
                         "share_of_ceiling": SHARE_OF_CEILING},
            "scenarios": rows}


def _num(value):
    return "-" if value is None else f"{value:.3f}"


def matrix_rows(matrix):
    """(header, rows) of text cells, one row per scenario."""
    c = matrix["settings"]["confident"]
    header = ["scenario", "model mean", "model worst", "without tree", "near ceiling",
              f"accuracy at confidence \u2265 {c}", f"rows \u2265 {c}", f"errors flagged (< {c})", "target"]
    rows = [[s["name"], _num(s["model"]["mean"]), _num(s["model"]["worst"]), _num(s["model_no_tree"]["mean"]),
             _num(s["ceiling"]["mean"]), _num(s["confident_accuracy"]), _num(s["confident_share"]),
             _num(s["errors_flagged"]), s["verdict"]]
            for s in matrix["scenarios"]]
    return header, rows


def format_matrix(matrix):
    """The matrix as plain text, then the scenarios below the target with their reason."""
    header, rows = matrix_rows(matrix)
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)) for row in [header, *rows]]
    s = matrix["settings"]
    lines.insert(0, f"stress matrix ({s['split']} seeds {s['seeds']}, {s['rows_per_file']} rows per file)")
    lines += [f"  {r['name']} ({r['verdict']}): {r['reason']}" for r in matrix["scenarios"] if r["reason"]]
    lines += ["", "the model's most frequent mistake per scenario (true -> predicted: rows)"]
    lines += [f"  {r['name']}: {m['true']} -> {m['predicted']}: {m['rows']}"
              for r in matrix["scenarios"] if (m := r.get("model_mistake"))]
    return "\n".join(lines)
