"""nilm.io: every accepted layout parses to the same numbers; every bad input names file and line."""
from pathlib import Path

import numpy as np
import pytest

from nilm.devices import DEVICES, data_dir
from nilm.io import InputError, Recording, load_device_recordings, load_main, read_recording

FIXTURE = Path(__file__).parent / "fixtures" / "nilm" / "small_main.csv"

ROWS = [
    ("1536129671.00052", "24.41", "17.3"),
    ("1536129672.063807", "12.21", "8.6"),
    ("1536129673.129709", "36.62", "25.9"),
]


def csv_text(rows=ROWS, sep=",", newline="\n", header=None, bom=False):
    lines = ([sep.join(header)] if header else []) + [sep.join(row) for row in rows]
    return ("\ufeff" if bom else "") + newline.join(lines) + newline


def assert_same_recording(recording, rows=ROWS):
    assert recording.fields == rows
    expected = np.array(rows, dtype=float)
    np.testing.assert_array_equal(recording.timestamp, expected[:, 0])
    np.testing.assert_array_equal(recording.max_current, expected[:, 1])
    np.testing.assert_array_equal(recording.effective_current, expected[:, 2])


@pytest.mark.parametrize("sep", [",", ";", "\t"])
@pytest.mark.parametrize("newline", ["\n", "\r\n"])
@pytest.mark.parametrize("header", [None, ("timestamp", "Maximum current", "Effective current")])
@pytest.mark.parametrize("bom", [False, True])
def test_every_layout_parses_to_the_same_numbers_and_text(sep, newline, header, bom):
    data = csv_text(sep=sep, newline=newline, header=header, bom=bom).encode("utf-8")
    recording = read_recording(data, "x.csv")
    assert_same_recording(recording)
    first_line = 2 if header else 1
    assert recording.line_numbers.tolist() == [first_line, first_line + 1, first_line + 2]


def test_original_field_text_is_kept_exactly():
    rows = [("1536129671.00052", "24.410", "17.30"), ("1.536129672e9", "+12.21", " 8.6"),
            ("1536129673", "1_2.5", "9\u2009")]  # numpy's parser refuses the last two; float() not
    recording = read_recording(csv_text(rows), "x.csv")
    assert recording.fields == rows
    np.testing.assert_array_equal(recording.timestamp, [1536129671.00052, 1536129672, 1536129673])
    np.testing.assert_array_equal(recording.max_current, [24.41, 12.21, 12.5])
    np.testing.assert_array_equal(recording.effective_current, [17.3, 8.6, 9])


ISO_ROWS = [  # ROWS' times in ISO 8601: with Z, with an offset (converted to UTC), and naive (UTC)
    ("2018-09-05T06:41:11.000520Z", "24.41", "17.3"),
    ("2018-09-05T08:41:12.063807+02:00", "12.21", "8.6"),
    ("2018-09-05 06:41:13.129709", "36.62", "25.9"),
]


@pytest.mark.parametrize("sep", [",", ";", "\t"])
def test_iso_8601_timestamps_read_as_the_same_unix_seconds(sep):
    recording = read_recording(csv_text(ISO_ROWS, sep=sep, header=("time", "max", "eff")), "iso.csv")
    unix = read_recording(csv_text(ROWS), "unix.csv")
    np.testing.assert_allclose(recording.timestamp, unix.timestamp, rtol=0, atol=1e-6)
    np.testing.assert_array_equal(recording.max_current, unix.max_current)
    assert recording.fields == ISO_ROWS  # echoed as written
    assert recording.line_numbers.tolist() == [2, 3, 4]


def test_iso_timestamps_are_checked_like_unix_ones():
    later_first = [ISO_ROWS[1], ISO_ROWS[0]]
    assert bad(later_first) == ("main.csv line 2: timestamp goes back in time (previous row has "
                                "2018-09-05T08:41:12.063807+02:00): '2018-09-05T06:41:11.000520Z'")
    assert bad([ISO_ROWS[0], ("2018-09-05T25:00:00Z", "1", "1")]) == (
        "main.csv line 2: timestamp is not a time (Unix seconds or ISO 8601, e.g. "
        "2018-09-05T06:27:51Z): '2018-09-05T25:00:00Z'")
    assert bad([ISO_ROWS[0], ("2018-09-05T06:41:12Z", "abc", "1")]) == (
        "main.csv line 2: maximum current is not a number: 'abc'")


def test_numbers_equal_pythons_float_on_the_main_recording():
    main = load_main()
    expected = np.array(main.fields, dtype=float)
    np.testing.assert_array_equal(main.timestamp, expected[:, 0])
    np.testing.assert_array_equal(main.max_current, expected[:, 1])
    np.testing.assert_array_equal(main.effective_current, expected[:, 2])


def test_sources_path_str_path_bytes_and_text_agree(tmp_path):
    path = tmp_path / "rec.csv"
    path.write_text(csv_text())
    for source in (path, str(path), path.read_bytes(), path.read_text()):
        assert_same_recording(read_recording(source))
    assert read_recording(path).name == "rec.csv"
    assert read_recording(str(path)).name == "rec.csv"
    assert read_recording(path.read_bytes(), "upload.csv").name == "upload.csv"


