"""The local run worker, started for real on the stack's broker: it serves every run
queue (a job's runs go to the queue of its IAM role, jobs.py) and answers pings (the
launcher's health check of a STARTED run relies on it)."""

from __future__ import annotations

import time

from vomage_dagster.local import PROJECT_ROOT, processes
from vomage_dagster.local.deployment import run_workers
from vomage_dagster.runtime.execution import RUN_QUEUES
from vomage_dagster.settings import load_settings


def test_the_run_worker_consumes_every_run_queue_and_answers_pings(local_stack, tmp_path):
    import os

    from celery import Celery

    settings = load_settings()
    env = {**os.environ, "DAGSTER_HOME": str(tmp_path)}
    proc = run_workers.start(tmp_path, settings, 1, env, PROJECT_ROOT, tmp_path / "run-workers.log")
    try:
        run_workers.wait_ready(settings.celery_broker_url, proc)
        app = Celery(broker=settings.celery_broker_url)
        deadline = time.monotonic() + 30
        queues: set[str] = set()
        while time.monotonic() < deadline and queues != set(RUN_QUEUES):
            replies = app.control.inspect(timeout=2).active_queues() or {}
            queues = {q["name"] for found in replies.values() for q in found}
        app.close()
        assert queues == set(RUN_QUEUES), queues
    finally:
        processes.stop(proc.pid)
    assert not run_workers.answering(settings.celery_broker_url)
