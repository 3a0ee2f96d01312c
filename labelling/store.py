"""The labelling jobs table: an upload's bytes in, the analysis and the labelled CSV out.

Why a table in the application's database, not a directory or the broker: every web process and
every worker already reaches the database, on any host, so no shared filesystem has to be set up;
uploads and results go into the same backups as the readings; and a job's result, its state and
its upload's deletion are written in one transaction, so a reader never sees half a result. The
broker only ever carries a job's id.

Everything stored is zlib-compressed (a recording or a labelled CSV shrinks about 6x, at ~0.3 s for
50 MB), written once and read whole. Jobs expire after NILM_JOB_TTL_S and are pruned whenever a
new one is made; a finished job drops its upload, and a result over NILM_JOB_RESULT_MAX_BYTES
(compressed) is refused, so the table stays bounded.
"""
import os
import secrets
import time
import zlib
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import delete, select, update
from sqlalchemy.orm import deferred

from readings.models import db
from readings.settings import NILM_UPLOAD_MAX_BYTES

UPLOAD_MAX_BYTES = NILM_UPLOAD_MAX_BYTES
CHUNK = 2**20
QUEUED, RUNNING, DONE, FAILED = "queued", "running", "done", "failed"


def job_ttl_s(env=os.environ):
    return float(env.get("NILM_JOB_TTL_S", "3600"))


def result_max_bytes(env=os.environ):
    return int(env.get("NILM_JOB_RESULT_MAX_BYTES", str(64 * 2**20)))


class TooLarge(ValueError):
    """An upload over UPLOAD_MAX_BYTES; the message is fit to show a user."""


class LabellingJob(db.Model):
    """One upload and its outcome; the schema is migrations/versions/0004_labelling_jobs.py."""

    __tablename__ = "labelling_jobs"
    id = db.Column(db.String(32), primary_key=True)
    name = db.Column(db.Text, nullable=False)
    state = db.Column(db.String(8), nullable=False)
    created_at = db.Column(db.Float, nullable=False)  # epoch seconds, like the two below
    started_at = db.Column(db.Float)
    finished_at = db.Column(db.Float)
    error = db.Column(db.Text)
    # The blobs are loaded only when asked for: a state check must not read 10 MB.
    upload = deferred(db.Column(db.LargeBinary))
    analysis = deferred(db.Column(db.LargeBinary))
    labelled = deferred(db.Column(db.LargeBinary))


@dataclass(frozen=True)
class Outcome:
    """Where a job stands: state, and its user-facing error when it failed."""

    name: str
    state: str
    error: str | None

    @property
    def finished(self):
        return self.state in (DONE, FAILED)


def too_big_message(name, size):
    return f"{name} is {size / 2**20:.1f} MB; the limit is {UPLOAD_MAX_BYTES / 2**20:.0f} MB."


def labelled_name(name):
    """main.csv -> main_labelled.csv"""
    path = Path(name or "recording.csv")
    return f"{path.stem}_labelled{path.suffix or '.csv'}"


def compress_chunks(chunks, name, max_bytes=UPLOAD_MAX_BYTES):
    """The zlib stream of an upload read chunk by chunk; TooLarge past max_bytes of input.

    Only the compressed bytes are held, so a 49 MB upload costs its web process ~10 MB.
    """
    packer = zlib.compressobj(1)
    packed, size = [], 0
    for chunk in chunks:
        size += len(chunk)
        if size > max_bytes:
            raise TooLarge(too_big_message(name, size))
        packed.append(packer.compress(chunk))
    packed.append(packer.flush())
    return b"".join(packed)


def create_job(name, packed_upload, now=None):
    """Store a (compressed) upload as a queued job, prune expired jobs; the new job's id."""
    now = time.time() if now is None else now
    prune(now)
    job_id = secrets.token_urlsafe(16)
    db.session.add(LabellingJob(id=job_id, name=name, state=QUEUED, created_at=now,
                                upload=packed_upload))
    db.session.commit()
    return job_id


def prune(now=None, ttl_s=None):
    """Delete jobs made more than ttl_s (NILM_JOB_TTL_S) ago; how many went."""
    now = time.time() if now is None else now
    ttl_s = job_ttl_s() if ttl_s is None else ttl_s
    deleted = db.session.execute(delete(LabellingJob).where(LabellingJob.created_at < now - ttl_s))
    db.session.commit()
    return deleted.rowcount


def start(job_id):
    """Mark a queued job running; (name, upload bytes), or None when it is gone or not queued."""
    claimed = db.session.execute(
        update(LabellingJob).where(LabellingJob.id == job_id, LabellingJob.state == QUEUED)
        .values(state=RUNNING, started_at=time.time()))
    db.session.commit()
    if claimed.rowcount != 1:
        return None
    row = db.session.execute(select(LabellingJob.name, LabellingJob.upload)
                             .where(LabellingJob.id == job_id)).one_or_none()
    db.session.rollback()
    return None if row is None else (row.name, zlib.decompress(row.upload))


def finish(job_id, name, analysis_json, labelled):
    """Store a job's result (the analysis as JSON text, the labelled CSV) and drop its upload."""
    analysis, labelled = zlib.compress(analysis_json.encode(), 1), zlib.compress(labelled, 1)
    if len(analysis) + len(labelled) > result_max_bytes():
        return fail(job_id, f"{name}: the result is too large to keep; please upload a shorter "
                            "recording.")
    _end(job_id, DONE, analysis=analysis, labelled=labelled)


def fail(job_id, message):
    """End a job with a message fit to show as it is: it names the file."""
    _end(job_id, FAILED, error=message)


def _end(job_id, state, **values):
    db.session.execute(update(LabellingJob).where(LabellingJob.id == job_id)
                       .values(state=state, finished_at=time.time(), upload=None, **values))
    db.session.commit()


def outcome(job_id):
    """The job's Outcome, or None when there is no such job (never made, or expired)."""
    row = db.session.execute(select(LabellingJob.name, LabellingJob.state, LabellingJob.error)
                             .where(LabellingJob.id == job_id)).one_or_none()
    db.session.rollback()  # end the read: the next check must see new commits
    return None if row is None else Outcome(row.name, row.state, row.error)


def analysis_json(job_id):
    """The stored analysis (JSON text) of a finished job, or None."""
    packed = _blob(LabellingJob.analysis, job_id)
    return None if packed is None else zlib.decompress(packed).decode()


def labelled_chunks(job_id):
    """(download name, an iterator of the labelled CSV's bytes), or None when it is not stored.

    The compressed blob is read now; the iterator only inflates it, a chunk at a time.
    """
    row = db.session.execute(select(LabellingJob.name, LabellingJob.labelled)
                             .where(LabellingJob.id == job_id)).one_or_none()
    db.session.rollback()
    if row is None or row.labelled is None:
        return None
    return labelled_name(row.name), _inflate(row.labelled)


def has_labelled(job_id):
    return db.session.execute(select(LabellingJob.id).where(
        LabellingJob.id == job_id, LabellingJob.state == DONE)).first() is not None


def _blob(column, job_id):
    value = db.session.execute(select(column).where(LabellingJob.id == job_id)).scalar_one_or_none()
    db.session.rollback()
    return value


def _inflate(packed):
    unpacker = zlib.decompressobj()
    for start in range(0, len(packed), CHUNK):
        yield unpacker.decompress(packed[start:start + CHUNK])
    yield unpacker.flush()
