"""Warm run workers for the local instance: Celery workers that execute whole runs.

The daemon queues a run as before; `CeleryRunLauncher` sends it to its job's queue on the
stack's broker Redis (`vomage-runs` for recordings, `vomage-batch` and `vomage-metrics`
for the batch and metric jobs), and a worker process that imported the code location at
its start executes it with the in-process executor. One worker per queue, each with the
credentials of that queue's IAM role (`local/aws/roles.py`), as in production; one
process per concurrent run (`--concurrency`), forked from a parent that has imported
`vomage_dagster.definitions`, so even a replaced process starts warm.

`runs="spawn"` keeps Dagster's default launcher (a new process per run): the lever the
benchmark compares.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import yaml

from vomage_dagster.local import processes
from vomage_dagster.runtime.execution import RUN_QUEUES, run_worker_config
from vomage_dagster.settings import Settings

WORKER_NAME = "vomage-runs"  # the recordings' worker; the others are named after their queue


# The local dagster.yaml's launcher: configured from the settings of the process that
# loads it (the daemon's environment points at the stack's broker).
LAUNCHER_SECTION = """\
run_launcher:
  module: vomage_dagster.runtime.run_launcher
  class: WarmRunLauncher
"""


def worker_command(config_yaml: Path, concurrency: int, name: str = WORKER_NAME,
                   queues: tuple[str, ...] = RUN_QUEUES) -> list[str]:
    """A dagster-celery worker on `queues` (in production each queue has workers of its
    own, with its jobs' IAM role). Log level WARNING: at INFO Celery logs every task's
    return value."""
    queues = ["-q", ",".join(queues)]  # one argument: Celery keeps only the last of several -Q
    return [str(Path(sys.executable).parent / "dagster-celery"), "worker", "start",
            "-A", "dagster_celery.app", "-y", str(config_yaml), *queues, "-n", name,
            "-i", "vomage_dagster.definitions", "-l", "WARNING", "--",
            "--concurrency", str(concurrency), "--without-gossip", "--without-mingle",
            "--without-heartbeat"]


def write_worker_yaml(home: Path, settings: Settings) -> Path:
    """The workers' `-y` file: the same broker, backend and settings as the launcher's."""
    config = run_worker_config(settings)
    path = home / "run-workers.yaml"
    path.write_text(yaml.safe_dump({"execution": {"config": {
        k: v for k, v in config.items() if k != "default_queue"}}}))
    return path


def start(home: Path, settings: Settings, queue: str, concurrency: int, env: dict[str, str], cwd: Path,
          log: Path, keep_fds: tuple[int, ...] = ()) -> subprocess.Popen:
    """Start the worker of one run queue (named after it) under a guard tied to this process
    (`local/processes.py`); `env` carries the credentials of the queue's role."""
    config_yaml = write_worker_yaml(home, settings)
    # dagster-celery starts `celery` from PATH: this environment's.
    env = {**env, "PATH": os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])}
    return processes.start(worker_command(config_yaml, concurrency, queue, (queue,)), env=env, cwd=cwd, log=log,
                           keep_fds=keep_fds)


def answering(broker: str, name: str = WORKER_NAME, timeout_s: float = 1.0) -> bool:
    """Whether the worker answers a broadcast ping."""
    from celery import Celery

    app = Celery(broker=broker)
    try:
        replies = app.control.ping(timeout=timeout_s) or []
    finally:
        app.close()
    return any(node.startswith(f"{name}@") for reply in replies for node in reply)


def wait_ready(broker: str, workers: dict[str, subprocess.Popen], timeout_s: float = 120) -> None:
    """Until every worker (name → its guard) answers a ping."""
    deadline = time.monotonic() + timeout_s
    waiting = dict(workers)
    while time.monotonic() < deadline:
        for name, proc in list(waiting.items()):
            if proc.poll() is not None:
                raise RuntimeError(f"the run worker {name} exited at start; see the stack's logs/run-workers-*.log")
            if answering(broker, name):
                del waiting[name]
        if not waiting:
            return
        time.sleep(0.5)
    raise RuntimeError(f"the run workers {', '.join(waiting)} did not answer within {timeout_s:.0f} s")
