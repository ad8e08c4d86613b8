"""The embedded local stack: moto server, real redis-servers (the cache, and the runs' Celery
broker) and the local model server.

`up` finds free loopback ports, starts the four processes in their own sessions,
waits until each answers, provisions the AWS resources and writes `stack.json` in the
state folder; `env` turns that file into `export` lines; `down` stops every process it
started. `up` on a running, healthy stack does nothing.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from vomage_dagster.local import processes
from vomage_dagster.settings import LOCAL_HOME_DIR, Settings, load_settings

STATE_FILE = "stack.json"
HOME_DIR = LOCAL_HOME_DIR  # wiped by a fresh `up`
# The stack's own keys: the account root of its moto (they provision, and stand in for
# ECS when they assume each process's role), never a process's own credentials.
DUMMY_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
# moto checks every call against the caller's policies from its first request.
IAM_ENV = {"INITIAL_NO_AUTH_ACTION_COUNT": "0", "MOTO_IAM_ROOT_KEYS": ":".join(DUMMY_CREDENTIALS.values())}


class StackError(RuntimeError):
    pass


class PortTaken(StackError):
    """A service found its port taken: another process bound it between `free_port`
    choosing it and the service binding it. The start is tried again on fresh ports."""


PORT_TAKEN = ("Address already in use",)  # Python's OSError 98 and redis-server's words
START_ATTEMPTS = 3


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def state_dir(settings: Settings) -> Path:
    return settings.state_dir.resolve()


@contextmanager
def environ_patched(values: dict[str, str], keep: tuple[str, ...] = ()) -> Iterator[None]:
    """`values` in this process's environment for the block, then what was there before
    (for `keep` too: names the block may change or that must not leak past it)."""
    saved = {k: os.environ.get(k) for k in (*values, *keep)}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as resp:
            return resp.status < 500
    except OSError:
        return False


def _redis_ok(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
            s.sendall(b"PING\r\n")
            return s.recv(16).startswith(b"+PONG")
    except OSError:
        return False


# Variables naming a template role the platform passes on (not one it acts as).
ROLE_ARN_VARIABLES = {"VOMAGE_STREAMING_ROLE_ARN": "AppStreamingRole",
                      "VOMAGE_BEDROCK_BATCH_ROLE_ARN": "BedrockBatchServiceRole"}


def stack_env(info: dict) -> dict[str, str]:
    """The variables that point boto3, redis and the platform at the local stack."""
    s = info["settings"]
    moto = f"http://127.0.0.1:{info['ports']['moto']}"
    models = f"http://127.0.0.1:{info['ports']['models']}"
    return {
        "VOMAGE_ENV": "local",
        "VOMAGE_STATE_DIR": info["state_dir"],
        "AWS_DEFAULT_REGION": s["region"],
        **DUMMY_CREDENTIALS,
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_ENDPOINT_URL": moto,
        "AWS_ENDPOINT_URL_TRANSCRIBE": models,
        "AWS_ENDPOINT_URL_BEDROCK_RUNTIME": models,
        "AWS_ENDPOINT_URL_BEDROCK": models,
        "VOMAGE_MODEL_SERVER_URL": models,
        **({"VOMAGE_TRANSCRIBE_STREAMING_URL":
            f"ws://127.0.0.1:{info['ports']['streaming']}/stream-transcription-websocket"}
           if "streaming" in info["ports"] else {}),
        "REDIS_URL": f"redis://127.0.0.1:{info['ports']['redis']}/0",
        **({"VOMAGE_TRACES_ENDPOINT": f"http://127.0.0.1:{info['ports']['traces']}/v1/traces"}
           if "traces" in info["ports"] else {}),
        # The runs' Celery broker is a Redis of its own: the cache may go away (the fault
        # tests stop it) without stopping runs from being launched.
        **({"VOMAGE_CELERY_BROKER": f"redis://127.0.0.1:{info['ports']['broker']}/0"}
           if "broker" in info["ports"] else {}),
        "VOMAGE_BUCKET": s["bucket"],
        "VOMAGE_UPLOADS_QUEUE": s["uploads_queue"],
        "VOMAGE_DEAD_LETTER_QUEUE": s["dead_letter_queue"],
        "VOMAGE_STATUS_TABLE": s["status_table"],
        "VOMAGE_RECORDS_TABLE": s["records_table"],
        **({"VOMAGE_USERS_TABLE": s["users_table"]} if "users_table" in s else {}),
        # The app's user pool and client, as the compute stack sets them on AWS.
        **({"VOMAGE_USER_POOL_ID": info["user_pool"]["pool_id"],
            "VOMAGE_USER_POOL_CLIENT_ID": info["user_pool"]["client_id"]} if "user_pool" in info else {}),
        "VOMAGE_UPLOADS_QUEUE_URL": info.get("queue_url", ""),
        # The roles the platform hands on, as on AWS: the live view signs streaming URLs as
        # the streaming role; Bedrock runs batch jobs as the batch service role.
        **{var: info["role_arns"][role] for var, role in ROLE_ARN_VARIABLES.items()
           if role in info.get("role_arns", {})},
        # A latency profile the stack was started under (vomage_dagster/resources/latency.py): every process
        # started with this environment applies it.
        **({"VOMAGE_LATENCY_PROFILE": info["latency_profile"]} if info.get("latency_profile") else {}),
    }


def read_info(settings: Settings) -> dict | None:
    path = state_dir(settings) / STATE_FILE
    return json.loads(path.read_text()) if path.exists() else None


def healthy(info: dict) -> bool:
    ports = info["ports"]
    return (
        all(processes.alive(pid) for pid in info["pids"].values())
        and http_ok(f"http://127.0.0.1:{ports['moto']}/moto-api/")
        and _redis_ok(ports["redis"])
        and ("broker" not in ports or _redis_ok(ports["broker"]))
        and http_ok(f"http://127.0.0.1:{ports['models']}/health")
    )


def _start(name: str, argv: list[str], env: dict[str, str], logs: Path, tied: bool) -> subprocess.Popen:
    return processes.start(argv, env=env, log=logs / f"{name}.log", tied=tied, grace=5)


def wait_healthy(what: str, check, proc: subprocess.Popen, timeout: float, logs: Path) -> None:
    """Poll `check` until it holds; fail with the tail of logs/<what>.log if `proc` exits
    or `timeout` passes first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        if proc.poll() is not None:
            break
        time.sleep(0.1)
    tail = (logs / f"{what}.log").read_text(errors="replace")[-2000:]
    error = PortTaken if proc.poll() is not None and any(m in tail for m in PORT_TAKEN) else StackError
    raise error(f"{what} did not become healthy within {timeout:.0f} s:\n{tail}")


