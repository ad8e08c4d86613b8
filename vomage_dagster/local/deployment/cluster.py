"""The multi-process cluster on one machine: Dagster's production shape, locally.

`up` starts, on top of a running local stack and each on its own loopback port:
- Postgres (local/deployment/postgres.py) holding runs, event logs and schedules;
- the code location as its own gRPC server (`dagster api grpc`);
- the webserver and the daemon, both reading the workspace from that gRPC server;
- N run workers: dagster-celery workers on the stack's broker Redis that execute whole
  runs, warm (the production run launcher, run_launcher.py, local/deployment/run_workers.py).

The instance is deploy/dagster.yaml with its TLS parameter dropped (`instance_config`),
so the production storage, launcher, queue limits and run retries are the ones exercised
here. `cluster.json` in the cluster folder records every process, so
`down` works from another shell; it stops them all and deletes the database.
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import yaml

from vomage_dagster.local import PROJECT_ROOT, processes
from vomage_dagster.local.aws.stack import (
    STATE_FILE,
    StackError,
    free_port,
    http_ok,
    stack_env,
    wait_healthy,
)
from vomage_dagster.local.deployment import ingest_service, postgres, run_workers
from vomage_dagster.local.deployment.daemon import grpc_ok, role_env
from vomage_dagster.runtime.execution import RUN_QUEUE, RUN_QUEUES
from vomage_dagster.settings import load_settings

CLUSTER_DIR = "cluster"
INFO_FILE = "cluster.json"
LOCATION = "vomage_dagster"
PRODUCTION_INSTANCE = PROJECT_ROOT / "deploy" / "dagster.yaml"


def storage_config(config: dict) -> dict:
    """The Postgres settings of an instance config (pooled, `custom`, or plain `postgres`)."""
    storage = config["storage"]
    return storage["custom"]["config"] if "custom" in storage else storage["postgres"]


def instance_config(production: dict, max_concurrent_runs: int, pooled: bool = True) -> dict:
    """deploy/dagster.yaml for one machine: same Postgres storage (without TLS on
    loopback), queue with its quota limits, run retries and retention, the same warm run
    launcher (its broker is the stack's, from the settings) and no compute logs."""
    config = copy.deepcopy(production)
    db = storage_config(config)["postgres_db"]
    db.pop("params", None)
    if not pooled:  # dagster-postgres's own storage: a connection per call (the benchmark's lever)
        config["storage"] = {"postgres": storage_config(config)}
    queue = config["run_coordinator"]["config"]
    queue["max_concurrent_runs"] = max_concurrent_runs
    queue.pop("dequeue_use_threads", None)
    queue.pop("dequeue_num_workers", None)
    config["run_monitoring"] = {"enabled": True, "start_timeout_seconds": 180,
                                "poll_interval_seconds": 30}
    config["sensors"] = {"use_threads": True, "num_workers": 2}
    return config


def _bin(name: str) -> str:
    return str(Path(sys.executable).parent / name)


def cluster_dir(state_dir: Path) -> Path:
    return state_dir / CLUSTER_DIR


def read_info(state_dir: Path) -> dict | None:
    path = cluster_dir(state_dir) / INFO_FILE
    return json.loads(path.read_text()) if path.exists() else None


class _Starter:
    """Starts processes in their own sessions, logs in logs/cluster-<name>.log, and
    records them in cluster.json as it goes (so `down` finds a half-started cluster)."""

    def __init__(self, info: dict, env: dict[str, str], logs: Path, path: Path, tied: bool):
        self.info, self.env, self.logs, self.path, self.tied = info, env, logs, path, tied
        self.procs: dict[str, subprocess.Popen] = {}

    def log(self, name: str) -> Path:
        return self.logs / f"cluster-{name}.log"

    def record(self, name: str, proc: subprocess.Popen) -> None:
        self.procs[name] = proc
        self.info["pids"][name] = proc.pid
        write_info(self.path.parent, self.info)

    def start(self, name: str, argv: list[str], process: str | None = None) -> subprocess.Popen:
        """Start `argv` as `name`, with the credentials of the role `process` runs as."""
        env = {**self.env, **(role_env(Path(self.info["state_dir"]), process) if process else {})}
        proc = processes.start(argv, env=env, cwd=PROJECT_ROOT, log=self.log(name), tied=self.tied)
        self.record(name, proc)
        return proc

    def wait(self, name: str, check, timeout: float) -> None:
        wait_healthy(f"cluster-{name}", check, self.procs[name], timeout, self.logs)


def _workers_answering(broker: str) -> set[str]:
    """Names of the workers that answer a broadcast ping (`vomage-0@host`, …)."""
    from celery import Celery

    app = Celery("ping", broker=broker)
    try:
        return {name for reply in app.control.ping(timeout=1.0) for name in reply}
    finally:
        app.close()


def up(state_dir: Path, workers: int = 2, max_concurrent_runs: int = 2,
       extra_env: dict[str, str] | None = None, tied: bool = False) -> dict:
    """Start the cluster on the stack running in `state_dir`; return its info. `tied`: it
    stops when this process ends (tests); otherwise it runs until `down`."""
    state_dir = state_dir.resolve()
    stack_file = state_dir / STATE_FILE
    if not stack_file.exists():
        raise StackError("the local stack is not running: `vomage stack up` first")
    if read_info(state_dir):
        down(state_dir)
    stack_info = json.loads(stack_file.read_text())
    root = cluster_dir(state_dir)
    shutil.rmtree(root, ignore_errors=True)
    home = root / "dagster_home"
    home.mkdir(parents=True)
    logs = state_dir / "logs"
    logs.mkdir(exist_ok=True)

    ports = {"postgres": free_port(), "grpc": free_port(), "webserver": free_port()}
    pg_root = postgres.make_root(state_dir)
    info = {"state_dir": str(state_dir), "ports": ports, "pids": {}, "workers": workers,
            "postgres_root": str(pg_root), "home": str(home)}
    base_env = {**os.environ, **stack_env(stack_info), **(extra_env or {})}
    starter = _Starter(info, base_env, logs, root / INFO_FILE, tied)
    try:
        password = postgres.init(pg_root, starter.log("postgres"))
        starter.record("postgres", postgres.start(pg_root, ports["postgres"],
                                                  starter.log("postgres"), base_env, tied))
        postgres.create_database(ports["postgres"], password, starter.procs["postgres"])

        env = {**base_env, **postgres.env_vars(ports["postgres"], password),
               "DAGSTER_HOME": str(home),
               # dagster-celery runs `celery` from PATH: this environment's.
               "PATH": os.pathsep.join([str(Path(sys.executable).parent), base_env.get("PATH", "")])}
        starter.env = env
        settings = load_settings(env)
        production = yaml.safe_load(PRODUCTION_INSTANCE.read_text())
        (home / "dagster.yaml").write_text(
            yaml.safe_dump(instance_config(production, max_concurrent_runs,
                                           pooled=env.get("VOMAGE_PG_POOL", "on") != "off"), sort_keys=False))
        workspace = root / "workspace.yaml"
        workspace.write_text(yaml.safe_dump({"load_from": [{"grpc_server": {
            "host": "127.0.0.1", "port": ports["grpc"], "location_name": LOCATION}}]}))
        celery_yaml = run_workers.write_worker_yaml(home, settings)
        # The schema once, before any process: each would create the tables of an empty
        # database at its start, and two at once collide ("instance_info already exists").
        migrated = subprocess.run([_bin("dagster"), "instance", "migrate"], env=env, capture_output=True,
                                  text=True, timeout=300)
        if migrated.returncode != 0:
            raise StackError(f"cluster: dagster instance migrate failed: {migrated.stderr[-2000:]}")

        # Workers first: their start (~3 s) overlaps the code server's. N for the recordings'
        # queue, one for each other queue, each as its queue's role (as on AWS).
        names = {f"worker-{i}": (f"vomage-{i}", RUN_QUEUE) for i in range(workers)}
        names |= {f"worker-{queue.split('-', 1)[1]}": (queue, queue) for queue in RUN_QUEUES if queue != RUN_QUEUE}
        for name, (node, queue) in names.items():
            starter.start(name, run_workers.worker_command(celery_yaml, 1, node, (queue,)), queue)
        starter.start("code-server", [_bin("dagster"), "api", "grpc", "-m",
                                      "vomage_dagster.definitions", "-h", "127.0.0.1",
                                      "-p", str(ports["grpc"]), "--location-name", LOCATION], "code-server")
        starter.wait("code-server", lambda: grpc_ok(ports["grpc"], env), 120)
        starter.start("webserver", [_bin("dagster-webserver"), "-w", str(workspace),
                                    "-h", "127.0.0.1", "-p", str(ports["webserver"])], "webserver")
        starter.start("daemon", [_bin("dagster-daemon"), "run", "-w", str(workspace)], "daemon")
        starter.start("ingest", ingest_service.command(workspace), "ingest")
        starter.wait("webserver", lambda: http_ok(
            f"http://127.0.0.1:{ports['webserver']}/server_info"), 120)
        for name, (node, _queue) in names.items():
            starter.wait(name, lambda node=node: any(
                n.startswith(f"{node}@") for n in _workers_answering(settings.celery_broker_url)), 120)
        for name in ("daemon", "ingest"):
            if name in starter.procs and starter.procs[name].poll() is not None:
                raise StackError(f"cluster: the {name} process exited; see {starter.log(name)}")
    except BaseException:
        down(state_dir)
        raise
    # What a client of this instance needs (tests, the benchmark): the instance file
    # reads the database from DAGSTER_PG_*. The password is this start's, loopback only.
    info["env"] = {k: env[k] for k in ("DAGSTER_HOME", *postgres.env_vars(0, "").keys())}
    write_info(root, info)
    return info


def write_info(root: Path, info: dict) -> None:
    path = root / INFO_FILE
    path.touch(mode=0o600, exist_ok=True)
    path.write_text(json.dumps(info, indent=1))


# Signalled in this order (nothing new is launched while the rest goes down), all at
# once; Postgres last, once its clients are gone.
STOP_ORDER = ("ingest", "daemon", "webserver", "code-server")


def down(state_dir: Path) -> list[str]:
    """Stop every process of the cluster and delete its database; the names stopped."""
    state_dir = state_dir.resolve()
    info = read_info(state_dir)
    if info is None:
        return []
    pids: dict[str, int] = info.get("pids", {})
    order = [n for n in STOP_ORDER if n in pids]
    order += sorted(n for n in pids if n.startswith("worker-"))
    order += [n for n in pids if n not in order and n != "postgres"]
    running = set(processes.stop_all([pids[name] for name in order], grace=10))
    stopped = [name for name in order if pids[name] in running]
    if "postgres" in pids and processes.stop(pids["postgres"], grace=10):
        stopped.append("postgres")
    pg_root = info.get("postgres_root")
    if pg_root:
        shutil.rmtree(pg_root, ignore_errors=True)
    (cluster_dir(state_dir) / INFO_FILE).unlink(missing_ok=True)
    return stopped


def kill_worker(state_dir: Path, index: int) -> int:
    """SIGKILL worker `index` and its pool process, as a lost machine would; its pid."""
    info = read_info(state_dir.resolve())
    if info is None:
        raise StackError("the cluster is not running")
    pid = info["pids"][f"worker-{index}"]
    os.killpg(pid, signal.SIGKILL)
    return pid


@contextmanager
def running_cluster(state_dir: Path, workers: int = 2, max_concurrent_runs: int = 2,
                    extra_env: dict[str, str] | None = None) -> Iterator[dict]:
    """The cluster for the duration of the block; always stopped afterwards."""
    info = up(state_dir, workers, max_concurrent_runs, extra_env, tied=True)
    try:
        yield info
    finally:
        down(state_dir)
