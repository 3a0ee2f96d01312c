"""Label an uploaded recording by job id, on the `labelling` queue. The logic is labelling/."""
import functools
import logging
import time

import redis
from celery import shared_task
from celery.signals import celeryd_after_setup

from labelling import analysis, jobs
from readings import create_db_app, settings

log = logging.getLogger(__name__)


@celeryd_after_setup.connect
def _warm_up(instance, **_):
    # Only in a worker that consumes `labelling` (the sampling worker imports this module too),
    # before its pool forks.
    if "labelling" in instance.app.amqp.queues.consume_from:
        started = time.perf_counter()
        analysis.warm_up()
        log.info("labelling warmed up in %.1f s", time.perf_counter() - started)


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
