"""Soak: the live monitor under everything an unlucky operator does to it, for N minutes.

Starts a real Redis (append-only, as `make run`), a Celery worker with its beat and the web server
(gunicorn, two processes) on a temporary SQLite database, two HTTP sensors sampled every 2 s, and 50
WebSocket clients that count the change ids they receive and reconnect with their last id. At
random moments it kills -9 the worker (and restarts it), kills -9 and restarts the web server,
restarts Redis, holds the database's write lock for 5-15 s, writes a poison row (dropping the
guard triggers first, as an old writer would see the table) or makes one sensor trickle.

At the end it prints the readings taken (the worker's "took" lines), stored, doubled (one sensor
and slot stored twice), handed to the broker but never stored, and per client the changes missed,
out of order, frames that are not JSON (NaN, Infinity) and whether it is stuck behind the newest
change. Loopback only; stops by itself.

    .venv/bin/python bench/soak.py [--minutes 10] [--clients 50] [--seed 1]
"""
import argparse
import asyncio
import json
import os
import random
import re
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "bench")]

from push_latency import open_socket, raise_file_limit, read_frame, start_web, web_command  # noqa: E402

from serve import free_port, start, start_embedded_redis, stop_all  # noqa: E402

PERIOD_S = 2
SENSORS = ("soak-a", "soak-b")
SETTLE_S = 30  # after the last action: a visibility timeout and a restore sweep, with room
TOOK = re.compile(r"sensor (\S+): took \S+ C at (\S+), slot (\S+)")
RETRY_LOGGED = re.compile(r"retry in [\d.]+ s \(task (\S+): \S+ C at (\S+), slot")
RETRY_SENT = re.compile(r"Task tasks\.sampling\.sample\[(\S+)\] retry: Retry in")
POISON = [  # one of each row that issue 7 saw break the feed
    "INSERT INTO readings (sensor_id, taken_at, temperature_c) "
    "VALUES (X'616c706861', CURRENT_TIMESTAMP, 20.0)",
    "INSERT INTO readings (sensor_id, taken_at, temperature_c) "
    "VALUES ('poison', CURRENT_TIMESTAMP, 1e999)",
    "INSERT INTO readings (sensor_id, taken_at, temperature_c) "
    "VALUES ('poison', CURRENT_TIMESTAMP, 'abc')",
    "INSERT INTO readings (sensor_id, taken_at, temperature_c) VALUES ('poison', 'garbage', 20.0)",
]


# ---- the sensors: prompt, unless told to trickle ----

class Devices:
    def __init__(self):
        self.trickling = set()
        devices = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                name = self.path.strip("/")
                self.send_response(200)
                self.end_headers()
                try:
                    while name in devices.trickling:  # one byte every 2 s: under any read timeout
                        self.wfile.write(b" ")
                        self.wfile.flush()
                        time.sleep(2)
                    self.wfile.write(f"{random.uniform(19, 23):.1f}".encode())
                except OSError:
                    pass  # the worker gave up on us

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_port}/{{sensor}}"


# ---- the services, and what chaos does to them ----

