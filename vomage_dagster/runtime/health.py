"""Each service's health check, as its container (and the smoke check) asks it.

One question per service, answered from inside its task: the code server's gRPC ping,
the webserver's `/server_info`, the live view's `/health`, the daemon's own liveness
check (its heartbeats in the instance), the ingest service's heartbeat file (touched
after every pass over the queue), a run worker's answer to a Celery ping.
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

from vomage_dagster.runtime import services

INGEST_STALE_AFTER_S = 120.0  # a pass is a long poll (≤ 20 s) plus the launches it makes


def grpc_serving(port: int, host: str = "127.0.0.1", timeout_s: float = 2.0) -> bool:
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    with grpc.insecure_channel(f"{host}:{port}") as channel:
        try:
            reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=timeout_s)
        except grpc.RpcError:
            return False
    return reply.status == health_pb2.HealthCheckResponse.SERVING


def http_ok(url: str, timeout_s: float = 2.0) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as resp:
            return resp.status == 200
    except (OSError, ValueError):
        return False


def fresh(path: Path, within_s: float = INGEST_STALE_AFTER_S) -> bool:
    try:
        return time.time() - path.stat().st_mtime < within_s
    except OSError:
        return False


def daemon_alive(dagster_home: Path | None = None) -> bool:
    """`dagster-daemon liveness-check`: the daemon's heartbeats in the instance are recent."""
    env = {**os.environ, **({"DAGSTER_HOME": str(dagster_home)} if dagster_home else {})}
    return subprocess.run([services.bin_path("dagster-daemon"), "liveness-check"], capture_output=True,
                          timeout=60, env=env).returncode == 0


def celery_answers(broker: str, node: str, timeout_s: float = 2.0) -> bool:
    from celery import Celery

    app = Celery(broker=broker)
    try:
        return bool(app.control.ping(destination=[node], timeout=timeout_s))
    except Exception:  # noqa: BLE001 - an unreachable broker is an unhealthy worker
        return False
    finally:
        app.close()


def healthy(name: str, runtime_dir: Path, *, queue: str | None = None, port: int | None = None) -> bool:
    port = port or services.PORTS.get(name)
    if name == services.CODE_SERVER:
        return grpc_serving(port)
    if name == services.WEBSERVER:
        return http_ok(f"http://127.0.0.1:{port}/server_info")
    if name == services.LIVE_VIEW:
        return http_ok(f"http://127.0.0.1:{port}/health")
    if name == services.INGEST:
        return fresh(runtime_dir / services.HEARTBEAT_FILE)
    if name == services.DAEMON:
        return daemon_alive()
    if name == services.RUN_WORKER:
        from vomage_dagster.settings import load_settings

        return celery_answers(load_settings().celery_broker_url, f"{queue}@{socket.gethostname()}")
    raise ValueError(f"unknown service {name!r}")
