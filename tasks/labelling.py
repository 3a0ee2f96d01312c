"""Label an uploaded recording by job id, on the `labelling` queue. The logic is labelling/."""
import functools
import logging

import redis
from celery import shared_task

from labelling import analysis, jobs
from readings import create_db_app, settings

log = logging.getLogger(__name__)


@functools.cache
def _clients():
    """One Flask app (the database) and one Redis client per worker process."""
    return create_db_app(), redis.Redis.from_url(settings.redis_url())


# Acknowledged on receipt: a file that kills its worker (memory) must not be redelivered forever;
# its waiter gives up instead. The soft limit ends a runaway job with a message, the hard one its process.
@shared_task(acks_late=False, soft_time_limit=480, time_limit=540)
def label(job_id):
    app, client = _clients()
    with app.app_context():
        try:
            analysis.run(job_id)
        finally:
            try:
                jobs.announce(client, job_id)
            except redis.RedisError as error:  # the waiter re-checks the table; only slower
                log.warning("could not announce labelling job %s: %s", job_id, error)
