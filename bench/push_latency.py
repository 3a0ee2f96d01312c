"""Push latency of the change feed: from the worker's write to K WebSocket clients, beside a poller.

Starts a real Redis and a real web server (`python app.py`, or `gunicorn app:server` with N
processes for --web-procs N) on a temporary SQLite database or a throwaway PostgreSQL cluster
(--db, as the tests make it: tests/pg.py), connects K clients to /ws/readings,
then writes readings at a steady rate with the worker's own write path (tasks.sampling.sample:
commit, then publish) in a separate process. For every (client, change) it takes receive time minus
the time the write call began (same machine clock; the commit itself is inside that span, so the
figure is an upper bound). The comparison is a client that polls the database once a second, as a
page with a 1 s timer would.

    .venv/bin/python bench/push_latency.py [--clients 1 100 1000] [--web-procs 0 1 2]
                               [--db sqlite postgresql] [--worker-class gthread|gevent]
                               [--rate 20] [--seconds 10] [--runs 3]

One row per (database, server, clients); --web-procs 0 is the development server.
"""
import argparse
import asyncio
import base64
import gc
import json
import multiprocessing
import os
import random
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import uvloop  # the clients: 100,000 frames a second must cost the bench little CPU

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from serve import free_port, start, start_embedded_redis, stop_all  # noqa: E402
from tests.pg import PgCluster, shell  # noqa: E402

SENSOR = "bench"
# The server writes frames with json.dumps defaults; reading two numbers beats parsing 1000x.
FRAME_HEAD = re.compile(rb'\{"prev": (\d+), "last": (\d+)')
CONNECT_BATCH = 100


# ---- the writer: a separate process, like the Celery worker ----

def _writer_init(env):
    os.environ.update(env)
    from tasks.sampling import sample  # noqa: F401  (import and connect before timing)

    sample(SENSOR, temperature_c=20.0)  # warm: the first call builds the app, relay, engine


def write_steadily(rate, count):
    """Write `count` readings `rate` per second; [(reading id, began, returned)]."""
    from tasks.sampling import sample

    writes = []
    first = time.time() + 0.1
    for i in range(count):
        pause = first + i / rate - time.time()
        if pause > 0:
            time.sleep(pause)
        began = time.time()
        reading_id = sample(SENSOR, temperature_c=round(20 + (i % 50) / 10, 1))
        writes.append((reading_id, began, time.time()))
    return writes


# ---- a minimal WebSocket client: an asyncio protocol per socket (server frames are unmasked) ----
# One callback per chunk the kernel hands over, however many frames it holds: at 5,000 clients
# the bench's own reading (100,000 frames a second) must not be what it measures.

class Socket(asyncio.Protocol):
    """Appends (prev, last, receive time) to `frames` for each text frame, after the handshake."""

    def __init__(self, request):
        self.request = request
        self.buffer = bytearray()
        self.frames = []
        self.upgraded = asyncio.get_running_loop().create_future()
        self.transport = None

    def connection_made(self, transport):
        self.transport = transport
        transport.write(self.request)

    def connection_lost(self, exc):
        if not self.upgraded.done():
            self.upgraded.set_exception(ConnectionError("closed during the handshake"))

    def data_received(self, data):
        received = time.time()
        self.buffer += data
        if not self.upgraded.done():
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            status = bytes(self.buffer[:self.buffer.find(b"\r\n")])
            del self.buffer[:end + 4]
            if not status.startswith(b"HTTP/1.1 101"):
                self.upgraded.set_exception(ConnectionError(status.decode()))
                return
            self.upgraded.set_result(True)
        self._frames(received)

    def _frames(self, received):
        buffer, at = self.buffer, 0
        while len(buffer) - at >= 2:
            length, head = buffer[at + 1] & 0x7F, 2
            if length == 126:
                length, head = int.from_bytes(buffer[at + 2:at + 4], "big"), 4
            elif length == 127:
                length, head = int.from_bytes(buffer[at + 2:at + 10], "big"), 10
            if len(buffer) - at < head + length:
                break
            opcode = buffer[at] & 0x0F
            if opcode == 1 and (match := FRAME_HEAD.match(buffer, at + head)):
                self.frames.append((int(match[1]), int(match[2]), received))
            elif opcode == 9:  # answered as browsers do, or the server closes us as dead
                self.transport.write(pong(bytes(buffer[at + head:at + head + length])))
            at += head + length
        del buffer[:at]


def pong(payload):
    """A client's pong frame (client frames are masked) carrying the ping's payload (< 126 B)."""
    mask = os.urandom(4)
    return bytes([0x8A, 0x80 | len(payload)]) + mask + bytes(
        b ^ mask[i % 4] for i, b in enumerate(payload))


async def open_socket(port, since):
    key = base64.b64encode(os.urandom(16)).decode()
    request = (f"GET /ws/readings?since={since} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
               f"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
               "Sec-WebSocket-Version: 13\r\n\r\n").encode()
    loop = asyncio.get_running_loop()
    _, socket = await loop.create_connection(lambda: Socket(request), "127.0.0.1", port)
    await socket.upgraded
    return socket


