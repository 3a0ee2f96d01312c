"""nilm.label: the labelled CSV's exact bytes, the CLI's exit codes and its light import path.

The expected output of the stored model on the fixture was generated once with
    python -m nilm.label tests/fixtures/nilm/small_main.csv -o tests/fixtures/nilm/small_main_labelled.csv
and is committed: regenerate it (and look at the diff) when the stored model is retrained.
"""
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from nilm.devices import DEVICES, MAIN_GLOB, REPO_ROOT, STATES, data_dir, find_file
from nilm.io import InputError, read_recording
from nilm.label import CONFIDENCE_HEADER, HEADER, format_labels, label_bytes, label_recording

FIXTURES = Path(__file__).parent / "fixtures" / "nilm"
SMALL = FIXTURES / "small_main.csv"
SMALL_LABELLED = FIXTURES / "small_main_labelled.csv"
REGENERATE = ("output differs from the committed expected file; if the stored model was retrained on "
              "purpose, regenerate it (see this module's docstring) and review the diff")


class CyclingModel:
    """Stand-in with a predict method: cycles through every joint state, row after row."""

    def predict(self, recording):
        i = np.arange(len(recording))
        return np.column_stack([i % 3, (i // 3) % 3, (i // 9) % 2])


def run_cli(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "nilm.label", *map(str, args)],
                          capture_output=True, cwd=cwd or REPO_ROOT, timeout=60)


def test_header_and_state_names_follow_the_vocabulary():
    assert HEADER == ("timestamp,Maximum current,Effective current,"
                      "PC screen1 state,PC screen2 state,Temperature sensor state")
    states = np.array([[0, 1, 1], [2, 0, 0], [1, 2, 1]])
    fields = [("1.5", "2", "3"), ("4", "5.0", "6"), ("7", "8", "9.00")]
    assert format_labels(fields, states) == (
        HEADER + "\n"
        "1.5,2,3,OFF,IDLE,ON\n"
        "4,5.0,6,ON,OFF,OFF\n"
        "7,8,9.00,IDLE,ON,ON\n").encode()


def test_confidence_columns_follow_the_states_at_three_decimals():
    assert CONFIDENCE_HEADER == ("PC screen1 confidence,PC screen2 confidence,"
                                 "Temperature sensor confidence")
    states = np.array([[0, 1, 1], [2, 0, 0]])
    confidence = np.array([[1.0, 0.12345, 0.0], [0.9995, 0.5, 0.0004]])
    assert format_labels([("1", "2", "3"), ("4", "5", "6")], states, confidence) == (
        HEADER + "," + CONFIDENCE_HEADER + "\n"
        "1,2,3,OFF,IDLE,ON,1.000,0.123,0.000\n"
        "4,5,6,ON,OFF,OFF,1.000,0.500,0.000\n").encode()
    with pytest.raises(ValueError, match="confidence must have shape"):
        format_labels([("1", "2", "3")], states[:1], confidence)


def test_format_labels_refuses_states_of_the_wrong_shape_or_range():
    fields = [("1", "2", "3")]
    with pytest.raises(ValueError, match="shape"):
        format_labels(fields, np.zeros((2, 3), dtype=int))
    with pytest.raises(ValueError):
        format_labels(fields, np.array([[0, 0, 2]]))  # the sensor has two states


def test_every_joint_state_is_written_with_its_names():
    recording = read_recording(SMALL)
    lines = label_recording(recording, CyclingModel()).decode().splitlines()
    assert len(lines) == len(recording) + 1
    written = {tuple(line.split(",")[3:]) for line in lines[1:]}
    assert len(written) == 18
    for names in written:
        assert all(name in STATES[device] for name, device in zip(names, DEVICES))


def test_output_echoes_the_input_text_whatever_its_layout():
    comma = SMALL.read_bytes()
    lines = comma.decode().splitlines()
    variants = [
        "\ufeff" + "\r\n".join(["timestamp;max;eff"] + [line.replace(",", ";") for line in lines]),
        "\n".join(line.replace(",", "\t") for line in lines) + "\n\n",
    ]
    expected = label_bytes(comma, "small.csv", CyclingModel())
    assert expected.decode().splitlines()[1].startswith("1536200000.00052,0.0,0.0,")
    for variant in variants:
        assert label_bytes(variant.encode(), "small.csv", CyclingModel()) == expected


def test_label_bytes_raises_input_error_on_bad_data():
    with pytest.raises(InputError, match=r"^up\.csv line 2: maximum current is not a number"):
        label_bytes(b"1,2,3\n2,x,3\n", "up.csv", CyclingModel())


# --- the CLI, with the model stored in the package ---

def test_cli_output_file_matches_the_committed_expected_bytes(tmp_path):
    out = tmp_path / "labelled.csv"
    result = run_cli(SMALL, "-o", out)
    assert result.returncode == 0, result.stderr
    assert result.stdout == b"" and result.stderr == b""
    assert out.read_bytes() == SMALL_LABELLED.read_bytes(), REGENERATE
    assert [p.name for p in tmp_path.iterdir()] == ["labelled.csv"]  # no temporary left over


def test_cli_writes_to_stdout_without_o(tmp_path):
    result = run_cli(SMALL, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout == SMALL_LABELLED.read_bytes(), REGENERATE
    assert list(tmp_path.iterdir()) == []


def test_cli_confidence_appends_the_model_posteriors_and_keeps_the_states(tmp_path):
    from nilm.model import load

    out = tmp_path / "labelled.csv"
    result = run_cli(SMALL, "-o", out, "--confidence")
    assert result.returncode == 0, result.stderr
    lines = out.read_text().splitlines()
    plain = SMALL_LABELLED.read_text().splitlines()
    assert lines[0] == HEADER + "," + CONFIDENCE_HEADER
    assert [line.rsplit(",", 3)[0] for line in lines] == plain
    _, confidence = load().predict(read_recording(SMALL), return_confidence=True)
    written = np.array([[float(v) for v in line.split(",")[-3:]] for line in lines[1:]])
    assert np.allclose(written, confidence, atol=0.0005 + 1e-9)
    assert all(len(v) == 5 for line in lines[1:] for v in line.split(",")[-3:])


def test_expected_fixture_echoes_the_input_fields_exactly():
    inputs = SMALL.read_text().splitlines()
    outputs = SMALL_LABELLED.read_text().splitlines()
    assert outputs[0] == HEADER
    assert [",".join(line.split(",")[:3]) for line in outputs[1:]] == inputs


def test_cli_labels_the_main_recording_with_the_library_result(tmp_path):
    main = find_file(data_dir(), MAIN_GLOB)
    out = tmp_path / "main_labelled.csv"
    assert run_cli(main, "-o", out).returncode == 0
    assert out.read_bytes() == label_bytes(main.read_bytes(), main.name)


@pytest.mark.parametrize("content, message", [
    (b"1536129671.0,24.41,17.3\n1536129672.0,abc,1\n",
     "error: bad.csv line 2: maximum current is not a number: 'abc'\n"),
    (b"1536129671.0,24.41,17.3\n1536129670.0,24.41,17.3\n",
     "error: bad.csv line 2: timestamp goes back in time (previous row has 1536129671.0): "
     "'1536129670.0'\n"),
    (b"", "error: bad.csv: file is empty\n"),
    (b"1536129671.0,24.41,17.3\n1536129672.0,1e8,1\n",
     "error: bad.csv line 2: maximum current is above 100000 mA (100 A): '1e8'\n"),
    (b"1536129671.0,24.41,1e300\n",
     "error: bad.csv line 1: effective current is above 100000 mA (100 A): '1e300'\n"),
    (b"1;2,5;3\n2;4;\n",
     "error: bad.csv line 1: maximum current is not a number (write decimals with '.'): '2,5'\n"),
    (b"1;2;3\n2;4;\n", "error: bad.csv line 2: effective current is empty\n"),
    (b"\x00\x01\x02", "error: bad.csv line 1: binary data, not a CSV text file\n"),
])
def test_cli_bad_input_exits_2_with_one_line_and_no_output(tmp_path, content, message):
    bad = tmp_path / "bad.csv"
    bad.write_bytes(content)
    out = tmp_path / "out.csv"
    result = run_cli(bad, "-o", out)
    assert result.returncode == 2
    assert result.stderr.decode() == message
    assert result.stdout == b""
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.csv"]


def test_cli_reads_standard_input_for_a_dash(tmp_path):
    out = tmp_path / "out.csv"
    with open(SMALL, "rb") as stdin:
        result = subprocess.run([sys.executable, "-m", "nilm.label", "-", "-o", str(out)],
                                stdin=stdin, capture_output=True, cwd=REPO_ROOT, timeout=60)
    assert result.returncode == 0, result.stderr
    assert out.read_bytes() == SMALL_LABELLED.read_bytes()
    piped = subprocess.run([sys.executable, "-m", "nilm.label", "-"], input=SMALL.read_bytes(),
                           capture_output=True, cwd=REPO_ROOT, timeout=60)
    assert piped.returncode == 0 and piped.stdout == SMALL_LABELLED.read_bytes()


def test_cli_bad_standard_input_names_stdin(tmp_path):
    result = subprocess.run([sys.executable, "-m", "nilm.label", "-", "-o", str(tmp_path / "o.csv")],
                            input=b"1;2,5;3\n2;4;\n", capture_output=True, cwd=REPO_ROOT, timeout=60)
    assert result.returncode == 2
    assert result.stderr.decode() == (
        "error: <stdin> line 1: maximum current is not a number (write decimals with '.'): '2,5'\n")
    assert list(tmp_path.iterdir()) == []


def test_cli_bad_input_leaves_an_existing_output_untouched(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_bytes(b"1,2\n")
    out = tmp_path / "out.csv"
    out.write_bytes(b"previous result\n")
    result = run_cli(bad, "-o", out)
    assert result.returncode == 2
    assert out.read_bytes() == b"previous result\n"


def test_cli_missing_input_is_one_line(tmp_path):
    result = run_cli(tmp_path / "missing.csv")
    assert result.returncode == 2
    assert result.stderr.decode() == f"error: {tmp_path / 'missing.csv'}: no such file\n"


def test_cli_unwritable_output_is_one_line(tmp_path):
    result = run_cli(SMALL, "-o", tmp_path / "no" / "such" / "dir.csv")
    assert result.returncode == 2
    assert result.stderr.decode().startswith("error: cannot write ")
    assert result.stderr.count(b"\n") == 1


def test_labelling_imports_neither_pandas_nor_sklearn(tmp_path):
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "nilm.label", str(SMALL), "-o",
         str(tmp_path / "out.csv")],
        capture_output=True, text=True, cwd=REPO_ROOT, timeout=60,
        env={**os.environ, "PYTHONWARNINGS": "ignore"})
    assert result.returncode == 0, result.stderr
    imported = {line.split("|")[-1].strip().split(".")[0]
                for line in result.stderr.splitlines() if line.startswith("import time:")}
    assert "numpy" in imported and "nilm" in imported  # the probe sees the imports
    assert not imported & {"pandas", "sklearn", "scipy", "dash", "plotly"}


def test_cli_stops_quietly_when_the_reader_leaves():
    main = find_file(data_dir(), MAIN_GLOB)  # its labels are larger than a pipe's buffer
    child = subprocess.Popen([sys.executable, "-m", "nilm.label", str(main)], cwd=REPO_ROOT,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert child.stdout.read(10) == b"timestamp,"
    child.stdout.close()  # as `| head -c 10` does
    assert child.wait(timeout=60) == 1
    assert child.stderr.read() == b""
    child.stderr.close()
