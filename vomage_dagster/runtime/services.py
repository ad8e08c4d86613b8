"""The platform's services as they run in production: one container image, one command
per service (`vomage service NAME`), and what each needs from its environment.

A service started without a setting it needs must stop at once, naming the setting,
instead of starting and failing on its first call minutes later (or, worse, falling back
to a default meant for a laptop, such as a Redis on 127.0.0.1). So every service declares
its required variables here, `vomage service` checks them before anything starts, and
the compute template (deploy/cloudformation/compute.yaml) sets exactly these.

The files a service needs that depend on its environment (the workspace pointing at the
code server, the run workers' Celery file, which may hold the broker's password) are
written at start into a private runtime folder, never baked into the image.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from vomage_dagster.runtime.execution import RUN_QUEUES

CODE_SERVER, WEBSERVER, DAEMON, INGEST, LIVE_VIEW, RUN_WORKER = (
    "code-server", "webserver", "daemon", "ingest", "live-view", "run-worker")
SERVICES = (CODE_SERVER, WEBSERVER, DAEMON, INGEST, LIVE_VIEW, RUN_WORKER)
PORTS = {CODE_SERVER: 4000, WEBSERVER: 3000, LIVE_VIEW: 8000}
LOCATION = "vomage"  # the code location's name in the production workspace

# Every service talks to the platform's AWS resources by these names.
PLATFORM = ("VOMAGE_ENV", "AWS_DEFAULT_REGION", "VOMAGE_BUCKET", "VOMAGE_UPLOADS_QUEUE",
            "VOMAGE_DEAD_LETTER_QUEUE", "VOMAGE_STATUS_TABLE", "VOMAGE_RECORDS_TABLE",
            "VOMAGE_EVENT_BUS", "REDIS_URL")
# Dagster's instance: DAGSTER_HOME, and every variable its dagster.yaml reads (`env:`;
# in production the Postgres connection, deploy/dagster.yaml).
INSTANCE = ("DAGSTER_HOME",)
# The runs' Celery broker: a Redis of its own, so a cache outage does not stop launches.
BROKER = ("VOMAGE_CELERY_BROKER",)
CODE_SERVER_ADDRESS = ("VOMAGE_CODE_SERVER_HOST",)

REQUIRED: dict[str, tuple[str, ...]] = {
    CODE_SERVER: PLATFORM + INSTANCE,
    WEBSERVER: PLATFORM + INSTANCE + CODE_SERVER_ADDRESS,
    DAEMON: PLATFORM + INSTANCE + BROKER + CODE_SERVER_ADDRESS,  # its run launcher sends to the broker
    INGEST: PLATFORM + INSTANCE + CODE_SERVER_ADDRESS,
    # The live view signs users in through the app's user pool and writes its users table.
    LIVE_VIEW: PLATFORM + ("VOMAGE_USER_POOL_ID", "VOMAGE_USER_POOL_CLIENT_ID", "VOMAGE_USERS_TABLE",
                           "VOMAGE_STREAMING_ROLE_ARN"),
    RUN_WORKER: PLATFORM + INSTANCE + BROKER,
}
# What a run worker needs beyond that, by queue: the batch jobs hand Bedrock its role.
QUEUE_REQUIRED = {"vomage-batch": ("VOMAGE_BEDROCK_BATCH_ROLE_ARN",)}
HEARTBEAT_FILE = "ingest.alive"  # touched by the ingest service after every pass


class MissingSettings(Exception):
    def __init__(self, service: str, names: list[str]):
        self.service, self.names = service, names
        super().__init__(f"{service}: missing required setting{'s' if len(names) > 1 else ''} "
                         f"{', '.join(names)} (set in the task definition; see docs/deploy.md)")


@dataclass(frozen=True)
class Service:
    name: str
    argv: list[str]
    files: dict[Path, str] = field(default_factory=dict)  # written 0600 before the start


def required(name: str, queue: str | None = None) -> tuple[str, ...]:
    if name not in REQUIRED:
        raise ValueError(f"unknown service {name!r}: one of {', '.join(SERVICES)}")
    return REQUIRED[name] + QUEUE_REQUIRED.get(queue or "", ())


def missing(name: str, environ: Mapping[str, str], queue: str | None = None) -> list[str]:
    """The required settings that are unset or empty (AWS_REGION stands for the default
    region, as botocore reads either)."""
    have = dict(environ)
    if not have.get("AWS_DEFAULT_REGION") and have.get("AWS_REGION"):
        have["AWS_DEFAULT_REGION"] = have["AWS_REGION"]
    lacking = [n for n in required(name, queue) if not str(have.get(n, "")).strip()]
    if "DAGSTER_HOME" in required(name, queue) and "DAGSTER_HOME" not in lacking:
        instance = Path(have["DAGSTER_HOME"]) / "dagster.yaml"
        if not instance.is_file():
            return [*lacking, f"DAGSTER_HOME ({instance} does not exist)"]
        lacking += [n for n in instance_variables(instance.read_text())
                    if n not in lacking and not str(have.get(n, "")).strip()]
    return lacking


def instance_variables(instance_yaml: str) -> list[str]:
    """The environment variables a dagster.yaml reads (`{env: NAME}` anywhere in it)."""
    found: list[str] = []

    def walk(node: object) -> None:
        if isinstance(node, dict):
            if set(node) == {"env"} and isinstance(node["env"], str):
                found.append(node["env"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(yaml.safe_load(instance_yaml))
    return list(dict.fromkeys(found))


def workspace_yaml(environ: Mapping[str, str]) -> str:
    """The production workspace: the one code location, served by the code server."""
    return yaml.safe_dump({"load_from": [{"grpc_server": {
        "host": environ["VOMAGE_CODE_SERVER_HOST"],
        "port": int(environ.get("VOMAGE_CODE_SERVER_PORT") or PORTS[CODE_SERVER]),
        "location_name": LOCATION}}]})


def run_worker_yaml(environ: Mapping[str, str]) -> str:
    """The run workers' `-y` file, from the function the launcher reads (so broker,
    backend and Celery settings cannot disagree)."""
    from vomage_dagster.runtime.execution import run_worker_config
    from vomage_dagster.settings import load_settings

    config = {k: v for k, v in run_worker_config(load_settings(dict(environ))).items() if k != "default_queue"}
    return yaml.safe_dump({"execution": {"config": config}})


def bin_path(name: str) -> str:
    """A console script of this environment (the image's venv), else from PATH."""
    beside = Path(sys.executable).parent / name
    return str(beside) if beside.exists() else (shutil.which(name) or name)


def command(name: str, environ: Mapping[str, str], runtime_dir: Path, *, queue: str | None = None,
            concurrency: int = 1, host: str = "0.0.0.0", port: int | None = None) -> Service:
    """What `vomage service NAME` runs. Raises MissingSettings before anything starts."""
    lacking = missing(name, environ, queue)
    if name == RUN_WORKER and queue not in RUN_QUEUES:
        raise ValueError(f"run-worker needs --queue, one of {', '.join(RUN_QUEUES)}")
    if lacking:
        raise MissingSettings(name, lacking)
    port = port or PORTS.get(name)
    workspace = runtime_dir / "workspace.yaml"
    if name == CODE_SERVER:
        return Service(name, [bin_path("dagster"), "code-server", "start", "-h", host, "-p", str(port),
                              "-m", "vomage_dagster.definitions", "--location-name", LOCATION])
    if name == WEBSERVER:
        return Service(name, [bin_path("dagster-webserver"), "-h", host, "-p", str(port), "-w", str(workspace)],
                       {workspace: workspace_yaml(environ)})
    if name == DAEMON:
        return Service(name, [bin_path("dagster-daemon"), "run", "-w", str(workspace)],
                       {workspace: workspace_yaml(environ)})
    if name == INGEST:
        return Service(name, [bin_path("vomage"), "ingest", "--workspace", str(workspace),
                              "--heartbeat", str(runtime_dir / HEARTBEAT_FILE)],
                       {workspace: workspace_yaml(environ)})
    if name == LIVE_VIEW:
        return Service(name, [bin_path("vomage"), "app", "serve", "--host", host, "--port", str(port)])
    config = runtime_dir / "run-workers.yaml"
    # -n queue: dagster-celery names the node queue@%h (the host), each task a node of its
    # own; the health check pings that node.
    return Service(name, [bin_path("dagster-celery"), "worker", "start", "-A", "dagster_celery.app",
                          "-y", str(config), "-q", queue, "-n", queue,
                          "-i", "vomage_dagster.definitions", "-l", "WARNING", "--",
                          "--concurrency", str(concurrency), "--without-gossip", "--without-mingle"],
                   {config: run_worker_yaml(environ)})


def write_files(service: Service) -> None:
    for path, text in service.files.items():
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        path.unlink(missing_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(text)
