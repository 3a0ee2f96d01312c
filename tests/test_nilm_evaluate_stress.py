"""nilm.evaluate's stress matrix (nilm.stress_matrix): a small real run, the scoring, the verdicts."""
import numpy as np
import pytest

from nilm import evaluate, stress, stress_matrix
from nilm.devices import data_dir


@pytest.fixture(scope="module")
def small_matrix():
    from nilm.model import load

    return stress_matrix.run(load(), scenarios=["clean", "only_screen1"], seeds=stress.REPORT_SEEDS[:2],
                             n_rows=600, directory=data_dir())


def test_a_small_matrix_has_every_column_for_every_scenario(small_matrix):
    assert small_matrix["settings"]["seeds"] == list(stress.REPORT_SEEDS[:2])
    assert small_matrix["settings"]["split"] == "other"
    assert [s["name"] for s in small_matrix["scenarios"]] == ["clean", "only_screen1"]
    for row in small_matrix["scenarios"]:
        for key in ("model", "model_no_tree", "ceiling"):
            assert 0 <= row[key]["worst"] <= row[key]["mean"] <= 1
            assert row[key]["worst_seed"] in stress.REPORT_SEEDS[:2]
        assert 0 <= row["confident_share"] <= 1
        assert row["verdict"] in ("met", "near ceiling", "not met")
        assert (row["reason"] is None) == (row["verdict"] == "met")
    clean = small_matrix["scenarios"][0]
    assert clean["ceiling"]["mean"] >= 0.95
    header, rows = stress_matrix.matrix_rows(small_matrix)
    assert len(rows) == 2 and all(len(r) == len(header) for r in rows)
    assert "clean" in stress_matrix.format_matrix(small_matrix)


def test_file_scores_count_confident_rows_and_flagged_errors():
    truth = np.zeros((6, 3), dtype=int)
    predicted = truth.copy()
    predicted[[1, 4, 5], 2] = 1  # three wrong rows
    confidence = np.full((6, 3), 0.99)
    confidence[[0, 4], 1] = 0.5  # one right row and one wrong row are flagged
    scores = stress_matrix.file_scores(truth, predicted, confidence)
    assert scores == {"rows": 6, "right": 3, "confident": 4, "confident_right": 2, "flagged_errors": 1}
    assert stress_matrix.file_scores(truth, truth) == {"rows": 6, "right": 6}


def test_summarise_pools_rows_and_names_the_worst_file():
    files = [{"model": {"rows": 10, "right": 9, "confident": 8, "confident_right": 8, "flagged_errors": 1},
              "model_no_tree": {"rows": 10, "right": 9}, "ceiling": {"rows": 10, "right": 10}},
             {"model": {"rows": 10, "right": 5, "confident": 2, "confident_right": 2, "flagged_errors": 4},
              "model_no_tree": {"rows": 10, "right": 4}, "ceiling": {"rows": 10, "right": 6}}]
    row = stress_matrix.summarise("only_screen1", (7, 8), files)
    assert row["model"] == {"mean": 0.7, "worst": 0.5, "worst_seed": 8}
    assert row["confident_accuracy"] == 1.0 and row["confident_share"] == 0.5
    assert row["errors_flagged"] == pytest.approx(5 / 6)
    assert row["verdict"] == "not met" and "1.1 x screen 2" in row["reason"]


@pytest.mark.parametrize("model, ceiling, expected", [
    (0.96, 0.99, "met"), (0.90, 0.92, "near ceiling"), (0.80, 0.92, "not met"), (0.90, 0.99, "not met")])
def test_verdicts_follow_the_issue_targets(model, ceiling, expected):
    verdict, reason = stress_matrix.verdict("dwell_5_20s", model, ceiling)
    assert verdict == expected
    if expected != "met":
        assert f"{ceiling:.3f}" in reason


def test_the_variant_without_the_tree_leaves_the_shipped_model_alone():
    from nilm.model import load

    model = load()
    variants = stress_matrix.model_variants(model)
    assert variants["model"] is model and model.use_tree
    assert variants["model_no_tree"].use_tree is False


def test_stored_results_hold_the_matrix_of_every_scenario_on_the_report_seeds():
    matrix = evaluate.load_results()["stress"]
    assert matrix["settings"]["split"] == "report"
    assert matrix["settings"]["seeds"] == list(stress.REPORT_SEEDS)
    assert [s["name"] for s in matrix["scenarios"]] == stress.scenarios()
    for row in matrix["scenarios"]:
        if row["model"]["mean"] < stress_matrix.TARGET_JOINT:
            assert row["reason"]  # every scenario below 0.95 is named with its reason
    assert "stress matrix (report seeds" in evaluate.format_table(evaluate.load_results())


def test_stress_only_cli_reports_missing_data_in_one_line(tmp_path, capsys):
    output = tmp_path / "results.json"
    code = evaluate.main(["--stress-only", "--data", str(tmp_path), "--output", str(output)])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "_screen1.csv" in err
    assert not output.exists()


def test_the_matrix_figure_has_a_cell_per_scenario_and_column(small_matrix):
    from nilm import figures

    fig = figures.stress_matrix_figure(small_matrix)
    heatmap = fig.data[0]
    assert list(heatmap.y) == ["clean", "only_screen1"]
    assert len(heatmap.x) == len(figures.MATRIX_COLUMNS)
    assert heatmap.text[0][0] == f"{small_matrix['scenarios'][0]['model']['mean']:.3f}"


def test_top_mistake_names_the_most_frequent_confusion_in_words():
    truth = np.array([[2, 0, 0]] * 4 + [[0, 1, 0]] * 2)
    predicted = np.array([[0, 2, 1]] * 3 + [[2, 0, 0]] + [[1, 0, 0]] * 2)
    assert stress_matrix.top_mistake(truth, predicted) == {
        "true": "screen 1 ON + screen 2 OFF + sensor OFF",
        "predicted": "screen 1 OFF + screen 2 ON + sensor ON", "rows": 3}
    assert stress_matrix.top_mistake(truth, truth) is None
    mistake = {"true": "a", "predicted": "b", "rows": 7}
    assert "takes a for b (7 rows)" in stress_matrix.verdict("clean", 0.9, 0.93, mistake)[1]


def test_tuning_seeds_only_go_with_the_stress_matrix(capsys):
    with pytest.raises(SystemExit) as stopped:
        evaluate.main(["--tuning"])
    assert stopped.value.code == 2
    assert "--tuning goes with --stress-only" in capsys.readouterr().err


def test_a_scenario_short_of_a_passing_ceiling_still_names_its_known_limit():
    verdict, reason = stress_matrix.verdict("only_screen2", 0.84, 0.977)
    assert verdict == "not met"
    assert "0.9 x screen 1" in reason and "0.977" in reason
