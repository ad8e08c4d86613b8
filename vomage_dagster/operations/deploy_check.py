"""The smoke check of a deployed stack (`vomage deploy check`): is every service healthy,
is every configured model ACTIVE, is every custom vocabulary READY, and does one bundled
recording go end to end?

On AWS the services are the compute stack's ECS services: each must run as many tasks
as it wants, on one completed deployment, every task's container health check HEALTHY,
and the live view must answer `/health` through its public load balancer. On the local
deployment (`--local-home`) the same health checks are asked of each process directly.
The recording is uploaded as the app uploads one, followed to `complete`, its record and
image read back, then erased (it is the check's own user's), whatever the outcome.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from vomage_dagster.runtime import health
from vomage_dagster.settings import Settings

CHECK_USER = "deploy-check"


@dataclass(frozen=True)
class Probe:
    what: str
    ok: bool
    detail: str

    def as_dict(self) -> dict:
        return asdict(self)

    def line(self) -> str:
        return f"{'ok  ' if self.ok else 'FAIL'} {self.what:<28} {self.detail}"


def stack_outputs(cfn: Any, stack: str) -> dict[str, str]:
    described = cfn.describe_stacks(StackName=stack)["Stacks"][0]
    return {o["OutputKey"]: o["OutputValue"] for o in described.get("Outputs", [])}


def ecs_services(ecs: Any, cluster: str) -> list[Probe]:
    """Each service of the cluster: desired tasks running, rolled out, every task HEALTHY."""
    arns = [arn for page in ecs.get_paginator("list_services").paginate(cluster=cluster)
            for arn in page["serviceArns"]]
    if not arns:
        return [Probe("services", False, f"no service in cluster {cluster}")]
    probes = []
    for start in range(0, len(arns), 10):  # DescribeServices takes ten at a time
        for svc in ecs.describe_services(cluster=cluster, services=arns[start:start + 10])["services"]:
            probes.append(_ecs_service(ecs, cluster, svc))
    return probes


def _ecs_service(ecs: Any, cluster: str, svc: dict) -> Probe:
    name, desired, running = svc["serviceName"], svc["desiredCount"], svc["runningCount"]
    problems = []
    if desired < 1 or running < desired:
        problems.append(f"{running} of {desired} tasks running")
    rollouts = [d.get("rolloutState", "COMPLETED") for d in svc.get("deployments", [])]
    if len(rollouts) != 1 or rollouts[0] != "COMPLETED":
        problems.append(f"deployments {', '.join(rollouts) or 'none'}")
    task_arns = ecs.list_tasks(cluster=cluster, serviceName=name, desiredStatus="RUNNING")["taskArns"]
    tasks = ecs.describe_tasks(cluster=cluster, tasks=task_arns)["tasks"] if task_arns else []
    unhealthy = [t["taskArn"].rsplit("/", 1)[-1] for t in tasks if t.get("healthStatus") != "HEALTHY"]
    if unhealthy:
        problems.append(f"not HEALTHY: {', '.join(unhealthy)}")
    return Probe(f"service {name}", not problems, "; ".join(problems) or f"{running} task(s) healthy")


def url_answers(what: str, url: str) -> Probe:
    ok = health.http_ok(url, timeout_s=10)
    return Probe(what, ok, f"{url}: {'200' if ok else 'no 200'}")


def models(catalog: Any, settings: Settings) -> list[Probe]:
    return [Probe(f"model {v.role}", v.ok, v.line()[5:]) for v in catalog.check(settings.configured_models())]


def vocabularies(transcribe: Any, names: dict[str, str]) -> list[Probe]:
    """Each language's custom vocabulary READY and in its language: a job or stream that
    names one that is missing or not READY is refused."""
    probes = []
    for language, name in names.items():
        try:
            found = transcribe.get_vocabulary(VocabularyName=name)
        except Exception as exc:  # missing, or not ours to read: either way the check fails
            probes.append(Probe(f"vocabulary {language}", False, f"{name}: {type(exc).__name__}: {exc}"[:300]))
            continue
        state, lang = found.get("VocabularyState"), found.get("LanguageCode")
        ok = state == "READY" and lang == language
        reason = f" ({found['FailureReason']})" if found.get("FailureReason") else ""
        probes.append(Probe(f"vocabulary {language}", ok, f"{name}: {state}, {lang}{reason}"))
    return probes


def one_recording(resources: dict, upload: Callable[[Path, str], str], sample: Path,
                  timeout_s: float) -> list[Probe]:
    """Upload `sample` as the check's user (`upload(path, user)`: as the app uploads, to
    the bucket's uploads/), follow it to a final stage, read back its record and image;
    then erase the user's data."""
    from vomage_dagster.domain.lifecycle import COMPLETE, FINAL
    from vomage_dagster.operations.erasure import erase_user

    tracker, records, store = resources["tracker"], resources["records"], resources["store"]
    started = time.monotonic()
    rid = upload(sample, CHECK_USER)
    try:
        item: dict = {}
        while time.monotonic() - started < timeout_s:
            item = tracker.status.get(rid) or {}
            if item.get("stage") in FINAL:
                break
            time.sleep(1.0)
        took = time.monotonic() - started
        if item.get("stage") != COMPLETE:
            reason = item.get("error", {}).get("code") if item.get("stage") in FINAL else \
                f"still {item.get('stage', 'unregistered')} after {timeout_s:.0f} s"
            return [Probe("recording end to end", False, f"{sample.name} ({rid}): {reason}")]
        record = records.get(rid) or {}
        image_key = record.get("image_key")
        probes = [Probe("recording end to end", True, f"{sample.name} complete in {took:.1f} s, "
                        f"mood {record.get('mood', {}).get('primary_emotion', '?')}")]
        has_image = bool(image_key) and store.exists(image_key)
        probes.append(Probe("record and image", bool(record) and has_image,
                            f"record {'found' if record else 'missing'}, image "
                            f"{'found' if has_image else 'missing'}"))
        return probes
    finally:
        erase_user(CHECK_USER, store, records, tracker.status, resources["cache"], resources["queue"])
