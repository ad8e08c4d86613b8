"""A Dagster instance and daemon for the local stack (SQLite storage under the state folder).

The daemon is what evaluates sensors and dequeues runs; `running_daemon` starts it, the
warm run worker that executes the runs (`run_workers`) and the ingest service that
launches them as uploads arrive (`ingest_service`), for the demo, the benchmark and the
end-to-end tests, and always stops them afterwards.
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

from vomage_dagster.local import PROJECT_ROOT, processes
from vomage_dagster.local.aws.stack import HOME_DIR
from vomage_dagster.local.deployment import ingest_service, run_workers
from vomage_dagster.settings import load_settings

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
# Compute logs (a run's raw stdout/stderr in the UI) cost four helper processes per run
# with the local manager; the structured event log, which the UI shows step by step,
# does not need them. `compute_logs="local"` brings them back (a lever the benchmark
# measures); a run's stderr is also in the daemon's log file either way.
NO_COMPUTE_LOGS = """\
compute_logs:
  module: dagster.core.storage.noop_compute_log_manager
  class: NoOpComputeLogManager
"""
DAGSTER_YAML = """\
telemetry:
  enabled: false
{coordinator}{compute_logs}sensors:
  use_threads: true
  num_workers: 2
run_monitoring:
  enabled: true
  start_timeout_seconds: 180
  poll_interval_seconds: 30
"""


def prepare_home(state_dir: Path, max_concurrent_runs: int = 2, launch: str = "queued",
                 compute_logs: str = "none", runs: str = "warm") -> Path:
    """The instance's home and dagster.yaml. `runs="warm"`: runs go to the run worker
    (`run_workers`, which whoever starts the daemon or `dagster dev` must start too);
    `"spawn"`: Dagster's default, a new process per run."""
    home = state_dir / HOME_DIR
    home.mkdir(parents=True, exist_ok=True)
    coordinator = IMMEDIATE if launch == "immediate" else QUEUED.format(max_runs=max_concurrent_runs)
    text = DAGSTER_YAML.format(coordinator=coordinator,
                               compute_logs=NO_COMPUTE_LOGS if compute_logs == "none" else "")
    if runs == "warm":
        text += run_workers.LAUNCHER_SECTION  # configured from the settings of its process
    (home / "dagster.yaml").write_text(text)
    return home


def _bin(name: str) -> str:
    return str(Path(sys.executable).parent / name)


def create_storage(home: Path) -> None:
    """Create (or migrate) the instance's SQLite databases here, once: the daemon's code
    server and the run worker would otherwise both create them at their start, and two
    concurrent schema migrations leave the storage unusable."""
    from dagster import AssetKey, DagsterInstance

    with DagsterInstance.from_config(str(home)) as instance:
        instance.get_runs(limit=1)
        instance.get_latest_materialization_event(AssetKey("raw_recording"))
        instance.get_dynamic_partitions("recordings")


def _alive(proc: subprocess.Popen | None) -> bool:
    return proc is not None and proc.poll() is None


class Daemon:
    """`dagster-daemon run` on the project's workspace, with the warm run worker that
    executes its runs and the ingest service that launches them, each under a guard tied
    to this process (`local/processes.py`). It holds the Dagster home's lock while it lives."""

    def __init__(self, state_dir: Path, env: dict[str, str], max_concurrent_runs: int = 2,
                 launch: str = "queued", compute_logs: str = "none", runs: str = "warm"):
        self.home = prepare_home(state_dir, max_concurrent_runs, launch, compute_logs, runs)
        self.runs = runs
        self.max_concurrent_runs = max_concurrent_runs
        self.run_worker: subprocess.Popen | None = None
        self.ingest: subprocess.Popen | None = None
        self.logs = state_dir / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.env = {**os.environ, **env, "DAGSTER_HOME": str(self.home),
                    # dagster-celery starts `celery` from PATH: this environment's.
                    "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])}
        self.proc: subprocess.Popen | None = None
        self.guards: list[int] = []
        self.lock: int | None = None

    def start(self) -> None:
        """Start the daemon, and the run worker and ingest service unless they still run
        (`crash` kills the daemon, and maybe the ingest service, alone)."""
        if self.lock is None:
            self.lock = processes.hold_home(self.home)
        keep = (self.lock,)
        create_storage(self.home)
        settings = load_settings(self.env)
        # Their starts (imports, ~3 s) overlap the daemon's.
        if self.runs == "warm" and not _alive(self.run_worker):
            self.run_worker = run_workers.start(self.home, settings, self.max_concurrent_runs,
                                                self.env, PROJECT_ROOT, self.logs / "run-workers.log", keep)
            self.guards.append(self.run_worker.pid)
        if not _alive(self.ingest):
            self.ingest = ingest_service.start(self.env, PROJECT_ROOT, self.logs / "ingest.log", keep)
            self.guards.append(self.ingest.pid)
        self.proc = processes.start([_bin("dagster-daemon"), "run", "-w", str(PROJECT_ROOT / "workspace.yaml")],
                                    env=self.env, cwd=PROJECT_ROOT, log=self.logs / "daemon.log", keep_fds=keep)
        self.guards.append(self.proc.pid)
        time.sleep(0.5)
        if self.proc.poll() is not None:
            raise RuntimeError(f"dagster-daemon exited at once; see {self.logs / 'daemon.log'}")
        if self.run_worker is not None:
            run_workers.wait_ready(settings.celery_broker_url, self.run_worker)
        if self.ingest.poll() is not None:
            raise RuntimeError(f"the ingest service exited at once; see {self.logs / 'ingest.log'}")

    def crash(self, ingest: bool = False) -> None:
        """SIGKILL the daemon (and, with `ingest`, the ingest service) with everything in its
        process group, as a crash would; runs already launched carry on. `start` brings
        back what is gone."""
        assert self.proc is not None
        for proc in (self.proc, self.ingest if ingest else None):
            if _alive(proc):
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)

    def stop(self) -> None:
        """Stop the daemon and everything it started, including after a crash."""
        processes.stop_all(list(dict.fromkeys(self.guards)), grace=10)
        for proc in (self.proc, self.run_worker, self.ingest):
            if proc is not None:
                try:
                    proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    pass
        if self.lock is not None:
            os.close(self.lock)
            self.lock = None


@contextmanager
def running_daemon(state_dir: Path, env: dict[str, str], max_concurrent_runs: int = 2,
                   launch: str = "queued", compute_logs: str = "none", runs: str = "warm") -> Iterator[Daemon]:
    """Run the daemon (and its run worker) for the duration of the block; always stopped
    afterwards."""
    daemon = Daemon(state_dir, env, max_concurrent_runs, launch, compute_logs, runs)
    try:
        daemon.start()
    except BaseException:
        daemon.stop()
        raise
    try:
        yield daemon
    finally:
        daemon.stop()