class Stack:
    def __init__(self, workdir, devices, rng):
        self.workdir, self.devices, self.rng = workdir, devices, rng
        self.db_path = workdir / "soak.db"
        self.redis_port = free_port()
        self.env = dict(os.environ, DATABASE_URL=f"sqlite:///{self.db_path}",
                        REDIS_URL=f"redis://127.0.0.1:{self.redis_port}/0", PORT=str(free_port()),
                        SENSORS=",".join(SENSORS), SAMPLE_PERIOD_S=str(PERIOD_S),
                        SENSOR_URL=devices.url, PYTHONUNBUFFERED="1")
        self.port = int(self.env["PORT"])
        self.worker_log = workdir / "worker.log"
        self.redis = self.worker = self.web = None
        self.retired = []  # killed workers' groups: anything left in them is an orphan
        self.actions = Counter()
        self.orphans = 0

    def start(self):
        self.start_redis()
        self.start_worker()
        self.start_web()

    def start_web(self):
        # What production runs: gunicorn, two processes.
        self.web = start_web(web_command(2, "gthread"), self.env, self.workdir / "web.log")

    def start_redis(self):
        self.redis, _ = start_embedded_redis(self.workdir, self.redis_port)
        time.sleep(0.3)

    def start_worker(self):
        self.worker = start(
            [sys.executable, "-m", "celery", "-A", "tasks", "worker", "-B", "--loglevel", "INFO",
             "--schedule", str(self.workdir / "celerybeat-schedule")],
            self.env, cwd=REPO, stdout=open(self.worker_log, "ab"), stderr=subprocess.STDOUT)

    def stop(self):
        stop_all([p for p in self.retired + [self.redis, self.worker, self.web] if p])

    # each action returns when the service is back
    def kill_worker(self):
        old, self.worker = self.worker, None
        os.kill(old.pid, signal.SIGKILL)  # the main process only: its beat must follow it
        old.wait()
        self.retired.append(old)
        threading.Timer(5, self._count_orphans, (old.pid,)).start()
        time.sleep(self.rng.uniform(1, 3))
        self.start_worker()

    def _count_orphans(self, group):
        try:
            os.killpg(group, 0)
            self.orphans += 1
        except ProcessLookupError:
            pass

    def kill_web(self):
        os.killpg(self.web.pid, signal.SIGKILL)  # gunicorn's master and every web process
        self.web.wait()
        time.sleep(self.rng.uniform(0.5, 2))
        self.start_web()

    def restart_redis(self):
        stop_all([self.redis])
        time.sleep(self.rng.uniform(0.5, 2))
        self.start_redis()

    def lock_database(self):
        with sqlite3.connect(self.db_path, timeout=30, isolation_level=None) as connection:
            connection.execute("BEGIN EXCLUSIVE")
            time.sleep(self.rng.uniform(5, 15))
            connection.execute("ROLLBACK")

    def poison(self):
        with sqlite3.connect(self.db_path, timeout=30, isolation_level=None) as connection:
            for trigger in ("readings_guard_insert", "readings_guard_update"):
                connection.execute(f"DROP TRIGGER IF EXISTS {trigger}")  # an old writer's table
            connection.execute(self.rng.choice(POISON))

    def trickle(self):
        sensor = self.rng.choice(SENSORS)
        self.devices.trickling.add(sensor)
        time.sleep(self.rng.uniform(10, 20))
        self.devices.trickling.discard(sensor)

    def chaos(self, until, stop):
        actions = [self.kill_worker, self.kill_web, self.restart_redis, self.lock_database,
                   self.poison, self.trickle]
        while not stop.wait(self.rng.uniform(5, 15)) and time.monotonic() < until:
            action = self.rng.choice(actions)
            self.actions[action.__name__] += 1
            try:
                action()
            except Exception as error:  # a failed action is a finding, not the end of the soak
                print(f"  {action.__name__} failed: {error!r}", flush=True)


# ---- the clients ----

class Client:
    def __init__(self, since):
        self.last = since
        self.seen = set()
        self.out_of_order = self.duplicates = self.connects = self.not_json = 0

    def parse(self, payload):
        """A frame; Python reads NaN and Infinity, a browser's JSON.parse does not: count them."""
        bad = []
        frame = json.loads(payload, parse_constant=bad.append)
        self.not_json += bool(bad)
        return frame

    def take(self, change_id):
        if change_id in self.seen:
            self.duplicates += 1
            return
        if change_id < self.last:
            self.out_of_order += 1
        self.seen.add(change_id)
        self.last = max(self.last, change_id)


async def run_client(client, port, stop):
    while not stop.is_set():
        writer = None
        try:
            reader, writer = await asyncio.wait_for(open_socket(port, client.last), 5)
            client.connects += 1
            while not stop.is_set():
                opcode, payload = await asyncio.wait_for(read_frame(reader), 40)  # > heartbeat
                if opcode == 8:
                    break
                if opcode == 1:
                    for change in client.parse(payload).get("changes", []):
                        client.take(change["id"])
        except (OSError, EOFError, asyncio.TimeoutError, ValueError, KeyError):
            pass
        finally:
            if writer:
                writer.close()
        await asyncio.sleep(random.uniform(0.5, 2))


# ---- the figures ----

def query(db_path, sql, params=()):
    with sqlite3.connect(db_path, timeout=30) as connection:
        return connection.execute(sql, params).fetchall()


