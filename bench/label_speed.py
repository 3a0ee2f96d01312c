"""Speed and memory of the whole `python -m nilm.label` process.

    .venv/bin/python bench/label_speed.py [--runs 7] [--big-runs 3] [--rows 1000000]
                                          [--huge-rows 10000000] [--huge-runs 1]

--big-runs 0 or --huge-rows 0 leaves that part out.

(a) the main recording: median wall time of the whole process (target <= 0.5 s);
(b) a synthetic aggregate of --rows rows (nilm.synth, formatted like the recordings): median wall
    time (target <= 5 s, with --confidence <= 8 s) and peak resident memory (target <= 600 MB);
(c) one of --huge-rows rows (target <= 50 s, peak <= 1 GB; 0 skips it). Files over 16 MB are
    labelled in chunks (nilm.stream), so (c)'s memory should stay near (b)'s.
Each run is a fresh process, timed from spawn to exit; peak memory is the child's ru_maxrss.
CPU time (user + system) is printed too: it is steadier than wall time on a shared machine.
"""
import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from nilm.devices import MAIN_GLOB, data_dir, find_file  # noqa: E402
from nilm.io import load_device_recordings  # noqa: E402
from nilm.synth import generate  # noqa: E402

SECONDS_PER_ROW = 1.07  # the meter's pace in the recordings


def run_label(source, output, *flags):
    """(wall s, CPU s, peak resident MB) of one `python -m nilm.label source -o output`."""
    start = time.perf_counter()
    child = subprocess.Popen([sys.executable, "-m", "nilm.label", str(source), "-o", str(output), *flags],
                             cwd=REPO, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(child.pid, 0)
    seconds = time.perf_counter() - start
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode != 0:
        sys.exit(f"nilm.label failed on {source}: {child.stderr.read().decode().strip()}")
    child.stderr.close()
    return seconds, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024  # Linux: KiB


def write_synthetic(path, n_rows, random_state=0, block=1_000_000):
    """An aggregate CSV of n_rows, laid out like the recordings (no header, 3 columns), written
    a block of rows at a time."""
    recordings = load_device_recordings()
    rng = np.random.default_rng(random_state)
    start = 1536129671.00052
    with open(path, "w") as out:
        for first in range(0, n_rows, block):
            rows = min(block, n_rows - first)
            current = generate(recordings, rows, random_state=random_state + first).current
            timestamp = start + np.cumsum(rng.normal(SECONDS_PER_ROW, 0.002, rows))
            start = timestamp[-1]
            out.write("\n".join(f"{t:.6f},{m:.2f},{m / np.sqrt(2):.1f}"
                                for t, m in zip(timestamp.tolist(), current.tolist())) + "\n")


def measure(source, output, runs, *flags):
    results = [run_label(source, output, *flags) for _ in range(runs)]
    rows = output.read_bytes().count(b"\n") - 1
    wall, cpu = (statistics.median(r[i] for r in results) for i in (0, 1))
    peak = max(r[2] for r in results)
    return rows, wall, cpu, peak


def report(label, rows, wall, cpu, peak, targets):
    print(f"{label} ({rows} rows): median wall {wall:.2f} s, median CPU {cpu:.2f} s, "
          f"peak {peak:.0f} MB   (targets: {targets})", flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--big-runs", type=int, default=3)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--huge-rows", type=int, default=10_000_000)
    parser.add_argument("--huge-runs", type=int, default=1)
    args = parser.parse_args()
    main_file = find_file(data_dir(), MAIN_GLOB)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "labelled.csv"
        report("main recording", *measure(main_file, out, args.runs), "<= 0.5 s")
        big = Path(tmp) / "synthetic.csv"
        if args.big_runs:  # 0 skips the 1M-row file
            write_synthetic(big, args.rows)
            report(f"synthetic {big.stat().st_size / 1e6:.0f} MB", *measure(big, out, args.big_runs),
                   "<= 5 s, <= 600 MB")
            report("  the same with --confidence", *measure(big, out, args.big_runs, "--confidence"),
                   "<= 8 s, <= 600 MB")
        if args.huge_rows:
            big.unlink(missing_ok=True)
            write_synthetic(big, args.huge_rows)
            report(f"synthetic {big.stat().st_size / 1e6:.0f} MB", *measure(big, out, args.huge_runs),
                   "<= 50 s, <= 1024 MB")


if __name__ == "__main__":
    main()
