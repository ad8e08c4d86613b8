"""The local deployment's services asked as their containers ask them (`vomage deploy
check --local-home`): the processes `daemon.py` started, from its `services.json`."""

from __future__ import annotations

import json
from pathlib import Path

from vomage_dagster.operations.deploy_check import Probe, url_answers
from vomage_dagster.runtime import health, services
from vomage_dagster.settings import load_settings


def local_services(home: Path) -> list[Probe]:
    """The local deployment's processes (its `services.json`), asked as their containers ask."""
    described = home / "services.json"
    if not described.exists():
        return [Probe("services", False, f"no local deployment in {home} (no services.json)")]
    found = json.loads(described.read_text())
    probes = [Probe(f"service {services.CODE_SERVER}", health.grpc_serving(found["code-server"]["port"]),
                    f"gRPC ping on port {found['code-server']['port']}")]
    probes.append(Probe(f"service {services.DAEMON}", health.daemon_alive(home), "liveness check"))
    beat = Path(found["ingest"]["heartbeat"])
    probes.append(Probe(f"service {services.INGEST}", health.fresh(beat), "heartbeat within "
                        f"{health.INGEST_STALE_AFTER_S:.0f} s"))
    if "webserver" in found:
        probes.append(url_answers(f"service {services.WEBSERVER}",
                                  f"http://127.0.0.1:{found['webserver']['port']}/server_info"))
    broker = load_settings().celery_broker_url
    for queue, node in found.get("run-worker", {}).items():
        probes.append(Probe(f"service run-worker {queue}", health.celery_answers(broker, node), f"ping {node}"))
    return probes
