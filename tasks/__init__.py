"""The Celery app: `celery -A tasks worker -B` samples every sensor every SAMPLE_PERIOD_S seconds;
`celery -A tasks worker -Q labelling` labels /nilm uploads (tasks.labelling), apart from sampling."""
from celery import Celery

from readings import settings

app = Celery("wattson", broker=settings.redis_url(), include=["tasks.sampling", "tasks.labelling"])
app.conf.update(
    # A reading is acknowledged only once it is committed: a worker lost mid-task gets it redelivered.
    task_acks_late=True,
    task_reject_on_worker_lost=True,
    task_ignore_result=True,
    worker_prefetch_multiplier=1,
    broker_connection_retry_on_startup=True,
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
            "options": {"expires": settings.sample_period_s()},
        }
        for sensor in settings.sensors()
    },
)
settings.INSTANCE_DIR.mkdir(exist_ok=True)