async def connect_all(port, since, count):
    sockets = []
    for first in range(0, count, CONNECT_BATCH):
        batch = min(CONNECT_BATCH, count - first)
        sockets += await asyncio.gather(*(open_socket(port, since) for _ in range(batch)))
    return sockets


# ---- the comparison: poll the database once a second ----

async def poll(db_url, after_id, seen, period=1.0):
    tick = time.time() + random.random() * period
    while True:
        await asyncio.sleep(max(0.0, tick - time.time()))
        # In a thread: a query (and its connection) must not stall the clients' event loop.
        rows = await asyncio.to_thread(
            query, db_url, "SELECT id FROM readings WHERE id > ? ORDER BY id", (after_id,))
        now = time.time()
        for (reading_id,) in rows:
            seen[reading_id] = now
            after_id = reading_id
        tick += period


# ---- one run ----

def query(db_url, sql, params=()):
    """Rows of one statement on either database (parameters written `?`)."""
    connection = shell(db_url)
    try:
        if not db_url.startswith("sqlite"):
            sql = sql.replace("?", "%s")
        return [tuple(row) for row in connection.execute(sql, params).fetchall()]
    finally:
        connection.close()


def open_sockets(port):
    """How many WebSockets the server's processes hold, as /healthz says ({pid: clients}), asked
    a few times per process (the kernel picks which process answers)."""
    seen = {}
    for _ in range(8):
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=10) as response:
                report = json.load(response)
        except OSError:  # too busy to answer: not settled
            return {None: 1}
        seen[report["pid"]] = report["clients"]
    return seen


async def settled(port, timeout_s=60):
    """Wait until the server has let go of the previous run's sockets: thousands of threads
    ending while the next run's first change went out made that change's fan-out take ~200 ms
    instead of ~15 ms (1,000 clients)."""
    deadline = time.time() + timeout_s
    while any((await asyncio.to_thread(open_sockets, port)).values()) and time.time() < deadline:
        await asyncio.sleep(0.5)


async def one_run(port, db_url, pool, clients, rate, seconds):
    await settled(port)
    # Clients remember a change's seq (its delivery position; the id on SQLite).
    since = query(db_url, "SELECT coalesce(max(seq), 0) FROM reading_changes")[0][0]
    after_reading = query(db_url, "SELECT coalesce(max(id), 0) FROM readings")[0][0]
    sockets = await connect_all(port, since, clients)
    await asyncio.sleep(1.0)  # each server thread registers with its hub and replays (nothing)
    frames = [socket.frames for socket in sockets]
    polled = {}
    tasks = [asyncio.create_task(poll(db_url, after_reading, polled))]

    loop = asyncio.get_running_loop()
    # The bench's own collector paused while it times: a full pass over the frames it keeps
    # would stamp every frame arriving meanwhile late.
    gc.collect()
    gc.disable()
    cpu_began, wall_began = time.process_time(), time.time()
    writes = await loop.run_in_executor(None, pool.apply, write_steadily, (rate, rate * seconds))
    # The clients' own share of a core while the writes ran: near 100 % means the bench, not the
    # server, sets the latency.
    client_cpu = (time.process_time() - cpu_began) / (time.time() - wall_began)
    began = dict((reading_id, t) for reading_id, t, _ in writes)
    change_of = dict(query(
        db_url, "SELECT reading_id, seq FROM reading_changes WHERE seq > ? AND op = 'INSERT'", (since,)))
    started = {change_of[r]: t for r, t in began.items()}
    newest = max(started)
    deadline = time.time() + 10
    while time.time() < deadline and not (
        all(f and f[-1][1] >= newest for f in frames) and len(polled) >= len(began)
    ):
        await asyncio.sleep(0.05)

    gc.enable()
    for task in tasks:
        task.cancel()
    for socket in sockets:
        socket.transport.close()
    await asyncio.gather(*tasks, return_exceptions=True)
    return summarise(frames, started, polled, began, writes) | {"client_cpu": client_cpu}


def summarise(frames, started, polled, began, writes):
    latencies = []
    last_seen = 0.0
    first, final = {}, {}  # per change: its first and its last delivery
    for client_frames in frames:
        for prev, last, received in client_frames:
            for change_id in range(prev + 1, last + 1):
                if change_id in started:
                    latencies.append(received - started[change_id])
                    last_seen = max(last_seen, received)
                    first[change_id] = min(first.get(change_id, received), received)
                    final[change_id] = max(final.get(change_id, received), received)
    latencies.sort()
    expected = len(frames) * len(started)
    span = (last_seen - min(started.values())) if latencies else float("nan")
    polling = sorted(polled[r] - t for r, t in began.items() if r in polled)
    return {
        "p50": percentile(latencies, 50),
        "p99": percentile(latencies, 99),
        "max": latencies[-1] if latencies else float("nan"),
        "per_s": len(latencies) / span if latencies else 0.0,
        "missing": expected - len(latencies),
        "poll_p50": percentile(polling, 50),
        "poll_p99": percentile(polling, 99),
        # Where the time goes: reaching the server's first socket, then reaching all of them.
        "first_p50": percentile(sorted(first[c] - started[c] for c in first), 50),
        "fanout_p50": percentile(sorted(final[c] - first[c] for c in first), 50),
        "write_p50": percentile(sorted(end - start for _, start, end in writes), 50),
    }