def test_blank_lines_are_skipped_and_line_numbers_stay_true():
    text = "\n" + "timestamp,max,eff\n\n" + csv_text().replace("\n", "\n  \n", 1) + "\n\n"
    recording = read_recording(text, "x.csv")
    assert_same_recording(recording)
    assert recording.line_numbers.tolist() == [4, 6, 7]


def test_utf16_spreadsheet_export_is_read():
    data = csv_text(sep="\t", newline="\r\n").encode("utf-16")
    assert_same_recording(read_recording(data, "x.csv"))


def test_equal_timestamps_are_allowed():
    rows = [ROWS[0], (ROWS[0][0], "0.0", "0")]
    assert len(read_recording(csv_text(rows), "x.csv")) == 2


def test_recording_is_a_frozen_dataclass():
    recording = read_recording(csv_text(), "x.csv")
    assert isinstance(recording, Recording)
    with pytest.raises(AttributeError):
        recording.name = "other"
    assert recording.timestamp.dtype == np.float64
    assert len(recording) == 3


def bad(rows, **layout):
    """The InputError message for a CSV built from rows."""
    with pytest.raises(InputError) as caught:
        read_recording(csv_text(rows, **layout).encode(), "main.csv")
    message = str(caught.value)
    assert "\n" not in message
    return message


@pytest.mark.parametrize("cell, column, problem", [
    (("1536129672.063807", "abc", "8.6"), "maximum current", "is not a number: 'abc'"),
    (("1536129672.063807", "12.21", "abc"), "effective current", "is not a number: 'abc'"),
    (("yesterday", "12.21", "8.6"), "timestamp",
     "is not a time (Unix seconds or ISO 8601, e.g. 2018-09-05T06:27:51Z): 'yesterday'"),
    (("1536129672.063807", "", "8.6"), "maximum current", "is empty"),
    (("1536129672.063807", " ", "8.6"), "maximum current", "is empty"),
    (("1536129672.063807", "12.21", "\t"), "effective current", "is empty"),
    (("", "12.21", "8.6"), "timestamp", "is empty"),
    (("1536129672.063807", "12,21", "8.6"), "maximum current",
     "is not a number (write decimals with '.'): '12,21'"),
    (("1536129672.063807", "1e8", "8.6"), "maximum current",
     "is above 100000 mA (100 A): '1e8'"),
    (("1536129672.063807", "12.21", "1e300"), "effective current",
     "is above 100000 mA (100 A): '1e300'"),
    (("1536129672.063807", "nan", "8.6"), "maximum current", "is not a finite number: 'nan'"),
    (("1536129672.063807", "12.21", "inf"), "effective current", "is not a finite number: 'inf'"),
    (("inf", "12.21", "8.6"), "timestamp", "is not a finite number: 'inf'"),
    (("1536129672.063807", "-12.21", "8.6"), "maximum current", "is negative: '-12.21'"),
    (("1536129672.063807", "12.21", "-0.1"), "effective current", "is negative: '-0.1'"),
    (("1536129670.5", "12.21", "8.6"), "timestamp",
     "goes back in time (previous row has 1536129671.00052): '1536129670.5'"),
])
def test_bad_cell_names_file_line_column_and_text(cell, column, problem):
    sep = ";" if "12,21" in cell else ","
    assert bad([ROWS[0], cell, ROWS[2]], sep=sep) == f"main.csv line 2: {column} {problem}"
    if "goes back" in problem:
        return
    # The same cell in the last row, where the fast parser once let a missing number pass.
    assert bad([ROWS[0], ROWS[1], cell], sep=sep) == f"main.csv line 3: {column} {problem}"


def test_the_top_of_the_current_range_is_accepted():
    rows = [ROWS[0], ("1536129672.063807", "100000", "70710.7")]
    assert read_recording(csv_text(rows), "main.csv").max_current[-1] == 100_000


# Decimal commas are refused, not read: the labelled CSV echoes each field's text between
# commas, so a "2,5" field would split into two columns there.
@pytest.mark.parametrize("text, problem", [
    # A decimal comma in one row and a missing field in the next: the same count of numbers.
    ("1;2,5;3\n2;4;\n", "line 1: maximum current is not a number (write decimals with '.'): '2,5'"),
    ("1;2;3\n2;4;\n", "line 2: effective current is empty"),
    ("1\t2\t3,5\n2\t\t4\n", "line 1: effective current is not a number (write decimals with '.'): '3,5'"),
    ("1;2;3\n2; ;4\n", "line 2: maximum current is empty"),
])
def test_fields_are_checked_one_by_one_not_by_their_total(text, problem):
    with pytest.raises(InputError) as caught:
        read_recording(text, "x.csv")
    assert str(caught.value) == f"x.csv {problem}"


