"""nilm.stream: a file labelled in chunks gives the whole-file bytes, and the same messages."""
import io as bytes_io
import subprocess
import sys

import numpy as np
import pytest

from nilm import decode, stream
from nilm.io import InputError, read_recording
from nilm.label import label_recording
from nilm.model import load
from nilm.synth import generate

SMALL_BATCH = 4  # decode chunks per batch in these tests, so that a file spans several batches


@pytest.fixture(autouse=True)
def small_batches(monkeypatch):
    monkeypatch.setattr(decode, "BATCH_CHUNKS", SMALL_BATCH)


@pytest.fixture(scope="module")
def big_file(tmp_path_factory):
    """An aggregate of three decode batches and a bit, in the recordings' layout, with a header,
    a blank line and CRLF line ends."""
    n = 3 * SMALL_BATCH * decode.DECODE_CHUNK + 1000
    from nilm.io import load_device_recordings
    case = generate(load_device_recordings(), n, random_state=3, dwell=[150.0] * 3)
    stamps = 1536129671.0 + np.cumsum(np.full(n, 1.07))
    lines = [f"{t:.2f},{m:.2f},{m / np.sqrt(2):.1f}" for t, m in zip(stamps.tolist(), case.current.tolist())]
    lines.insert(400, "")
    path = tmp_path_factory.mktemp("stream") / "big.csv"
    path.write_bytes(("timestamp,max,eff\r\n" + "\r\n".join(lines) + "\r\n").encode())
    return path


@pytest.fixture(scope="module")
def planned(big_file):
    """(current, seconds, plan) of big_file, as nilm.stream finds them before decoding."""
    recording = read_recording(big_file)
    current = recording.max_current
    seconds = decode.elapsed_seconds(recording, current.size)
    return current, seconds, load().plan(current, seconds)


@pytest.mark.parametrize("confidence", [False, True])
def test_chunked_labelling_gives_the_whole_file_bytes(big_file, confidence):
    whole = label_recording(read_recording(big_file), load(), confidence)
    out = bytes_io.BytesIO()
    stream.label_file(big_file, out, load(), confidence, chunk_rows=7000)  # many read chunks
    assert out.getvalue() == whole


def test_the_cli_streams_a_large_file_to_the_same_bytes(big_file, tmp_path, monkeypatch):
    from nilm import label

    monkeypatch.setattr(label, "STREAM_BYTES", 1000)
    assert label._large(str(big_file))
    out = tmp_path / "out.csv"
    assert label.main([str(big_file), "-o", str(out)]) == 0
    assert out.read_bytes() == label_recording(read_recording(big_file), load())


@pytest.mark.parametrize("tail, message", [
    ("1536129999.0,abc,1\n", "line 9: maximum current is not a number: 'abc'"),
    ("1536000000.0,24.41,17.3\n", "line 9: timestamp goes back in time (previous row has "
                                   "1536129678.0): '1536000000.0'"),
    ("1,2\n", "line 9: expected 3 fields separated by ',', found 2: '1,2'"),
])
def test_bad_rows_in_a_later_chunk_name_their_file_line(tmp_path, tail, message):
    rows = "".join(f"{1536129671 + i}.0,24.41,17.3\n" for i in range(8))
    path = tmp_path / "bad.csv"
    path.write_text(rows + tail)
    with pytest.raises(InputError) as streamed:
        stream.label_file(path, bytes_io.BytesIO(), load(), chunk_rows=3)
    with pytest.raises(InputError) as whole:
        read_recording(path)
    assert str(streamed.value) == str(whole.value) == f"bad.csv {message}"


def test_the_cli_refuses_a_bad_large_file_without_output(tmp_path):
    path = tmp_path / "bad.csv"
    good = "".join(f"{1536129671 + i}.0,24.41,17.3\n" for i in range(700_000))
    path.write_text(good + "1536129999.0,x,1\n")
    out = tmp_path / "out.csv"
    result = subprocess.run([sys.executable, "-m", "nilm.label", str(path), "-o", str(out)],
                            capture_output=True, timeout=300)
    assert result.returncode == 2
    assert result.stderr.decode() == "error: bad.csv line 700001: maximum current is not a number: 'x'\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.csv"]


def test_a_row_gets_the_same_labels_whatever_batch_it_falls_in(planned, monkeypatch):
    # Local signs (steps, spikes) must not depend on where a batch starts: running sums over a
    # part of the series once broke ties differently than over the whole.
    current, seconds, plan = planned
    results = []
    for width in (SMALL_BATCH, 3 * SMALL_BATCH):
        monkeypatch.setattr(decode, "BATCH_CHUNKS", width)
        parts = list(decode.batches(load(), plan, current, seconds, confidence=True))
        results.append([np.concatenate([getattr(p, name) for p in parts])
                        for name in ("joint", "confidence")])
    assert np.array_equal(results[0][0], results[1][0])
    assert np.array_equal(results[0][1], results[1][1])


def test_a_stretch_counts_as_at_most_confidence_stay_rows_for_the_confidence():
    current = np.concatenate([np.full(10, 36.6), np.full(40, 244.1), np.full(1000, 451.7)])
    weights = decode.stay_weights(current, 0, current.size)
    assert np.allclose(weights[:10], 1.0) and np.allclose(weights[10:50], decode.CONFIDENCE_STAY_ROWS / 40)
    # A long stretch counts STAY_REACH rows either side of a row (a batch's margin holds them).
    middle = 50 + 500
    assert weights[middle] == pytest.approx(decode.CONFIDENCE_STAY_ROWS / (2 * decode.STAY_REACH))
    reach = decode.STAY_REACH
    assert reach <= decode.DECODE_MARGIN
    part = decode.stay_weights(current, 300 - reach, 700 + reach)
    assert np.array_equal(part[reach:-reach], weights[300:700])


@pytest.mark.parametrize("sep", [";", "\t"])
def test_a_large_file_with_another_separator_gives_the_whole_file_bytes(big_file, tmp_path, sep):
    # Rows are written back with commas: a comma-separated row is copied as it is, others are
    # split and joined, as the whole-file path does.
    path = tmp_path / "other.csv"
    path.write_bytes(big_file.read_bytes().replace(b",", sep.encode()))
    whole = label_recording(read_recording(path), load(), True)
    assert whole.count(b";") == 0 and whole.count(b"\t") == 0
    out = bytes_io.BytesIO()
    stream.label_file(path, out, load(), True, chunk_rows=7000)
    assert out.getvalue() == whole


def test_with_confidence_viterbi_takes_whole_batches_and_forward_backward_halves(planned, monkeypatch):
    # Forward-backward's float64 passes run on half a batch at a time (memory); Viterbi, whose
    # Python steps cost about the same for twice the chunks, on the whole batch.
    current, seconds, plan = planned
    chunks = {"viterbi": [], "posterior": []}
    for name in chunks:
        real = getattr(decode, f"{name}_padded")

        def spy(log_emission, *args, real=real, name=name):
            chunks[name].append((log_emission.shape[0] - 2 * decode.DECODE_MARGIN) // decode.DECODE_CHUNK)
            return real(log_emission, *args)
        monkeypatch.setattr(decode, f"{name}_padded", spy)
    parts = list(decode.batches(load(), plan, current, seconds, confidence=True))
    assert chunks["viterbi"] == [SMALL_BATCH, SMALL_BATCH, SMALL_BATCH, 1]
    assert chunks["posterior"] == [SMALL_BATCH // 2] * 6 + [1]
    assert sum(p.confidence.shape[0] for p in parts) == current.size