def stored_form(iso):
    return datetime.fromisoformat(iso).strftime("%Y-%m-%d %H:%M:%S.%f")


def readings_report(stack):
    log = stack.worker_log.read_text(errors="replace")
    took = {(sensor, stored_form(at)): slot for sensor, at, slot in TOOK.findall(log)}
    marks = ",".join("?" * len(SENSORS))
    stored = query(stack.db_path, f"SELECT sensor_id, taken_at FROM readings "
                   f"WHERE sensor_id IN ({marks})", SENSORS)
    per_slot = Counter((sensor, took.get((sensor, at))) for sensor, at in stored)
    taken_by = {task: at for task, at in RETRY_LOGGED.findall(log)}
    handed = {stored_form(taken_by[t]) for t in RETRY_SENT.findall(log) if t in taken_by}
    stored_times = {at for _, at in stored}
    return {
        "taken": len(took),
        "stored": len(stored),
        "doubled": sum(n - 1 for (_, slot), n in per_slot.items() if slot and n > 1),
        "stored, not in the worker's log": per_slot.get(None, 0),
        "repeats refused": log.count("already stored"),
        "retried (handed to the broker)": len(handed),
        "handed but not stored": len(handed - stored_times),
        "taken, not stored (killed before handing)": len(set(took) - set(stored)),
    }


def clients_report(clients, db_path, since):
    expected = {i for (i,) in query(db_path, "SELECT id FROM reading_changes WHERE id > ?",
                                    (since,))}
    newest = max(expected, default=since)
    rows = []
    for n, client in enumerate(clients):
        rows.append((n, len(expected - client.seen), client.out_of_order, client.duplicates,
                     client.not_json, client.connects, client.last < newest))
    return len(expected), rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=float, default=10)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    raise_file_limit(2 * args.clients + 512)
    rng = random.Random(args.seed)
    workdir = Path(tempfile.mkdtemp(prefix="soak-"))
    stack = Stack(workdir, Devices(), rng)
    stop = threading.Event()
    try:
        stack.start()
        since = query(stack.db_path, "SELECT coalesce(max(id), 0) FROM reading_changes")[0][0]
        print(f"soak for {args.minutes:g} min: {args.clients} clients, sensors {SENSORS} every "
              f"{PERIOD_S} s; logs in {workdir}", flush=True)
        until = time.monotonic() + args.minutes * 60
        chaos = threading.Thread(target=stack.chaos, args=(until, stop), daemon=True)
        chaos.start()
        clients = [Client(since) for _ in range(args.clients)]
        asyncio.run(drive(clients, stack.port, until, chaos))
        total, rows = clients_report(clients, stack.db_path, since)
        figures = readings_report(stack)
    finally:
        stop.set()
        stack.stop()
    print("actions: " + ", ".join(f"{k} {v}" for k, v in sorted(stack.actions.items())))
    print(f"orphaned worker processes 5 s after a kill -9: {stack.orphans}")
    for key, value in figures.items():
        print(f"readings {key}: {value}")
    print(f"changes in the log: {total}")
    print(f"{'client':>6} {'missed':>7} {'out of order':>12} {'duplicates':>10} "
          f"{'not JSON':>8} {'connects':>8} stuck")
    for n, missed, disorder, duplicates, not_json, connects, stuck in rows:
        print(f"{n:>6} {missed:>7} {disorder:>12} {duplicates:>10} {not_json:>8} {connects:>8} "
              f"{stuck}")
    print(f"clients: missed total {sum(r[1] for r in rows)}, out of order total "
          f"{sum(r[2] for r in rows)}, frames that are not JSON {sum(r[4] for r in rows)}, "
          f"stuck {sum(r[6] for r in rows)} of {len(rows)}")


async def drive(clients, port, until, chaos):
    """Run the clients through the chaos, then a settling time with nothing happening."""
    stop = asyncio.Event()
    tasks = [asyncio.create_task(run_client(c, port, stop)) for c in clients]
    while time.monotonic() < until or chaos.is_alive():
        await asyncio.sleep(1)
    await asyncio.sleep(SETTLE_S)
    stop.set()
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


if __name__ == "__main__":
    main()
