"""Label every row of an aggregate recording with each device's state.

    python -m nilm.label INPUT [-o OUTPUT] [--confidence]   (INPUT "-" reads standard input)

writes CSV with the header
    timestamp,Maximum current,Effective current,PC screen1 state,PC screen2 state,Temperature sensor state
one row per input row in input order, the first three fields exactly as in the input text, the
states as OFF / IDLE / ON (the sensor OFF / ON), LF line endings. Without -o it writes to stdout.
--confidence appends CONFIDENCE_HEADER: each device's marginal posterior of its chosen state,
three decimals (0.000 to 1.000).
Bad input: one line "error: ..." on stderr, exit code 2, no traceback and no output file (the
output is written to a temporary file beside OUTPUT and renamed into place only when complete).

Public API:
    label_bytes(data, name, model=None, confidence=False) -> bytes   the exact bytes the CLI
                                                     writes (the /nilm page's download uses it)
    label_recording(recording, model=None, confidence=False) -> bytes   the same from a parsed
                                                     nilm.io.Recording
    format_labels(fields, states, confidence=None) -> bytes   CSV from field texts, an (n, 3)
                                                     state array and optionally (n, 3) confidences
    format_lines(texts, joint, confidence=None) -> str   the lines of rows given as "t,max,eff"
    write_atomically(path, data)                     all-or-nothing file write (temp file + rename)
    main(argv=None) -> exit code

model defaults to nilm.model.load() (the model shipped in the package). This path imports neither
pandas nor scikit-learn: the whole CLI on the main recording must run in under a second.
"""
import argparse
import os
import sys
import tempfile
from itertools import product
from pathlib import Path

import numpy as np

from nilm.devices import DEVICES, SHAPE, STATES
from nilm.io import InputError, read_recording

HEADER = ",".join(["timestamp", "Maximum current", "Effective current"]
                  + [f"{device} state" for device in DEVICES])
CONFIDENCE_HEADER = ",".join(f"{device} confidence" for device in DEVICES)
# Files larger than this are labelled in chunks (nilm.stream), with the same bytes out.
STREAM_BYTES = 16 * 2**20
# Texts of every confidence at three decimals, indexed by round(confidence * 1000).
CONFIDENCE_TEXTS = [f"{k / 1000:.3f}" for k in range(1001)]
# ",OFF,IDLE,ON"-style row endings for every joint state, indexed like np.ravel_multi_index(SHAPE).
SUFFIXES = ["," + ",".join(names)
            for names in product(*[STATES[device] for device in DEVICES])]


def label_bytes(data, name, model=None, confidence=False):
    """Labelled CSV for the raw bytes of an uploaded aggregate; raises nilm.io.InputError."""
    return label_recording(read_recording(data, name), model, confidence)


def label_recording(recording, model=None, confidence=False):
    if model is None:
        model = _stored_model()
    if not confidence:
        return format_labels(recording.fields, model.predict(recording))
    return format_labels(recording.fields, *model.predict(recording, return_confidence=True))


def format_labels(fields, states, confidence=None):
    states = np.asarray(states)
    if states.shape != (len(fields), len(DEVICES)):
        raise ValueError(f"states must have shape ({len(fields)}, {len(DEVICES)}), "
                         f"not {states.shape}")
    if confidence is not None and np.shape(confidence) != states.shape:
        raise ValueError(f"confidence must have shape {states.shape}, not {np.shape(confidence)}")
    joint = np.ravel_multi_index(states.T, SHAPE)  # raises on an out-of-range state
    lines = format_lines(map(",".join, fields), joint, confidence)
    return (header(confidence is not None) + lines).encode("utf-8")


def header(confidence=False):
    return f"{HEADER},{CONFIDENCE_HEADER}\n" if confidence else HEADER + "\n"


def format_lines(texts, joint, confidence=None):
    """The labelled lines (each ending in LF) of rows given as their three fields joined by commas
    ("t,max,effective") and their joint states."""
    joint = np.asarray(joint).tolist()
    if confidence is None:
        lines = [f"{row}{SUFFIXES[k]}" for row, k in zip(texts, joint)]
    else:
        milli = np.rint(np.clip(confidence, 0.0, 1.0) * 1000).astype(np.int64).tolist()
        text = CONFIDENCE_TEXTS
        lines = [f"{row}{SUFFIXES[k]},{text[a]},{text[b]},{text[c]}"
                 for row, k, (a, b, c) in zip(texts, joint, milli)]
    return "\n".join(lines) + "\n" if lines else ""


def _stored_model():
    # Imported here so that formatting and tests with another model do not load nilm.model.
    from nilm.model import load
    return load()


def write_atomically(path, data):
    """Write data (bytes, or a function that writes to a binary file) to path via a temporary
    file in the same directory: all or nothing."""
    path = Path(path)
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as out:
            data(out) if callable(data) else out.write(data)
        os.chmod(temporary, 0o666 & ~_umask())  # mkstemp makes 0600; give the usual mode
        os.replace(temporary, path)
    except BaseException:
        os.unlink(temporary)
        raise


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


def parse_args(argv):
    parser = argparse.ArgumentParser(
        prog="python -m nilm.label",
        description="Label each row of an aggregate current recording with the state of "
                    "PC screen1, PC screen2 and the temperature sensor.")
    parser.add_argument("input", metavar="INPUT",
                        help="CSV: timestamp, maximum current (mA), effective current (mA); "
                             "- for standard input")
    parser.add_argument("-o", "--output", metavar="OUTPUT",
                        help="where to write the labelled CSV (default: stdout)")
    parser.add_argument("--confidence", action="store_true",
                        help="append each device's confidence (posterior of its state, 0-1)")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    try:
        # A large file is read, labelled and written in chunks (nilm.stream): memory stays bounded.
        source = args.input if _large(args.input) else _read_input(args.input)
        model = _stored_model()
    except InputError as error:
        return _fail(error)
    except (OSError, ValueError) as error:  # a broken install, not the user's input
        print(f"error: cannot load the stored model: {error}", file=sys.stderr)
        return 1
    try:
        _write(lambda out: _label_into(out, source, model, args.confidence), args.output)
    except InputError as error:  # a large file's rows are checked as they are read
        return _fail(error)
    except BrokenPipeError:  # `... | head`: the reader left, nothing to say
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except OSError as error:
        return _fail(f"cannot write {args.output}: {error.strerror}")
    return 0


def _read_input(path):
    if path == "-":
        return read_recording(sys.stdin.buffer.read(), "<stdin>")
    return read_recording(path)


def _large(source):
    from nilm.stream import can_stream

    try:
        return os.path.getsize(source) > STREAM_BYTES and can_stream(source)
    except (OSError, TypeError, ValueError):  # not a readable file: read_recording says why
        return False


def _label_into(out, source, model, confidence):
    if isinstance(source, str):
        from nilm.stream import label_file
        label_file(source, out, model, confidence)
    else:
        out.write(label_recording(source, model, confidence))


def _write(produce, output):
    if output:
        write_atomically(output, produce)
    else:
        produce(_Stdout())
        sys.stdout.flush()


class _Stdout:
    def write(self, data):
        # A pipe may take only part of a large write: loop so a departed reader is noticed.
        view = memoryview(data)
        while view:
            view = view[sys.stdout.buffer.write(view):]


def _fail(message):
    print(f"error: {message}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
