"""Rebuild the shipped model: python -m nilm.train [--data DIR] [-o PATH]

Fits NilmModel (fixed random_state) on the single-device recordings in DIR (default
nilm.devices.data_dir()) and saves it to PATH (default nilm/model.npz).
"""
import argparse
import sys
import time

from nilm.devices import DEVICES, STATES
from nilm.io import InputError, load_device_recordings
from nilm.model import MODEL_PATH, NilmModel


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m nilm.train", description=__doc__.splitlines()[0])
    parser.add_argument("--data", help="directory holding the *_screen1/2 and *_device253 CSVs")
    parser.add_argument("-o", "--output", default=str(MODEL_PATH), help="where to write the .npz")
    args = parser.parse_args(argv)
    try:
        recordings = load_device_recordings(args.data)
    except (InputError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    start = time.perf_counter()
    model = NilmModel(random_state=0).fit(recordings)
    model.save(args.output)
    print(f"fitted in {time.perf_counter() - start:.1f} s; tree of {model.tree_.feature.size} nodes "
          f"-> {args.output}")
    for device in DEVICES:
        levels = ", ".join(f"{s} {v:.1f} mA" for s, v in zip(STATES[device], model.state_levels_[device]))
        print(f"  {device}: {levels}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
