"""The Celery app: `celery -A tasks worker -B` samples every sensor every SAMPLE_PERIOD_S seconds;
`celery -A tasks worker -Q labelling` labels /nilm uploads (tasks.labelling), apart from sampling."""
from celery import Celery

from readings import settings
from readings.sampling import timings

from . import lifetime

TIMINGS = timings(settings.sample_period_s())

app = Celery("wattson", broker=settings.redis_url(),
             include=["tasks.sampling", "tasks.alerts", "tasks.retention", "tasks.labelling"])
app.conf.update(
    # A reading is acknowledged only once it is committed: a worker lost mid-task gets it redelivered.
    task_acks_late=True,
    task_reject_on_worker_lost=True,
    task_ignore_result=True,
    worker_prefetch_multiplier=1,
    broker_connection_retry_on_startup=True,
    # A dead worker's unacknowledged messages come back after visibility_timeout, checked every
    # restore interval (kombu's defaults: an hour, and a sweep every 100 s).
    broker_transport_options={
        "visibility_timeout": TIMINGS.visibility_timeout_s,
        "unacked_restore_interval": TIMINGS.restore_interval_s,
        "unacked_restore_throttle": 1,
        # A worker killed during a sweep leaves its lock behind; kombu's default holds it 5 min.
        "unacked_mutex_expire": 30,
    },
    # Labelling (seconds and ~1 GB per big upload) has a queue and workers of its own, so it
    # never delays a sample; a worker started without -Q consumes only the default queue.
    task_routes={"tasks.labelling.*": {"queue": "labelling"}},
    beat_schedule_filename=str(settings.INSTANCE_DIR / "celerybeat-schedule"),
    beat_schedule={
        f"sample-{sensor}": {
            "task": "tasks.sampling.sample",
            "schedule": settings.sample_period_s(),
            "args": (sensor,),
            # A sample that could not run within its period is stale: skip it, take the next.
            # (Only this message expires: a retry that carries a reading taken never does.)
            "options": {"expires": settings.sample_period_s()},
        }
        for sensor in settings.sensors()
    } | {
        # Alerts and retention (tasks/alerts.py, tasks/retention.py): a stale sensor is noticed
        # within a period of going stale; pruning runs hourly, in short batches.
        "alerts-check": {"task": "tasks.alerts.check", "schedule": settings.sample_period_s(),
                         "options": {"expires": settings.sample_period_s()}},
        "retention-prune": {"task": "tasks.retention.prune", "schedule": 3600.0,
                            "options": {"expires": 3600.0}},
    },
)
settings.INSTANCE_DIR.mkdir(exist_ok=True)
lifetime.bind_to_worker()
