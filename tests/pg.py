"""A throwaway PostgreSQL cluster for tests: initdb + pg_ctl in a temporary directory, on a free
port, its unix socket in that directory too. PostgreSQL refuses to run as root, so under root the
server runs as the `postgres` user that Debian's package creates."""
import glob
import itertools
import os
import shutil
import sqlite3
import subprocess
import tempfile
from pathlib import Path

import psycopg

from serve import free_port

MISSING = "PostgreSQL server binaries (initdb, pg_ctl) not found: apt-get install postgresql"


def server_bin_dir():
    """The newest /usr/lib/postgresql/N/bin (Debian), else wherever initdb is on PATH."""
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                      key=lambda path: int(Path(path).parent.parent.name), reverse=True)
    initdb = versions[0] if versions else shutil.which("initdb")
    if not initdb:
        raise FileNotFoundError(MISSING)
    return Path(initdb).resolve().parent


def libpq_url(url):
    """A SQLAlchemy URL (postgresql+psycopg://) as psycopg itself takes it."""
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


class PgCluster:
    def __init__(self):
        self.bin = server_bin_dir()
        self.dir = Path(tempfile.mkdtemp(prefix="wattson-pg-"))  # not under root's 0700 pytest dir
        self.data = self.dir / "data"
        self.port = free_port()
        self.as_server_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        self._names = itertools.count(1)

    def _run(self, tool, *args):
        done = subprocess.run([*self.as_server_user, str(self.bin / tool), *args],
                              capture_output=True, text=True, timeout=120)
        if done.returncode != 0:
            raise RuntimeError(f"{tool} failed:\n{done.stdout}{done.stderr}")

    def start(self):
        if self.as_server_user:
            shutil.chown(self.dir, "postgres", "postgres")
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "-A", "trust", "-E", "UTF8",
                  "--locale=C", "--no-sync")
        # fsync off: a test cluster's data need not survive a power cut. Small shared buffers:
        # `make test` starts one cluster per xdist worker, and test databases are tiny.
        options = (f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off "
                   "-c timezone=UTC -c max_connections=100 -c shared_buffers=16MB")
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.dir / "server.log"), "-o", options,
                  "-w", "-t", "60", "start")
        return self

    def url(self, database="postgres"):
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def create_database(self):
        """A fresh, empty database; its SQLAlchemy URL."""
        name = f"test_{next(self._names)}"
        with psycopg.connect(libpq_url(self.url()), autocommit=True) as connection:
            connection.execute(f"CREATE DATABASE {name}")  # a name we made, not a value
        return self.url(name)

    def stop(self):
        try:
            self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "-t", "60", "stop")
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)


def shell(url):
    """An autocommit DB-API connection to a SQLite or PostgreSQL URL, as a person with the sqlite3
    shell or psql has: what the app's own code does not filter. Close it after use."""
    if url.startswith("sqlite"):
        return sqlite3.connect(url.removeprefix("sqlite:///"), timeout=30, isolation_level=None)
    return psycopg.connect(libpq_url(url), autocommit=True)


def restart(cluster):
    """Restart the cluster's server as an operator would (every connection is cut)."""
    cluster._run("pg_ctl", "-D", str(cluster.data), "-l", str(cluster.dir / "server.log"),
                 "-m", "fast", "-w", "-t", "60", "restart")
