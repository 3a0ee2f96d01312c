"""Label an aggregate file of any length in chunks: memory bounded by the chunks, not the file.

    label_file(path, out, model, confidence=False, chunk_rows=CHUNK_ROWS)  write the labelled CSV
        to the binary file object `out`; raises nilm.io.InputError as read_recording would
    can_stream(path) -> False for layouts only nilm.io reads whole (UTF-16, CR-only line ends)

Two passes over the file. The first parses and checks the numbers chunk by chunk with nilm.io's
own steps (same one-line messages, same file line numbers) and keeps only two float arrays (16
bytes a row); the HMM is fitted to those (nilm.decode.prepare). The second pass reads each row's
text again and writes it with its labels as nilm.decode.batches yields them. The bytes are those
of nilm.label.label_recording on the whole file.
"""
import re
from itertools import chain, islice, repeat
from pathlib import Path

import numpy as np

from nilm import io
from nilm.decode import batches, elapsed_seconds
from nilm.label import format_lines, header

CHUNK_ROWS = 200_000


def can_stream(path):
    with open(path, "rb") as f:
        head = f.read(1 << 16)
    return not head.startswith((b"\xff\xfe", b"\xfe\xff")) and (b"\n" in head or b"\r" not in head)


def _chunks(path, name, chunk_rows):
    """(rows, line_numbers, sep) per chunk of data rows, checked as nilm.io checks them."""
    sep, offset = None, 0
    with open(path, "rb") as f:
        while True:
            block = list(islice(f, chunk_rows))
            if not block and sep is not None:
                return
            lines = _decode(b"".join(block), name, offset).split("\n")
            if block and block[-1].endswith(b"\n"):
                lines.pop()  # the text after the last line end
            start = 0
            if sep is None:
                start = io._first_data_line(lines, name)  # raises on an empty file
                sep = io._sniff_separator(lines[start], offset + start + 1, name)
            rows, numbers = _shifted(io._data_rows, offset, name)(lines, start, sep, name)
            if rows:
                yield rows, numbers + offset, sep
            offset += len(block)


class _Fields:
    """The field texts of rows, split only when asked (nilm.io names them in a message)."""

    def __init__(self, rows, sep):
        self.rows, self.sep = rows, sep

    def __getitem__(self, i):
        return tuple(self.rows[i].split(self.sep))


def _decode(data, name, offset):
    return _shifted(io._decode, offset, name)(data, name)


def _shifted(step, offset, name):
    """nilm.io's step, its messages' line numbers counted from the start of the file."""
    def run(*args):
        try:
            return step(*args)
        except io.InputError as error:
            prefix = re.escape(f"{name} line ")
            raise io.InputError(re.sub(f"^{prefix}(\\d+)", lambda m: f"{name} line {int(m[1]) + offset}",
                                       str(error))) from None
    return run


def read_numbers(path, name, chunk_rows=CHUNK_ROWS):
    """(timestamp, max_current) of every row, checked chunk by chunk as read_recording does."""
    stamps, currents, previous = [], [], None
    for rows, numbers, sep in _chunks(path, name, chunk_rows):
        if previous is not None:  # so that time going back across chunks is caught too
            rows, numbers = [previous[0], *rows], np.r_[previous[1], numbers]
        values = io._to_numbers(rows, sep, numbers, name)
        io._validate(values, _Fields(rows, sep), numbers, name)
        first = 1 if previous is not None else 0
        stamps.append(values[first:, 0].copy())
        currents.append(values[first:, 1].copy())
        previous = rows[-1], numbers[-1]
    return np.concatenate(stamps), np.concatenate(currents)


class _Timed:
    def __init__(self, timestamp):
        self.timestamp = timestamp


def label_file(path, out, model, confidence=False, chunk_rows=CHUNK_ROWS):
    """Write the labelled CSV of the file at path to `out` (a binary file object)."""
    name = Path(path).name
    stamps, current = read_numbers(path, name, chunk_rows)
    seconds = elapsed_seconds(_Timed(stamps), current.size)
    del stamps
    plan = model.plan(current, seconds)
    # Each row's fields joined by commas: a comma-separated row is that already.
    texts = chain.from_iterable(rows if sep == "," else map(",".join, map(str.split, rows, repeat(sep)))
                                for rows, _, sep in _chunks(path, name, chunk_rows))
    out.write(header(confidence).encode("utf-8"))
    for batch in batches(model, plan, current, seconds, confidence):
        lines = format_lines(list(islice(texts, batch.joint.size)), batch.joint, batch.confidence)
        out.write(lines.encode("utf-8"))
