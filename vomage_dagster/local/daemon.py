"""A Dagster instance and daemon for the local stack (SQLite storage under the state folder).

The daemon is what evaluates sensors and launches runs; `running_daemon` starts it for
the demo and the end-to-end tests and always stops it afterwards.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .stack import stop_process

PROJECT_ROOT = Path(__file__).resolve().parents[2]

# Runs are queued, two at a time on two cores, dequeued every second: the default 5 s
# dequeue interval adds up to 5 s of latency to every recording.
DAGSTER_YAML = """\
telemetry:
  enabled: false
run_coordinator:
  module: dagster.core.run_coordinator
  class: QueuedRunCoordinator
  config:
    max_concurrent_runs: {max_runs}
    dequeue_interval_seconds: 1
sensors:
  use_threads: true
  num_workers: 2
"""


def prepare_home(state_dir: Path, max_concurrent_runs: int = 2) -> Path:
    home = state_dir / "dagster_home"
    home.mkdir(parents=True, exist_ok=True)
    (home / "dagster.yaml").write_text(DAGSTER_YAML.format(max_runs=max_concurrent_runs))
    return home


def _bin(name: str) -> str:
    return str(Path(sys.executable).parent / name)


@contextmanager
def running_daemon(state_dir: Path, env: dict[str, str]) -> Iterator[Path]:
    """Run `dagster-daemon` on the project's workspace; yield DAGSTER_HOME."""
    home = prepare_home(state_dir)
    logs = state_dir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    full_env = {**os.environ, **env, "DAGSTER_HOME": str(home)}
    with (logs / "daemon.log").open("ab") as log:
        proc = subprocess.Popen(
            [_bin("dagster-daemon"), "run", "-w", str(PROJECT_ROOT / "workspace.yaml")],
            cwd=PROJECT_ROOT, env=full_env, stdout=log, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, start_new_session=True,
        )
    try:
        time.sleep(0.5)
        if proc.poll() is not None:
            raise RuntimeError(f"dagster-daemon exited at once; see {logs / 'daemon.log'}")
        yield home
    finally:
        stop_process(proc.pid, grace=10)
        proc.wait(timeout=5)
