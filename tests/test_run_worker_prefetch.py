"""A run worker busy with a run takes no other run (runtime/execution.py): the next one
stays in the broker for an idle worker, instead of waiting behind the whole current run.

A real Celery worker with the run workers' settings, one process, on the stack's broker
Redis; its task sleeps the length of a run."""

import os
import sys
import time
import uuid
from pathlib import Path

import redis
from celery import Celery

from vomage_dagster.local import processes
from vomage_dagster.runtime.execution import run_worker_config

HERE = Path(__file__).resolve().parent


def _wait(condition, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return False


def test_a_busy_worker_leaves_the_next_run_in_the_broker(settings, tmp_path):
    broker, queue = settings.celery_broker_url, f"prefetch-{uuid.uuid4().hex[:8]}"
    assert run_worker_config(settings)["config_source"]["worker_disable_prefetch"] is True
    env = {**os.environ, "VOMAGE_TEST_BROKER": broker,
           "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")])}
    worker = processes.start([sys.executable, "-m", "celery", "-A", "celery_sleeper", "worker", "-c", "1",
                              "-Q", queue, "-n", f"{queue}@%h", "-l", "WARNING", "--without-gossip",
                              "--without-mingle", "--without-heartbeat"],
                             env=env, cwd=HERE, log=tmp_path / "worker.log")
    client = Celery("sender", broker=broker, backend=broker)
    waiting = redis.Redis.from_url(broker)
    try:
        first = client.send_task("sleeper.sleep", args=[4.0], queue=queue)
        assert _wait(lambda: first.state == "STARTED" or waiting.llen(queue) == 0, 60)  # the worker took it
        second = client.send_task("sleeper.sleep", args=[0.0], queue=queue)
        time.sleep(1.5)  # a prefetching worker would have reserved it by now
        assert waiting.llen(queue) == 1, "the busy worker reserved the next run"
        assert second.get(timeout=30) == 0.0 and first.get(timeout=30) == 4.0  # then it runs it
    finally:
        processes.stop(worker.pid, grace=5)
