"""Submit a labelling job to the workers, and wait in the web process for its end.

Why a server-side wait and not a push on the WebSocket: the page asks one question (this upload's
result) and Dash's callback is already the channel that answers it, with the spinner, the alert and
the outputs wired. The callback blocks on a Redis BLPOP of the job's done key, which the worker
pushes when it has stored the outcome: the answer leaves the moment the job ends, the browser sends
nothing meanwhile, and a waiting callback costs one idle thread and one Redis connection. The
readings WebSocket carries a public feed to every client; a per-user result does not belong on it.

The outcome itself is always read from the database (store.py), never from Redis: the done key is
only a wake-up. Should one be lost (a Redis restart), the wait still checks the table every
RECHECK_S seconds, on the server.
"""
import time

import redis

from readings import redis_client

from . import store

LABEL_TASK = "tasks.labelling.label"
WAIT_S = 600.0  # the task's hard time limit (tasks/labelling.py) plus time in the queue
RECHECK_S = 5.0


def done_key(job_id):
    return f"wattson:labelling:{job_id}:done"


def submit(name, packed_upload):
    """Store an upload (compressed, store.compress_chunks) as a job and queue it; its id.

    Sent by name through the tasks app itself (a shared_task would use the calling thread's
    current Celery app, which in a web request thread is Celery's unconfigured default).
    """
    from tasks import app as celery_app

    job_id = store.create_job(name, packed_upload)
    celery_app.send_task(LABEL_TASK, args=[job_id])
    return job_id


def announce(client, job_id, ttl_s=None):
    """Wake whoever waits for job_id (the worker calls this once the outcome is stored)."""
    ttl_s = store.job_ttl_s() if ttl_s is None else ttl_s
    with client.pipeline() as pipe:
        pipe.rpush(done_key(job_id), 1).expire(done_key(job_id), max(1, int(ttl_s)))
        pipe.execute()


def wait(job_id, timeout_s=WAIT_S):
    """The job's store.Outcome once it has finished; None when there is no such job.

    An unfinished Outcome after timeout_s.
    """
    client = redis_client()
    deadline = time.monotonic() + timeout_s
    while True:
        outcome = store.outcome(job_id)
        left = deadline - time.monotonic()
        if outcome is None or outcome.finished or left <= 0:
            return outcome
        try:
            client.blpop([done_key(job_id)], timeout=max(1, min(RECHECK_S, left)))
        except redis.RedisError:
            time.sleep(min(RECHECK_S, max(left, 0)))  # Redis is down: the table still answers


