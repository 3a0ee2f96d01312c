"""The README's commands still do what it says."""
import os
import signal
import sqlite3
import subprocess
import urllib.request
from pathlib import Path

from conftest import PYTHON, REPO, free_port, wait_until


def test_make_run_starts_redis_worker_and_web_and_ctrl_c_stops_all(tmp_path):
    port = free_port()
    env = dict(os.environ, PORT=str(port), SAMPLE_PERIOD_S="1",
               DATABASE_URL=f"sqlite:///{tmp_path / 'run.db'}")
    env.pop("REDIS_URL", None)  # so serve.py starts its embedded Redis
    # What `make run` runs once the venv exists; its own process group, like a terminal's.
    proc = subprocess.Popen([PYTHON, "serve.py"], cwd=REPO, env=env, start_new_session=True,
                            stdout=open(tmp_path / "run.log", "wb"), stderr=subprocess.STDOUT)
    try:
        wait_until(lambda: urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2).status == 200,
                   timeout=60, what="the web app")

        def readings():
            with sqlite3.connect(tmp_path / "run.db") as db:
                return db.execute("SELECT count(*) FROM readings").fetchone()[0]

        wait_until(lambda: readings() >= 2, timeout=30, what="readings from the worker")
        assert "embedded Redis" in (tmp_path / "run.log").read_text()
    finally:
        os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C reaches the terminal's foreground group
        assert proc.wait(timeout=60) == 0
    marker = str(tmp_path).encode()
    wait_until(lambda: not started_with(marker), timeout=15,
               what=f"every process make run started to exit: {started_with(marker)}")


def started_with(marker):
    """Pids of the processes whose environment mentions marker (serve.py's children inherit it)."""
    pids = []
    for environ in Path("/proc").glob("[0-9]*/environ"):
        try:
            if marker in environ.read_bytes():
                pids.append(int(environ.parent.name))
        except OSError:  # gone meanwhile, or not ours to read
            pass
    return pids


def test_readme_names_exactly_the_two_setup_commands():
    readme = (REPO / "README.md").read_text()
    assert "make run" in readme and "make test" in readme
    makefile = (REPO / "Makefile").read_text()
    assert "\nrun:" in makefile and "\ntest:" in makefile
