"""The README's commands still do what it says."""
import os
import re
import signal
import socket
import sqlite3
import subprocess
import urllib.request

import pytest
from conftest import PYTHON, REPO, free_port, started_with, uses_instance_dir, wait_until


@uses_instance_dir
@pytest.mark.usefixtures("kill_leftovers")
def test_make_run_starts_redis_worker_and_web_and_ctrl_c_stops_all(tmp_path):
    port = free_port()
    env = dict(os.environ, PORT=str(port), SAMPLE_PERIOD_S="1",
               DATABASE_URL=f"sqlite:///{tmp_path / 'run.db'}")
    env.pop("REDIS_URL", None)  # so serve.py starts its embedded Redis
    # What `make run` runs once the venv exists; its own process group, like a terminal's.
    proc = subprocess.Popen([PYTHON, "serve.py"], cwd=REPO, env=env, start_new_session=True,
                            stdout=open(tmp_path / "run.log", "wb"), stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: f"Wattson on {url} " in (tmp_path / "run.log").read_text(),
                   timeout=120, what="make run to print the URL")
        # Printed only once the web app answers: no retry here.
        assert urllib.request.urlopen(f"{url}/", timeout=10).status == 200
        assert "gunicorn" in (tmp_path / "run.log").read_text()  # what production runs

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


@uses_instance_dir
@pytest.mark.usefixtures("kill_leftovers")
def test_make_run_says_in_one_line_that_the_port_is_taken_and_starts_nothing(tmp_path):
    port = free_port()
    env = dict(os.environ, PORT=str(port), DATABASE_URL=f"sqlite:///{tmp_path / 'run.db'}")
    env.pop("REDIS_URL", None)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", port))
        taken.listen()
        run = subprocess.run([PYTHON, "serve.py"], cwd=REPO, env=env, capture_output=True,
                             text=True, timeout=60)
    assert run.returncode == 1
    assert run.stdout == ""
    assert run.stderr.splitlines() == [
        f"cannot serve on 127.0.0.1:{port}: the port is already in use (another Wattson?); "
        "stop that or set PORT"]
    assert not started_with(str(tmp_path).encode())  # no Redis, worker or web app left behind
    assert not (tmp_path / "run.db").exists()


@uses_instance_dir
@pytest.mark.usefixtures("kill_leftovers")
def test_make_run_stops_everything_with_one_line_when_gunicorn_cannot_start(tmp_path):
    env = dict(os.environ, PORT=str(free_port()), WEB_PROCESSES="two",
               DATABASE_URL=f"sqlite:///{tmp_path / 'run.db'}")
    env.pop("REDIS_URL", None)
    run = subprocess.run([PYTHON, "serve.py"], cwd=REPO, env=env, capture_output=True, text=True,
                         timeout=120)
    assert run.returncode == 1
    assert "WEB_PROCESSES must be a whole number of at least 1, not 'two'" in run.stderr
    assert "Traceback" not in run.stderr
    assert run.stderr.splitlines()[-1].startswith("the web app did not start: gunicorn exited")
    assert "Wattson on" not in run.stdout
    marker = str(tmp_path).encode()
    wait_until(lambda: not started_with(marker), timeout=15,
               what=f"Redis and the worker to be stopped: {started_with(marker)}")


def test_readme_documents_every_variable_gunicorn_conf_reads():
    names = re.findall(r"['\"]([A-Z][A-Z_]{2,})['\"]", (REPO / "gunicorn.conf.py").read_text())
    table = (REPO / "README.md").read_text().split("## Configuration")[1].split("\n## ")[0]
    assert set(names) >= {"HOST", "PORT", "WEB_PROCESSES", "WEB_THREADS", "LOG_REQUESTS"}
    assert [n for n in names if f"`{n}`" not in table] == []


def test_readme_names_exactly_the_two_setup_commands():
    readme = (REPO / "README.md").read_text()
    assert "make run" in readme and "make test" in readme
    makefile = (REPO / "Makefile").read_text()
    assert "\nrun:" in makefile and "\ntest:" in makefile