def test_spaces_around_numbers_are_read_like_float_does():
    recording = read_recording("1, 2 ,3\n4 ,5, 6\n", "x.csv")
    assert recording.max_current.tolist() == [2.0, 5.0]
    assert recording.fields[0] == ("1", " 2 ", "3")


def test_bad_cell_line_number_counts_the_header():
    rows = [ROWS[0], ROWS[1], ("1536129674.1", "x", "1")]
    message = bad(rows, header=("a", "b", "c"), newline="\r\n")
    assert message == "main.csv line 4: maximum current is not a number: 'x'"


def test_first_row_with_one_bad_cell_is_data_not_a_header():
    assert bad([("1536129671.0", "oops", "1"), ROWS[1]]) == (
        "main.csv line 1: maximum current is not a number: 'oops'")


@pytest.mark.parametrize("row, found", [
    ("1536129672.063807,12.21", 2), ("1536129672.063807,12.21,8.6,1", 4),
    ("1536129672.063807,12.21,8.6,", 4)])
def test_wrong_column_count(row, found):
    text = csv_text() + row + "\n"
    with pytest.raises(InputError) as caught:
        read_recording(text.encode(), "main.csv")
    assert str(caught.value) == (
        f"main.csv line 4: expected 3 fields separated by ',', found {found}: {row!r}")


def test_row_without_any_separator_is_not_a_csv_row():
    with pytest.raises(InputError, match=r"^main.csv line 1: not a CSV row of 3 fields"):
        read_recording(b"1536129671.0 12.21 8.6\n", "main.csv")


@pytest.mark.parametrize("data, message", [
    (b"", "main.csv: file is empty"),
    (b"\n\r\n  \n", "main.csv: file is empty"),
    (b"\xef\xbb\xbf", "main.csv: file is empty"),
    (b"timestamp,max,eff\n", "main.csv: no data rows after the header"),
    (b"1,2,3\nPK\x03\x04\x00\x00", "main.csv line 2: binary data, not a CSV text file"),
    (b"\x89PNG\r\n\x1a\n\x00", "main.csv line 1: not UTF-8 text (binary data?)"),
    (b"1,2,3\n4,5,6\n\xff\xd8\xff\xe0 JFIF\n", "main.csv line 3: not UTF-8 text (binary data?)"),
])
def test_empty_and_binary_files(data, message):
    with pytest.raises(InputError) as caught:
        read_recording(data, "main.csv")
    assert str(caught.value) == message


def test_binary_text_names_its_line():
    with pytest.raises(InputError, match=r"^<input> line 3: binary data"):
        read_recording("1,2,3\n4,5,6\n\0\0\n")


def test_missing_file_and_directory_are_input_errors(tmp_path):
    with pytest.raises(InputError, match=r"nope\.csv: no such file$"):
        read_recording(tmp_path / "nope.csv")
    with pytest.raises(InputError, match=r"is a directory"):
        read_recording(tmp_path)


def test_long_bad_cells_are_shortened_in_the_message():
    message = bad([ROWS[0], ("1536129672.1", "x" * 500, "1")])
    assert len(message) < 120 and message.endswith("...'")


def test_fixture_parses():
    recording = read_recording(FIXTURE)
    assert len(recording) == 40
    assert recording.fields[0] == ("1536200000.00052", "0.0", "0.0")
    assert recording.line_numbers[-1] == 40


def test_load_main_reads_the_shared_recording():
    main = load_main()
    assert len(main) > 1000
    assert main.fields[0] == ("1536129671.00052", "24.41", "17.3")
    assert np.all(np.diff(main.timestamp) >= 0)


def test_load_device_recordings_finds_every_device():
    recordings = load_device_recordings()
    assert tuple(recordings) == DEVICES
    for recording in recordings.values():
        assert len(recording) > 100
        assert recording.max_current.min() >= 0


def test_load_main_from_a_directory_without_recordings(tmp_path):
    with pytest.raises(InputError, match=r"no file matching \*_main\.csv"):
        load_main(tmp_path)
    assert data_dir().is_dir()


def test_iso_timestamps_label_like_unix_seconds_whole_and_in_chunks(tmp_path):
    from nilm import stream
    from tests.test_nilm_label import run_cli

    main = load_main()
    rows = main.fields[:400]
    iso = [(str(np.datetime64(round(float(t) * 1e6), "us")) + "Z", m, e) for t, m, e in rows]
    paths = {}
    for name, content in (("unix.csv", rows), ("iso.csv", iso)):
        paths[name] = tmp_path / name
        paths[name].write_text(csv_text(content))
    stamps, _ = stream.read_numbers(paths["iso.csv"], "iso.csv", chunk_rows=7)
    np.testing.assert_allclose(stamps, main.timestamp[:400], rtol=0, atol=1e-6)

    def labels(path):
        done = run_cli(path)
        done.check_returncode()
        return [line.split(",", 1)[1] for line in done.stdout.decode().splitlines()[1:]]

    # Same states on each row; only the echoed timestamp text differs.
    assert labels(paths["iso.csv"]) == labels(paths["unix.csv"])
