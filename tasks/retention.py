"""Beat: prune what is older than RETENTION_DAYS (readings/retention.py), in short batches."""
import logging
from datetime import datetime, timezone

from celery import shared_task
from sqlalchemy.exc import OperationalError

from readings import retention

from .alerts import flask_app

log = logging.getLogger(__name__)


@shared_task(ignore_result=True)
def prune():
    days = retention.retention_days()
    with flask_app().app_context():
        try:
            counts = retention.prune(datetime.now(timezone.utc), days)
        except OperationalError as error:  # a long lock: the batches done so far stay done
            log.warning("retention: database busy or not migrated yet (%s); pruning again next hour", error)
            return None
    log.info("retention (%g days): pruned %s", days, counts)
    return counts