def up(settings: Settings | None = None, tied: bool = False) -> dict:
    """Start (or reuse) the stack; return its info (ports, pids, env). `tied`: it stops when
    this process ends, however it ends (tests, the demo, benchmarks); otherwise it runs
    until `down` (`vomage stack up`). A port taken under a starting service is a race, not
    a fault: the stack is started again on fresh ports (`START_ATTEMPTS` in all)."""
    for _ in range(START_ATTEMPTS - 1):
        try:
            return _up(settings, tied)
        except PortTaken:
            pass
    return _up(settings, tied)


def _up(settings: Settings | None, tied: bool) -> dict:
    settings = settings or load_settings()
    if not settings.is_local:
        raise StackError("VOMAGE_ENV=aws: the local stack is not used; nothing to start")
    info = read_info(settings)
    if info and healthy(info):
        return info
    if info:
        down(settings)
    redis_server = shutil.which("redis-server")
    if not redis_server:
        raise StackError("redis-server is not installed (apt-get install redis-server)")

    root = state_dir(settings)
    # Moto starts empty, so Dagster's home starts empty with it: runs, partitions and
    # materializations whose S3 objects and status items are gone would otherwise stay
    # in the UI. The home lives as long as the stack (until the next fresh `up`).
    shutil.rmtree(root / HOME_DIR, ignore_errors=True)
    logs = root / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    (root / "redis").mkdir(exist_ok=True)
    (root / "broker").mkdir(exist_ok=True)
    ports = {"moto": free_port(), "redis": free_port(), "broker": free_port(), "models": free_port(),
             "streaming": free_port(), "traces": free_port()}
    info = {
        "state_dir": str(root),
        "ports": ports,
        "latency_profile": str(Path(os.environ["VOMAGE_LATENCY_PROFILE"]).resolve())
        if os.environ.get("VOMAGE_LATENCY_PROFILE") else "",
        "pids": {},
        "settings": {"region": settings.region, "bucket": settings.bucket,
                     "uploads_queue": settings.uploads_queue,
                     "dead_letter_queue": settings.dead_letter_queue,
                     "status_table": settings.status_table,
                     "records_table": settings.records_table,
                     "users_table": settings.users_table},
    }
    env = {**os.environ, **stack_env(info), **IAM_ENV}
    info["commands"] = {
        # moto with IAM checked as AWS checks it, from the first request (`local/aws/iam/`).
        "moto": [sys.executable, "-m", "vomage_dagster.local.aws.iam.server", "-H", "127.0.0.1",
                 "-p", str(ports["moto"])],
        "redis": [redis_server, "--bind", "127.0.0.1", "--port", str(ports["redis"]), "--save", "",
                  "--appendonly", "no", "--dir", str(root / "redis")],
        "broker": [redis_server, "--bind", "127.0.0.1", "--port", str(ports["broker"]), "--save", "",
                   "--appendonly", "no", "--dir", str(root / "broker")],
        "models": [sys.executable, "-m", "vomage_dagster.local.models.server",
                   "--port", str(ports["models"]), "--streaming-port", str(ports["streaming"])],
        # The trace collector (X-Ray's OTLP endpoint on AWS): every process exports its spans here.
        "traces": [sys.executable, "-m", "vomage_dagster.local.traces.receiver", "--port", str(ports["traces"]),
                   "--db", str(root / "traces.sqlite")],
    }
    info["tied"] = tied
    procs = {name: _start(name, argv, env, logs, tied) for name, argv in info["commands"].items()}
    info["pids"] = {name: p.pid for name, p in procs.items()}
    (root / STATE_FILE).write_text(json.dumps(info, indent=1))
    try:
        wait_healthy("moto", lambda: http_ok(f"http://127.0.0.1:{ports['moto']}/moto-api/"),
              procs["moto"], 30, logs)
        wait_healthy("redis", lambda: _redis_ok(ports["redis"]), procs["redis"], 10, logs)
        wait_healthy("broker", lambda: _redis_ok(ports["broker"]), procs["broker"], 10, logs)
        wait_healthy("traces", lambda: http_ok(f"http://127.0.0.1:{ports['traces']}/health"), procs["traces"], 30, logs)
        from vomage_dagster.local.aws.provision import provision
        from vomage_dagster.local.aws.user_pool import make_pool

        # Explicit endpoint (so no shared client is pointed elsewhere) and the stack's
        # dummy credentials for the duration of the calls.
        with environ_patched(DUMMY_CREDENTIALS):
            info.update(provision(settings, f"http://127.0.0.1:{ports['moto']}"))
            # The app's user pool (the template's, which moto's CloudFormation cannot make).
            info["user_pool"] = make_pool(settings.region, f"http://127.0.0.1:{ports['moto']}")
            info["role_arns"] = assume_roles(settings, root, f"http://127.0.0.1:{ports['moto']}")
        wait_healthy("models", lambda: http_ok(f"http://127.0.0.1:{ports['models']}/health"),
              procs["models"], 120, logs)
        from vomage_dagster.local.aws.provision import provision_vocabularies

        with environ_patched(DUMMY_CREDENTIALS):  # the deployer's part, as the stack's account root
            info["vocabularies"] = provision_vocabularies(settings, f"http://127.0.0.1:{ports['models']}")
    except BaseException:
        down(settings)
        raise
    (root / STATE_FILE).write_text(json.dumps(info, indent=1))
    return info


