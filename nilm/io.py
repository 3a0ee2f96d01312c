"""Read and validate current recordings and aggregates.

A recording is a CSV of three columns: timestamp, maximum current (mA) within the second and
effective current (mA) within the second. A timestamp is Unix seconds or ISO 8601 (a date and a
time, "2018-09-05T06:27:51.5Z"; an offset is converted to UTC, a time without one is taken as UTC).
Accepted: an optional header (a first line in which no field is a number), `,` `;` or tab separators
(sniffed from the first data line), CRLF, LF or CR line endings, an optional UTF-8 BOM, blank lines
(skipped). Validated: three fields per row, finite values, currents from 0 to MAX_CURRENT_MA (100
A), non-decreasing timestamps, at least one row. Numbers use '.' for decimals: a field such as "2,5"
(a decimal comma) is refused, not read, because the labelled CSV echoes each field's text between
commas. An empty field is refused too. Any problem raises InputError with one line naming the file,
the 1-based line of the file and the problem, e.g.
"main.csv line 17: effective current is not a number: 'abc'".

Public API:
    InputError                         ValueError with a one-line, user-facing message
    Recording                          frozen dataclass: name, timestamp, max_current,
                                       effective_current (float64 arrays), fields (original text
                                       of each row's three fields), line_numbers (1-based, int array)
    read_recording(source, name=None)  source: a path (str or PathLike), bytes, or CSV text (a str
                                       containing a newline)
    load_device_recordings(directory=None) -> {device name: Recording}
    load_main(directory=None) -> Recording

Only numpy and the standard library: this module is on the labelling path, which must start fast.
"""
import gc
import os
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from itertools import repeat
from pathlib import Path

import numpy as np

from nilm.devices import MAIN_GLOB, RECORDING_GLOBS, data_dir, find_file

COLUMNS = ("timestamp", "maximum current", "effective current")
SEPARATORS = ("\t", ";", ",")  # tab and ';' first: a ';' file may use decimal commas
BOM = "\ufeff"
NUL = "\0"
# A household circuit carries far less than 100 A; a larger value is a unit mistake or a corrupt
# file, and would stretch every level axis (and the figures' size) with it.
MAX_CURRENT_MA = 100_000.0
BLANK_FIELD = re.compile(r"(?:^|,)\s*(?:,|$)")


class InputError(ValueError):
    """Bad input, described in one line fit to show a user."""


@dataclass(frozen=True, eq=False)
class Recording:
    name: str
    timestamp: np.ndarray
    max_current: np.ndarray
    effective_current: np.ndarray
    fields: list  # [(timestamp text, max text, effective text)] exactly as in the input
    line_numbers: np.ndarray = None

    def __len__(self):
        return len(self.timestamp)


def read_recording(source, name=None):
    """Parse and validate one recording; raise InputError on any problem."""
    data, name = _read_source(source, name)
    lines = _decode(data, name).split("\n")
    del data  # a million rows must stay well under 1 GB: drop each stage once used
    start = _first_data_line(lines, name)
    sep = _sniff_separator(lines[start], start + 1, name)
    rows, line_numbers = _data_rows(lines, start, sep, name)
    del lines
    values = _to_numbers(rows, sep, line_numbers, name)
    fields = _field_tuples(rows, sep)
    del rows
    _validate(values, fields, line_numbers, name)
    return Recording(name, values[:, 0].copy(), values[:, 1].copy(), values[:, 2].copy(),
                     fields, line_numbers)


def _field_tuples(rows, sep):
    """[(timestamp, max, effective) texts] per row; each distinct current text is stored once."""
    # A current takes a few hundred distinct texts: sharing them saves ~100 MB per million rows,
    # and building row by row reuses the freed duplicates' memory at once instead of leaving
    # holes. The collector is paused: a million new tuples hold no cycles to find.
    shared = {}
    share = shared.setdefault
    enabled = gc.isenabled()
    gc.disable()
    try:
        return [(t, share(m, m), share(e, e)) for t, m, e in map(str.split, rows, repeat(sep))]
    finally:
        if enabled:
            gc.enable()


def load_device_recordings(directory=None):
    """The single-device recordings found in directory (default: data_dir()), by device name."""
    directory = Path(directory) if directory is not None else data_dir()
    return {device: read_recording(_require(directory, pattern))
            for device, pattern in RECORDING_GLOBS.items()}