def percentile(sorted_values, q):
    if not sorted_values:
        return float("nan")
    index = min(len(sorted_values) - 1, round(q / 100 * (len(sorted_values) - 1)))
    return sorted_values[index]


# ---- the services ----

def web_command(procs, worker_class):
    if procs == 0:
        return [sys.executable, "app.py"]
    return [sys.executable, "-m", "gunicorn", "app:server", "-w", str(procs), "-k", worker_class]


def start_web(command, env, log_path, procs):
    web = start(command, env, cwd=REPO,
                stdout=open(log_path, "wb"), stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{env['PORT']}/healthz"
    answered = set()  # pids: each process has served a request before the clients rush in
    for _ in range(600):
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                answered.add(json.load(response)["pid"])
            if len(answered) >= max(procs, 1):
                return web
        except OSError:
            time.sleep(0.1)
    web.kill()
    raise SystemExit(f"the web server did not start; see {log_path}")


def raise_file_limit(needed):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < needed:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(needed, hard), hard))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 100, 1000])
    parser.add_argument("--web-procs", type=int, nargs="+", default=[0],
                        help="gunicorn processes; 0 = python app.py (the development server)")
    parser.add_argument("--db", nargs="+", default=["sqlite"], choices=["sqlite", "postgresql"])
    parser.add_argument("--worker-class", default="gthread", choices=["gthread", "gevent"],
                        help="gunicorn's worker class (gevent needs the [gevent] extra)")
    parser.add_argument("--rate", type=int, default=20, help="readings written per second")
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args(argv)
    raise_file_limit(2 * max(args.clients) + 512)  # inherited by the web server too

    workdir = Path(tempfile.mkdtemp(prefix="push-latency-"))
    redis_proc, redis_url = start_embedded_redis()
    cluster = PgCluster().start() if "postgresql" in args.db else None
    print(f"{os.cpu_count()} CPUs; {args.rate} writes/s for {args.seconds} s; "
          f"median of {args.runs} runs; latency = client receive - write call start")
    print(f"{'db':>10} {'server':>10} {'clients':>7} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8} "
          f"{'msg/s':>9} {'missing':>7} | {'1 s poll p50':>12} {'p99':>6} | {'write ms':>8} "
          f"{'1st client':>10} {'fan-out':>8} {'bench cpu':>9}")
    try:
        time.sleep(0.3)
        for db in args.db:
            for procs in args.web_procs:
                db_url = (f"sqlite:///{workdir / f'bench-{procs}.db'}" if db == "sqlite"
                          else cluster.create_database())
                env = dict(os.environ, DATABASE_URL=db_url, REDIS_URL=redis_url,
                           PORT=str(free_port()), SENSORS=SENSOR,
                           # gthread holds a thread per socket; connections need not split evenly
                           WEB_THREADS=str(max(args.clients) + 100))
                env.pop("SENSOR_URL", None)
                measure(args, db, procs, env, workdir)
    finally:
        if cluster:
            cluster.stop()
        stop_all([redis_proc])


def measure(args, db, procs, env, workdir):
    """The rows of one (database, server): each client count, median of the runs."""
    pool = multiprocessing.get_context("spawn").Pool(1, _writer_init, (env,))
    web = start_web(web_command(procs, args.worker_class), env, workdir / f"web-{db}-{procs}.log",
                    procs)
    server = f"{args.worker_class} {procs}" if procs else "app.py"
    try:
        for clients in args.clients:
            runs = [uvloop.run(one_run(int(env["PORT"]), env["DATABASE_URL"], pool, clients,
                                        args.rate, args.seconds)) for _ in range(args.runs)]
            m = {key: statistics.median(run[key] for run in runs) for key in runs[0]}
            print(f"{db:>10} {server:>10} {clients:>7} {m['p50'] * 1e3:>8.1f} "
                  f"{m['p99'] * 1e3:>8.1f} {m['max'] * 1e3:>8.1f} {m['per_s']:>9.0f} "
                  f"{m['missing']:>7.0f} | {m['poll_p50'] * 1e3:>12.0f} {m['poll_p99'] * 1e3:>6.0f} | "
                  f"{m['write_p50'] * 1e3:>8.1f} {m['first_p50'] * 1e3:>10.1f} "
                  f"{m['fanout_p50'] * 1e3:>8.1f} {m['client_cpu']:>9.0%}", flush=True)
    finally:
        stop_all([web])
        pool.close()


if __name__ == "__main__":
    main()
