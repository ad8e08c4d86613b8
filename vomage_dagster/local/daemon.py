"""A Dagster instance and daemon for the local stack (SQLite storage under the state folder).

The daemon is what evaluates sensors and launches runs; `running_daemon` starts it for
the demo and the end-to-end tests and always stops it afterwards.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .stack import stop_process

PROJECT_ROOT = Path(__file__).resolve().parents[2]

# Runs are queued, two at a time on two cores, dequeued every second: the default 5 s
# dequeue interval adds up to 5 s of latency to every recording. ("immediate" launches
# from the sensor daemon without a queue or a limit: a lever the benchmark measures.)
QUEUED = """\
run_coordinator:
  module: dagster.core.run_coordinator
  class: QueuedRunCoordinator
  config:
    max_concurrent_runs: {max_runs}
    dequeue_interval_seconds: 1
"""
IMMEDIATE = """\
run_coordinator:
  module: dagster.core.run_coordinator
  class: DefaultRunCoordinator
"""
DAGSTER_YAML = """\
telemetry:
  enabled: false
{coordinator}sensors:
  use_threads: true
  num_workers: 2
run_monitoring:
  enabled: true
  start_timeout_seconds: 180
  poll_interval_seconds: 30
"""


def prepare_home(state_dir: Path, max_concurrent_runs: int = 2, launch: str = "queued") -> Path:
    home = state_dir / "dagster_home"
    home.mkdir(parents=True, exist_ok=True)
    coordinator = IMMEDIATE if launch == "immediate" else QUEUED.format(max_runs=max_concurrent_runs)
    (home / "dagster.yaml").write_text(DAGSTER_YAML.format(coordinator=coordinator))
    return home


def _bin(name: str) -> str:
    return str(Path(sys.executable).parent / name)


class Daemon:
    """`dagster-daemon run` on the project's workspace, in its own process group."""

    def __init__(self, state_dir: Path, env: dict[str, str], max_concurrent_runs: int = 2,
                 launch: str = "queued"):
        self.home = prepare_home(state_dir, max_concurrent_runs, launch)
        self.logs = state_dir / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.env = {**os.environ, **env, "DAGSTER_HOME": str(self.home)}
        self.proc: subprocess.Popen | None = None
        self.groups: list[int] = []

    def start(self) -> None:
        with (self.logs / "daemon.log").open("ab") as log:
            self.proc = subprocess.Popen(
                [_bin("dagster-daemon"), "run", "-w", str(PROJECT_ROOT / "workspace.yaml")],
                cwd=PROJECT_ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, start_new_session=True,
            )
        self.groups.append(self.proc.pid)
        time.sleep(0.5)
        if self.proc.poll() is not None:
            raise RuntimeError(f"dagster-daemon exited at once; see {self.logs / 'daemon.log'}")

    def crash(self) -> None:
        """SIGKILL the daemon alone, as a crash would; runs it launched carry on."""
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        """Stop the daemon and everything it started, including after a crash."""
        for pgid in self.groups:
            stop_process(pgid, grace=10)
        if self.proc is not None and self.proc.poll() is None:
            self.proc.wait(timeout=5)


@contextmanager
def running_daemon(state_dir: Path, env: dict[str, str], max_concurrent_runs: int = 2,
                   launch: str = "queued") -> Iterator[Daemon]:
    """Run the daemon for the duration of the block; always stopped afterwards."""
    daemon = Daemon(state_dir, env, max_concurrent_runs, launch)
    daemon.start()
    try:
        yield daemon
    finally:
        daemon.stop()
