"""Beat: prune what is older than RETENTION_DAYS (readings/retention.py), in short batches."""
import logging
from datetime import datetime, timezone

from celery import shared_task

from readings import retention

from .alerts import flask_app

log = logging.getLogger(__name__)


@shared_task(ignore_result=True)
def prune():
    days = retention.retention_days()
    with flask_app().app_context():
        counts = retention.prune(datetime.now(timezone.utc), days)
    log.info("retention (%g days): pruned %s", days, counts)
    return counts
