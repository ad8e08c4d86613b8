"""A local Dagster deployment on the stack (SQLite storage under the state folder), shaped
as production runs it: the code location as its own gRPC server (which evaluates the
sensors), the daemon (schedules, the run queue, run monitoring), a warm run worker per run
queue (`run_workers`), the ingest service (`ingest_service`) and, for `vomage ui`, the
webserver. Each process runs as its own template role (`local/aws/roles.py`), so a grant
the template lacks fails here as on AWS. `running_daemon` starts it for the demo, the
benchmarks and the end-to-end tests and always stops it afterwards.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from vomage_dagster.local import PROJECT_ROOT, processes
from vomage_dagster.local.aws.stack import HOME_DIR
from vomage_dagster.local.deployment import ingest_service, run_workers
from vomage_dagster.runtime.execution import RUN_QUEUE, RUN_QUEUES
from vomage_dagster.settings import load_settings

SERVICES_FILE = "services.json"

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
# Dagster's SQLite storage, the same files, with a run's event database set up once
# instead of once per process and per event (runtime/sqlite_storage.py).
SQLITE_STORAGE = """\
storage:
  custom:
    module: vomage_dagster.runtime.sqlite_storage
    class: FastSqliteStorage
    config:
      base_dir: {base_dir}
"""
DAGSTER_YAML = """\
telemetry:
  enabled: false
{storage}{coordinator}{compute_logs}sensors:
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
    text = DAGSTER_YAML.format(storage=SQLITE_STORAGE.format(base_dir=json.dumps(str(home.resolve()))),
                               coordinator=coordinator,
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


def role_env(state_dir: Path, process: str) -> dict[str, str]:
    """The credentials `process` runs with: its template role's when the stack assumed them."""
    from vomage_dagster.local.aws import roles

    return roles.process_env(state_dir, process) if roles.read(state_dir) else {}


def grpc_ok(port: int, env: dict[str, str]) -> bool:
    done = subprocess.run([_bin("dagster"), "api", "grpc-health-check", "-p", str(port)],
                          env=env, capture_output=True, check=False)
    return done.returncode == 0


class Daemon:
    """The local deployment: code server, daemon, a run worker per queue, the ingest
    service, and optionally the webserver, each under a guard tied to this process
    (`local/processes.py`). It holds the Dagster home's lock while it lives."""

    LOCATION = "vomage_dagster"

    def __init__(self, state_dir: Path, env: dict[str, str], max_concurrent_runs: int = 2,
                 launch: str = "queued", compute_logs: str = "none", runs: str = "warm",
                 webserver_port: int | None = None):
        self.state_dir = state_dir
        self.home = prepare_home(state_dir, max_concurrent_runs, launch, compute_logs, runs)
        self.runs = runs
        self.max_concurrent_runs = max_concurrent_runs
        self.webserver_port = webserver_port
        self.workers: dict[str, subprocess.Popen] = {}
        self.ingest: subprocess.Popen | None = None
        self.code_server: subprocess.Popen | None = None
        self.webserver: subprocess.Popen | None = None
        self.logs = state_dir / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        # A run's planned events in one write as it is created (sqlite_storage.store_event_batch).
        self.env = {"DAGSTER_EVENT_BATCH_SIZE": "64", **os.environ, **env, "DAGSTER_HOME": str(self.home),
                    # dagster-celery starts `celery` from PATH: this environment's.
                    "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])}
        self.proc: subprocess.Popen | None = None
        self.guards: list[int] = []
        self.lock: int | None = None
        self.workspace = self.home / "workspace.yaml"
        self.heartbeat = self.home / "ingest.alive"
        self.code_server_port: int | None = None

    @property
    def run_worker(self) -> subprocess.Popen | None:
        """The recordings' run worker (the one that executes `process_recording`)."""
        return self.workers.get(run_workers.WORKER_NAME)

    def _env(self, process: str) -> dict[str, str]:
        named = process if process.startswith("vomage-") else f"vomage-{process}"  # its spans' service
        return {**self.env, **role_env(self.state_dir, process), "OTEL_SERVICE_NAME": named}

    def _start(self, process: str, argv: list[str], log: str) -> subprocess.Popen:
        proc = processes.start(argv, env=self._env(process), cwd=PROJECT_ROOT, log=self.logs / log,
                               keep_fds=(self.lock,) if self.lock is not None else ())
        self.guards.append(proc.pid)
        return proc

    def _start_code_server(self) -> None:
        from vomage_dagster.local.aws.stack import free_port

        port = self.code_server_port = free_port()
        # Runs spawned by the code server (the `runs="spawn"` lever) inherit its environment:
        # then it keeps the stack's own keys, as before processes had roles.
        process = "code-server" if self.runs == "warm" else "none"
        env = self.env if process == "none" else self._env(process)
        self.code_server = processes.start(
            [_bin("dagster"), "api", "grpc", "-m", "vomage_dagster.definitions", "-h", "127.0.0.1", "-p", str(port),
             "--location-name", self.LOCATION], env=env, cwd=PROJECT_ROOT, log=self.logs / "code-server.log",
            keep_fds=(self.lock,) if self.lock is not None else ())
        self.guards.append(self.code_server.pid)
        self.workspace.write_text(f"load_from:\n  - grpc_server:\n      host: 127.0.0.1\n      port: {port}\n"
                                  f"      location_name: {self.LOCATION}\n")
        deadline = time.monotonic() + 120
        while not grpc_ok(port, self.env):
            if self.code_server.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the code server did not start; see {self.logs / 'code-server.log'}")
            time.sleep(0.3)

    def start(self) -> None:
        """Start what is not running: after `crash` that is the daemon (and the ingest
        service); the code server and the run workers carry on."""
        if self.lock is None:
            self.lock = processes.hold_home(self.home)
        create_storage(self.home)
        settings = load_settings(self.env)
        if self.runs == "warm":  # their starts (imports, ~3 s each) overlap the code server's
            for queue in RUN_QUEUES:
                name = run_workers.WORKER_NAME if queue == RUN_QUEUE else queue
                if not _alive(self.workers.get(name)):
                    concurrency = self.max_concurrent_runs if queue == RUN_QUEUE else 1
                    self.workers[name] = self._start(queue, run_workers.worker_command(
                        run_workers.write_worker_yaml(self.home, settings), concurrency, name, (queue,)),
                        f"run-workers-{queue}.log")
        if not _alive(self.code_server):
            self._start_code_server()
        if not _alive(self.ingest):
            self.ingest = self._start("ingest", ingest_service.command(self.workspace, self.heartbeat), "ingest.log")
        self.proc = self._start("daemon", [_bin("dagster-daemon"), "run", "-w", str(self.workspace)], "daemon.log")
        if self.webserver_port and not _alive(self.webserver):
            self.webserver = self._start("webserver", [_bin("dagster-webserver"), "-w", str(self.workspace),
                                                       "-h", "127.0.0.1", "-p", str(self.webserver_port)],
                                         "webserver.log")
        time.sleep(0.5)
        if self.proc.poll() is not None:
            raise RuntimeError(f"dagster-daemon exited at once; see {self.logs / 'daemon.log'}")
        if self.workers:
            run_workers.wait_ready(settings.celery_broker_url, self.workers)
        if self.ingest.poll() is not None:
            raise RuntimeError(f"the ingest service exited at once; see {self.logs / 'ingest.log'}")
        self._write_services()

    def _write_services(self) -> None:
        """Where each service answers its health check (`vomage deploy check --local-home`)."""
        nodes = {queue: f"{run_workers.WORKER_NAME if queue == RUN_QUEUE else queue}@{socket.gethostname()}"
                 for queue in RUN_QUEUES} if self.workers else {}
        found: dict = {"code-server": {"port": self.code_server_port}, "daemon": {},
                       "ingest": {"heartbeat": str(self.heartbeat)}, "run-worker": nodes}
        if self.webserver_port:
            found["webserver"] = {"port": self.webserver_port}
        (self.home / SERVICES_FILE).write_text(json.dumps(found, indent=1))

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
        for proc in (self.proc, self.ingest, self.code_server, self.webserver, *self.workers.values()):
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
                   launch: str = "queued", compute_logs: str = "none", runs: str = "warm",
                   webserver_port: int | None = None) -> Iterator[Daemon]:
    """Run the local deployment for the duration of the block; always stopped afterwards."""
    daemon = Daemon(state_dir, env, max_concurrent_runs, launch, compute_logs, runs, webserver_port)
    try:
        daemon.start()
    except BaseException:
        daemon.stop()
        raise
    try:
        yield daemon
    finally:
        daemon.stop()