def load_main(directory=None):
    """The aggregate recording (all devices on one wire) found in directory."""
    directory = Path(directory) if directory is not None else data_dir()
    return read_recording(_require(directory, MAIN_GLOB))


def _require(directory, pattern):
    path = find_file(directory, pattern)
    if path is None:
        raise InputError(f"{directory}: no file matching {pattern}")
    return path


def _read_source(source, name):
    """(bytes or str, display name) from a path, bytes or CSV text."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        return bytes(source), name or "<input>"
    if isinstance(source, str) and "\n" in source:
        return source, name or "<input>"
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        name = name or path.name
        try:
            return path.read_bytes(), name
        except FileNotFoundError:
            raise InputError(f"{source}: no such file") from None
        except IsADirectoryError:
            raise InputError(f"{source}: is a directory, not a CSV file") from None
        except OSError as error:
            raise InputError(f"{source}: cannot read: {error.strerror}") from None
    raise TypeError(f"read_recording needs a path, bytes or str, not {type(source).__name__}")


def _decode(data, name):
    """Text with LF line endings and no BOM; binary data is refused."""
    if isinstance(data, bytes) and data.startswith((b"\xff\xfe", b"\xfe\xff")):
        data = data.decode("utf-16", errors="replace")  # as some spreadsheets save "Unicode text"
    elif isinstance(data, bytes):
        try:
            data = data.decode("utf-8")
        except UnicodeDecodeError as error:
            raise InputError(f"{name} line {_line_of(data, error.start)}: "
                             "not UTF-8 text (binary data?)") from None
    if NUL in data:
        raise InputError(f"{name} line {_line_of(data, data.index(NUL))}: "
                         "binary data, not a CSV text file")
    text = data.removeprefix(BOM)
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    return text


def _line_of(data, offset):
    """1-based line of an offset into bytes or str."""
    return data[:offset].count(b"\n" if isinstance(data, bytes) else "\n") + 1


def _first_data_line(lines, name):
    """Index of the first non-blank line that is not a header."""
    while lines and not lines[-1].strip():
        lines.pop()
    nonblank = (i for i, line in enumerate(lines) if line.strip())
    first = next(nonblank, None)
    if first is None:
        raise InputError(f"{name}: file is empty")
    if _is_header(lines[first]):
        first = next(nonblank, None)
        if first is None:
            raise InputError(f"{name}: no data rows after the header")
    return first


def _separator_of(line):
    return next((sep for sep in SEPARATORS if sep in line), None)


def _is_header(line):
    """True when no field is a number: a first row with one bad cell is data, not a header."""
    return not any(_is_number(field) for field in line.split(_separator_of(line)))


def _is_number(text):
    try:
        float(text)
    except ValueError:
        return False
    return True


def _sniff_separator(row, line_number, name):
    sep = _separator_of(row)
    if sep is None:
        raise InputError(f"{name} line {line_number}: not a CSV row of 3 fields separated by "
                         f"',', ';' or tab: {_show(row)}")
    return sep


def _data_rows(lines, start, sep, name):
    """(lines from start with exactly 3 fields, their 1-based line numbers); blank lines skipped."""
    rows = lines[start:]
    line_numbers = np.arange(start + 1, start + 1 + len(rows))
    counts = [row.count(sep) for row in rows]
    if counts.count(2) == len(counts):
        return rows, line_numbers
    # Rare path: drop blank lines, then report the first row of the wrong width.
    keep = np.array([bool(row.strip()) for row in rows])
    rows = [row for row, kept in zip(rows, keep.tolist()) if kept]
    counts = [count for count, kept in zip(counts, keep.tolist()) if kept]
    line_numbers = line_numbers[keep]
    for row, count, line_number in zip(rows, counts, line_numbers):
        if count != 2:
            raise InputError(f"{name} line {line_number}: expected 3 fields separated by "
                             f"{_show_sep(sep)}, found {count + 1}: {_show(row)}")
    return rows, line_numbers


def _to_numbers(rows, sep, line_numbers, name):
    """(n, 3) float64 array of the rows' fields, parsed in C; cells it refuses are judged by float()
    (and timestamps by _timestamp, which also reads ISO 8601)."""
    values = _parse_fast(_commas(rows, sep), len(rows), 3)
    if values is not None:
        return values
    if rows and not _is_number(rows[0].split(sep, 1)[0]):
        values = _iso_rows(rows, sep, line_numbers, name)
        if values is not None:
            return values
    return np.array([[_timestamp(row_cells[0], line, name)]
                     + [_number(cell, line, column, name) for column, cell in enumerate(row_cells[1:], 1)]
                     for row_cells, line in zip(map(str.split, rows, repeat(sep)), line_numbers.tolist())],
                    dtype=np.float64)


def _commas(rows, sep):
    text = ",".join(rows)
    return text.replace(sep, ",") if sep != "," else text


def _iso_rows(rows, sep, line_numbers, name):
    """Values of rows whose timestamps are ISO 8601 texts: the times one by one, the currents in C;
    None when a current needs judging cell by cell."""
    stamps, currents = zip(*(row.split(sep, 1) for row in rows))
    values = _parse_fast(_commas(currents, sep), len(rows), 2)
    if values is None:
        return None
    times = [_timestamp(stamp, line, name) for stamp, line in zip(stamps, line_numbers.tolist())]
    return np.column_stack([np.array(times, dtype=np.float64), values])


def _parse_fast(text, n_rows, columns):
    """(n_rows, columns) values of columns * n_rows comma-separated fields, or None to have each
    judged.

    np.fromstring only counts numbers: it would take a decimal comma in one row and a missing
    field in the next for two good rows, reads a blank field as -1 and skips a trailing empty one.
    So it is trusted only when the commas are exactly the separators and no field is blank.
    """
    if text.count(",") != columns * n_rows - 1 or _has_blank_field(text):
        return None
    try:
        values = np.fromstring(text, dtype=np.float64, sep=",")
    except ValueError:
        return None
    return values.reshape(-1, columns) if values.size == columns * n_rows else None


def _has_blank_field(text):
    if ",," in text or text.startswith(",") or text.endswith(","):
        return True
    # Whitespace is rare in recordings: only then is the slower search worth it.
    return any(space in text for space in " \t\v\f") and BLANK_FIELD.search(text) is not None


def _number(text, line, column, name):
    def fail(problem):
        raise InputError(f"{name} line {line}: {COLUMNS[column]} {problem}")

    if not text.strip():
        fail("is empty")
    try:
        return float(text)
    except ValueError:
        hint = " (write decimals with '.')" if "," in text else ""
        fail(f"is not a number{hint}: {_show(text)}")


def _timestamp(text, line, name):
    """Seconds since 1970 (UTC) of a timestamp cell: Unix seconds or ISO 8601."""
    if not text.strip():
        raise InputError(f"{name} line {line}: {COLUMNS[0]} is empty")
    try:
        return float(text)
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise InputError(f"{name} line {line}: {COLUMNS[0]} is not a time (Unix seconds or "
                         f"ISO 8601, e.g. 2018-09-05T06:27:51Z): {_show(text)}") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)  # a time without an offset is taken as UTC
    return moment.timestamp()


def _validate(values, fields, line_numbers, name):
    def fail(row, column, problem):
        raise InputError(f"{name} line {line_numbers[row]}: {COLUMNS[column]} {problem}: "
                         f"{_show(fields[row][column])}")

    bad = ~np.isfinite(values)
    if bad.any():
        fail(*_first(bad), "is not a finite number")
    negative = values[:, 1:] < 0
    if negative.any():
        row, column = _first(negative)
        fail(row, column + 1, "is negative")
    too_high = values[:, 1:] > MAX_CURRENT_MA
    if too_high.any():
        row, column = _first(too_high)
        fail(row, column + 1, f"is above {MAX_CURRENT_MA:.0f} mA ({MAX_CURRENT_MA / 1000:.0f} A)")
    backwards = np.flatnonzero(np.diff(values[:, 0]) < 0)
    if backwards.size:
        row = backwards[0] + 1
        fail(row, 0, f"goes back in time (previous row has {fields[row - 1][0]})")


def _first(mask):
    """(row, column) of the first True in a 2-D mask, in file order."""
    return divmod(int(np.argmax(mask.ravel())), mask.shape[1])


def _show(text, limit=40):
    return repr(text if len(text) <= limit else text[:limit] + "...")


def _show_sep(sep):
    return "tab" if sep == "\t" else repr(sep)
