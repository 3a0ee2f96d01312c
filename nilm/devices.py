"""The devices on the mains wire, their states, and where their recordings live.

Shared vocabulary for every nilm module, the CLIs and the /nilm page.
"""
import os
from pathlib import Path

# Column order of the labelled output and of every (n, 3) state array.
DEVICES = ("PC screen1", "PC screen2", "Temperature sensor")

# States ordered by level: index 0 is OFF, the last is ON.
STATES = {
    "PC screen1": ("OFF", "IDLE", "ON"),
    "PC screen2": ("OFF", "IDLE", "ON"),
    "Temperature sensor": ("OFF", "ON"),
}

# Number of states per device, in DEVICES order: the shape of the joint state space (3, 3, 2).
SHAPE = tuple(len(STATES[device]) for device in DEVICES)

# The meter's pace in the recordings (s per row): what a series without timestamps is taken to
# have, and the time base of the transition rates learnt from the recordings' stays in rows.
SECONDS_PER_ROW = 1.07

# Single-device recordings, found by file-name suffix in the data directory.
RECORDING_GLOBS = {
    "PC screen1": "*_screen1.csv",
    "PC screen2": "*_screen2.csv",
    "Temperature sensor": "*_device253.csv",
}
MAIN_GLOB = "*_main.csv"

REPO_ROOT = Path(__file__).resolve().parent.parent


def data_dir():
    """NILM_DATA_DIR, else data/nilm in the checkout, else ../shared/nilm-data beside it."""
    env = os.environ.get("NILM_DATA_DIR")
    if env:
        return Path(env)
    local = REPO_ROOT / "data" / "nilm"
    if local.is_dir():
        return local
    return REPO_ROOT.parent / "shared" / "nilm-data"


def find_file(directory, pattern):
    """The one file in directory matching pattern, or None."""
    matches = sorted(Path(directory).glob(pattern))
    return matches[0] if matches else None
