"""The stored NILM model on nilm.stress, per scenario, beside the near-ceiling decoder.

    .venv/bin/python bench/nilm_model_stress.py [--tuning] [--no-ceiling]

Reporting seeds by default (stress.REPORT_SEEDS; --tuning: the seeds settings are tuned on).
Per scenario: the model's mean and worst joint accuracy, the near-ceiling decoder's mean
(nilm.ceiling), the accuracy of rows whose three confidences are all >= 0.9, the share of the
model's wrong rows that the confidence flags (< 0.9), and the share of rows below 0.9.
"""
import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from nilm import stress  # noqa: E402
from nilm.ceiling import NearCeiling  # noqa: E402
from nilm.model import load  # noqa: E402


def scores(model, case):
    states, confidence = model.predict(case.recording(), return_confidence=True)
    right = (states == case.states).all(axis=1)
    sure = confidence.min(axis=1) >= 0.9
    return (right.mean(), right[sure].mean() if sure.any() else np.nan,
            (~right & ~sure).sum() / max((~right).sum(), 1), (~sure).mean())


def ceiling_accuracy(name, cases):
    decoder = NearCeiling(name)
    return np.mean([(decoder.predict(c) == c.states).all(axis=1).mean() for c in cases])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tuning", action="store_true")
    parser.add_argument("--no-ceiling", action="store_true")
    args = parser.parse_args()
    seeds = stress.TUNING_SEEDS if args.tuning else stress.REPORT_SEEDS
    model = load()
    print(f"seeds {seeds[0]}-{seeds[-1]}")
    print(f"{'scenario':18s} {'mean':>6s} {'worst':>6s} {'ceil':>6s} {'acc>=.9':>8s} {'flagged':>8s} "
          f"{'<.9':>5s}")
    for name in stress.scenarios():
        cases = [stress.make_case(name, seed) for seed in seeds]
        acc, sure, flagged, low = np.array([scores(model, c) for c in cases]).T
        ceiling = "   -  " if args.no_ceiling else f"{ceiling_accuracy(name, cases):6.3f}"
        print(f"{name:18s} {acc.mean():6.3f} {acc.min():6.3f} {ceiling} {np.nanmean(sure):8.3f} "
              f"{flagged.mean():8.2f} {low.mean():5.2f}", flush=True)


if __name__ == "__main__":
    main()