def assume_roles(settings: Settings, root: Path, endpoint: str) -> dict[str, str]:
    """Assume every template role for the processes that run as it (`roles.py`); each
    role's ARN by logical id."""
    from vomage_dagster.local.aws import roles
    from vomage_dagster.local.aws.provision import STACK_NAME
    from vomage_dagster.resources.aws import client

    found = roles.assume_all(client("cloudformation", settings.region, endpoint),
                             client("sts", settings.region, endpoint), STACK_NAME)
    roles.write(root, found)
    return {role: creds["arn"] for role, creds in found.items()}


def down(settings: Settings | None = None) -> list[str]:
    """Stop every process the stack started; return the names stopped."""
    settings = settings or load_settings()
    path = state_dir(settings) / STATE_FILE
    if not path.exists():
        return []
    info = json.loads(path.read_text())
    stopped = []
    pids = info.get("pids", {})
    running = set(processes.stop_all(list(pids.values()), grace=5))
    stopped += [name for name, pid in pids.items() if pid in running]
    path.unlink(missing_ok=True)
    return stopped


def stop_service(settings: Settings, name: str) -> None:
    """Stop one service of a running stack (fault tests: Redis going away)."""
    info = read_info(settings)
    if info is None:
        raise StackError("the stack is not running")
    processes.stop(info["pids"][name], grace=5)


def start_service(settings: Settings, name: str) -> None:
    """Start a stopped service again on its port, with a fresh state."""
    info = read_info(settings)
    if info is None:
        raise StackError("the stack is not running")
    root = Path(info["state_dir"])
    proc = _start(name, info["commands"][name], {**os.environ, **stack_env(info), **IAM_ENV}, root / "logs",
                  info.get("tied", False))
    info["pids"][name] = proc.pid
    (root / STATE_FILE).write_text(json.dumps(info, indent=1))
    if name in ("redis", "broker"):
        wait_healthy(name, lambda: _redis_ok(info["ports"][name]), proc, 10, root / "logs")


def export_lines(info: dict) -> str:
    return "\n".join(f"export {k}={v}" for k, v in stack_env(info).items())
