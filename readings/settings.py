"""Configuration from environment variables, with defaults that work on one machine."""
import os
from pathlib import Path

INSTANCE_DIR = Path(__file__).resolve().parent.parent / "instance"
NILM_UPLOAD_MAX_BYTES = 50 * 2**20
# Every body but the /nilm upload's (which streams to the job store under its own limit, set per
# request in labelling.routes) is a Dash callback's JSON, which Flask parses whole: the monitor's
# big stores stay in the browser (clientside callbacks), so a few MiB is far more than any needs.
# Flask refuses a larger body with 413 from its Content-Length, before reading it.
MAX_CONTENT_LENGTH = 4 * 2**20


def database_url(env=os.environ):
    """DATABASE_URL, normalised for SQLAlchemy; a SQLite file under instance/ by default."""
    url = env.get("DATABASE_URL")
    if not url:
        INSTANCE_DIR.mkdir(exist_ok=True)
        return f"sqlite:///{INSTANCE_DIR / 'wattson.db'}"
    # Heroku-style and plain postgresql URLs both mean psycopg 3 here.
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


def redis_url(env=os.environ):
    return env.get("REDIS_URL", "redis://127.0.0.1:6379/0")


def sensors(env=os.environ):
    names = [s.strip() for s in env.get("SENSORS", "sensor-1").split(",")]
    return [s for s in names if s] or ["sensor-1"]


def sample_period_s(env=os.environ):
    return float(env.get("SAMPLE_PERIOD_S", "10"))


def sensor_url(env=os.environ):
    return env.get("SENSOR_URL") or None


def nilm_label_concurrency(env=os.environ):
    """How many uploads one web process labels at once; each can take ~1 GB, the rest wait."""
    return max(1, int(env.get("NILM_LABEL_CONCURRENCY", "1")))


def flask_config(env=os.environ):
    """The Flask config mapping shared by the web app and the worker."""
    return {
        "SQLALCHEMY_DATABASE_URI": database_url(env),
        # A pooled connection that died with a PostgreSQL restart is replaced, not handed out.
        "SQLALCHEMY_ENGINE_OPTIONS": {"pool_pre_ping": True},
        "REDIS_URL": redis_url(env),
        "SENSORS": sensors(env),
        "SAMPLE_PERIOD_S": sample_period_s(env),
        "SENSOR_URL": sensor_url(env),
        "MAX_CONTENT_LENGTH": MAX_CONTENT_LENGTH,
        "NILM_LABEL_CONCURRENCY": nilm_label_concurrency(env),
        "INGEST_TOKEN": env.get("INGEST_TOKEN") or None,  # unset: POST /api/readings is off (404)
    }
