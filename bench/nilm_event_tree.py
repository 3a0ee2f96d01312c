"""The decision tree's job in the NILM decode, tried (issue 8 item 2): the shipped model's HMM
with the hand rules' switch-on gate, and with that gate refined by an event tree (nilm.events).

    .venv/bin/python bench/nilm_event_tree.py [--seeds 10] [--scenarios a,b] [--no-synth]
        [--on-threshold 0.9] [--spike-floor 0.2] [--step-floor 0.0]

Stress: nilm.stress's TUNING_SEEDS only (the first --seeds), the shipped model; the event tree
is fitted on augmented nilm.synth series from the recordings. Synth: nilm.evaluate's split (the
model and the event tree fitted on the training parts, the cases drawn from the held-out parts).
Prints the joint accuracy (mean and worst file) with each gate.
"""
import argparse
import sys
from pathlib import Path
from unittest import mock

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from nilm import decode, evaluate, stress  # noqa: E402
from nilm.events import EventGate, fit_event_tree  # noqa: E402
from nilm.io import load_device_recordings  # noqa: E402
from nilm.model import NilmModel, load  # noqa: E402
from nilm.states import max_current_of  # noqa: E402
from nilm.synth import make_source  # noqa: E402

HAND_RULES = decode.switch_on_gate


def predict(model, recording, tree=None, **settings):
    """The model's states, its decode gated by the hand rules (tree None) or by the event tree."""
    if tree is None:
        return model.predict(recording)
    gate = EventGate(tree, model._initial_gain(max_current_of(recording)), **settings)
    # The decode looks its gate up per batch (nilm.decode.series_of): the tree's replaces it here.
    def gated(x, signs=None):
        return gate.gate(x, HAND_RULES(x, signs))

    with mock.patch.object(decode, "switch_on_gate", gated):
        return model.predict(recording)


def joint(truth, predicted):
    return float((truth == predicted).all(axis=1).mean())


def stress_table(model, tree, names, seeds, settings):
    print(f"stress, tuning seeds {seeds[0]}-{seeds[-1]}: joint accuracy mean (worst file)")
    print(f"{'scenario':18s} {'hand rules':>15s} {'event tree':>15s} {'change':>7s}")
    means = []
    for name in names:
        cases = [stress.make_case(name, seed) for seed in seeds]
        hand = [joint(c.states, predict(model, c.recording())) for c in cases]
        tree_ = [joint(c.states, predict(model, c.recording(), tree, **settings)) for c in cases]
        means.append((np.mean(hand), np.mean(tree_)))
        print(f"{name:18s} {np.mean(hand):7.3f} ({min(hand):.3f}) {np.mean(tree_):7.3f} ({min(tree_):.3f}) "
              f"{np.mean(tree_) - np.mean(hand):+7.3f}", flush=True)
    hand, tree_ = np.mean(means, axis=0)
    print(f"{'all scenarios':18s} {hand:7.3f}         {tree_:7.3f}         {tree_ - hand:+7.3f}")


def synth_table(recordings, settings):
    train, source = evaluate.split_recordings(recordings)
    cases = evaluate.make_cases(source)
    model = NilmModel(random_state=evaluate.SEED).fit(train)
    tree = fit_event_tree(make_source(train, random_state=evaluate.SEED), model._initial_gain,
                          random_state=evaluate.SEED)
    print("\nnilm.evaluate's held-out synth cases: joint accuracy (pooled; per case)")
    for label, tree_ in (("hand rules", None), ("event tree", tree)):
        scores = [joint(c["data"].states, predict(model, c["data"].current, tree_, **settings))
                  for c in cases]
        print(f"{label:12s} {np.mean(scores):.3f}; " + " ".join(f"{s:.3f}" for s in scores), flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=len(stress.TUNING_SEEDS))
    parser.add_argument("--scenarios", default=",".join(stress.scenarios()))
    parser.add_argument("--no-synth", action="store_true")
    parser.add_argument("--on-threshold", type=float, default=0.9)
    parser.add_argument("--spike-floor", type=float, default=0.2)
    parser.add_argument("--step-floor", type=float, default=0.0)
    args = parser.parse_args()
    settings = dict(on_threshold=args.on_threshold, spike_floor=args.spike_floor, step_floor=args.step_floor)
    recordings = load_device_recordings()
    model = load()
    tree = fit_event_tree(make_source(recordings, random_state=0), model._initial_gain)
    print(f"event tree: {tree.feature.size} nodes; gate settings {settings}")
    stress_table(model, tree, args.scenarios.split(","), stress.TUNING_SEEDS[:args.seeds], settings)
    if not args.no_synth:
        synth_table(recordings, settings)


if __name__ == "__main__":
    main()
