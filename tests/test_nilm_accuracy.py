"""Accuracy regression of the stored model on a fixed synthetic case, and the evaluation's plumbing."""
import numpy as np
import pytest

from nilm import baselines, evaluate
from nilm.devices import DEVICES, STATES, data_dir
from nilm.io import load_device_recordings

# The case: the real aggregate's gain (1.08), calm switching like the main file (mean stay 150
# samples), five fixed seeds of 2,000 rows pooled. Measured with the stored nilm/model.npz of
# the "no hard bans / time-aware / one gain range" commit: model 0.986 (per seed 0.972 to
# 0.998; before it 0.988), CO 0.430; the same 0.986 after EM learnt each series' noise (adapt
# strength 500); 0.987 (per seed 0.974 to 0.998) after step distributions smoothed by 0.01 and a
# per-series switch_elsewhere; the same 0.987 after a freed switch-off and the untempered emission
# on short stays (neither applies to stays this long). The thresholds sit a little below the
# measured numbers.
CASE_SEEDS = (11, 12, 13, 14, 15)
MODEL_JOINT_MIN = 0.975
CO_JOINT_MEASURED = 0.430
MARGIN_OVER_CO = 0.45


@pytest.fixture(scope="module")
def recordings():
    return load_device_recordings(data_dir())


@pytest.fixture(scope="module")
def cases(recordings):
    from nilm.synth import generate, make_source

    source = make_source(recordings)
    return [generate(source, 2000, random_state=seed, gain=1.08, dwell=[150.0] * 3)
            for seed in CASE_SEEDS]


def joint_accuracy(cases, predict):
    truth = np.concatenate([c.states for c in cases])
    predicted = np.concatenate([predict(c.current) for c in cases])
    return float((truth == predicted).all(axis=1).mean())


def test_stored_model_stays_accurate_and_well_above_co(recordings, cases):
    from nilm.model import load

    model_joint = joint_accuracy(cases, load().predict)
    co = baselines.CombinatorialOptimisation().fit(*baselines.labelled_training_data(recordings))
    co_joint = joint_accuracy(cases, co.predict)
    assert co_joint == pytest.approx(CO_JOINT_MEASURED, abs=0.02)
    assert model_joint >= MODEL_JOINT_MIN
    assert model_joint >= co_joint + MARGIN_OVER_CO


def test_split_by_state_keeps_every_state_on_both_sides_in_time_order():
    labels = np.array([1] * 10 + [2] * 10 + [0] * 10 + [1] * 10)
    train = evaluate.split_by_state(labels, 0.7)
    for state in (0, 1, 2):
        rows = np.flatnonzero(labels == state)
        assert train[rows].sum() == round(0.7 * rows.size)
        # Every training row of a state comes before every held-out row of it.
        assert train[rows].tolist() == sorted(train[rows].tolist(), reverse=True)


def test_split_recordings_hold_out_part_of_every_state(recordings):
    train, source = evaluate.split_recordings(recordings)
    for i, device in enumerate(DEVICES):
        n_train, n_all = len(train[device].max_current), len(recordings[device].max_current)
        held_out = sum(pool.size for pool in source.pools[i])
        assert 0.65 * n_all <= n_train <= 0.75 * n_all
        assert len(source.pools[i]) == len(STATES[device])
        assert all(pool.size >= 3 for pool in source.pools[i])
        assert n_train + held_out <= n_all


def test_stored_results_name_every_method_and_case():
    results = evaluate.load_results()
    assert [m["key"] for m in results["methods"]] == list(evaluate.LABELS)
    assert len(results["cases"]) == len(evaluate.GAINS) * len(evaluate.DWELLS)
    for method in results["methods"]:
        assert 0.0 <= method["joint_accuracy"] <= 1.0
        assert set(method["devices"]) == set(DEVICES)
    assert "joint accuracy per case" in evaluate.format_table(results)


def test_load_results_of_a_missing_file_is_none(tmp_path):
    assert evaluate.load_results(tmp_path / "absent.json") is None


def test_take_rows_keeps_the_recording_type_and_field_text(recordings):
    recording = recordings["PC screen1"]
    part = evaluate.take_rows(recording, np.array([0, 5, 7]))
    assert type(part) is type(recording)
    assert part.fields == [recording.fields[i] for i in (0, 5, 7)]
    assert part.max_current.tolist() == recording.max_current[[0, 5, 7]].tolist()


def test_evaluate_cli_reports_missing_data_in_one_line(tmp_path, capsys):
    output = tmp_path / "results.json"
    code = evaluate.main(["--data", str(tmp_path), "--output", str(output), "--reports", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and "_screen1.csv" in err
    assert not output.exists()
