"""A Celery app with the run workers' settings and one task that sleeps: what
test_run_worker_prefetch.py starts a worker of (the broker from VOMAGE_TEST_BROKER)."""

import os
import time

from celery import Celery

from vomage_dagster.runtime.execution import run_worker_config
from vomage_dagster.settings import load_settings

app = Celery("sleeper", broker=os.environ["VOMAGE_TEST_BROKER"], backend=os.environ["VOMAGE_TEST_BROKER"])
app.conf.update(run_worker_config(load_settings())["config_source"])


@app.task(name="sleeper.sleep")
def sleep(seconds: float) -> float:
    time.sleep(seconds)
    return seconds
