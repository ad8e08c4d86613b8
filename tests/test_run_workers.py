"""A local run worker, started for real on the stack's broker: it serves its one run queue
(a job's runs go to the queue of its IAM role, jobs.py) and answers pings (the launcher's
health check of a STARTED run relies on it)."""

from __future__ import annotations

import os
import time

from vomage_dagster.local import PROJECT_ROOT, processes
from vomage_dagster.local.deployment import run_workers
from vomage_dagster.settings import load_settings


def test_a_run_worker_consumes_its_queue_and_answers_pings(local_stack, tmp_path):
    from celery import Celery

    settings = load_settings()
    env = {**os.environ, "DAGSTER_HOME": str(tmp_path)}
    proc = run_workers.start(tmp_path, settings, "vomage-batch", 1, env, PROJECT_ROOT, tmp_path / "worker.log")
    try:
        run_workers.wait_ready(settings.celery_broker_url, {"vomage-batch": proc})
        app = Celery(broker=settings.celery_broker_url)
        deadline = time.monotonic() + 30
        queues: dict[str, set[str]] = {}
        while time.monotonic() < deadline and not any(n.startswith("vomage-batch@") for n in queues):
            replies = app.control.inspect(timeout=2).active_queues() or {}
            queues = {node: {q["name"] for q in found} for node, found in replies.items()}
        app.close()
        (mine,) = [found for node, found in queues.items() if node.startswith("vomage-batch@")]
        assert mine == {"vomage-batch"}, queues
    finally:
        processes.stop(proc.pid)
    assert not run_workers.answering(settings.celery_broker_url, "vomage-batch")
