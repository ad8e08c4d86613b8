"""`vomage deploy check`: the services' health on ECS (botocore's Stubber), and the whole
check against the local deployment (services, models, one recording end to end)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import boto3
import pytest
from botocore.stub import Stubber

from vomage_dagster.operations import deploy_check

CLUSTER = "vomage"


def _service(name: str, desired: int, running: int, rollouts: list[str]) -> dict:
    return {"serviceName": name, "desiredCount": desired, "runningCount": running,
            "deployments": [{"rolloutState": r} for r in rollouts]}


def _task(tid: str, health: str) -> dict:
    return {"taskArn": f"arn:aws:ecs:us-east-1:123456789012:task/{CLUSTER}/{tid}", "healthStatus": health}


def test_ecs_services_are_healthy_only_when_running_rolled_out_and_every_task_healthy():
    ecs = boto3.client("ecs", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    arns = [f"arn:aws:ecs:us-east-1:123456789012:service/{CLUSTER}/{n}"
            for n in ("daemon", "ingest", "live-view", "web")]
    with Stubber(ecs) as stub:
        stub.add_response("list_services", {"serviceArns": arns}, {"cluster": CLUSTER})
        stub.add_response("describe_services", {"services": [
            _service("daemon", 1, 1, ["COMPLETED"]),
            _service("ingest", 2, 1, ["COMPLETED"]),
            _service("live-view", 2, 2, ["COMPLETED"]),
            _service("web", 1, 1, ["COMPLETED", "IN_PROGRESS"])]}, {"cluster": CLUSTER, "services": arns})
        for name, tasks in (("daemon", [_task("a", "HEALTHY")]), ("ingest", [_task("b", "HEALTHY")]),
                            ("live-view", [_task("c", "HEALTHY"), _task("d", "UNHEALTHY")]),
                            ("web", [_task("e", "HEALTHY")])):
            stub.add_response("list_tasks", {"taskArns": [t["taskArn"] for t in tasks]},
                              {"cluster": CLUSTER, "serviceName": name, "desiredStatus": "RUNNING"})
            stub.add_response("describe_tasks", {"tasks": tasks},
                              {"cluster": CLUSTER, "tasks": [t["taskArn"] for t in tasks]})
        probes = {p.what: p for p in deploy_check.ecs_services(ecs, CLUSTER)}
    assert probes["service daemon"].ok
    assert not probes["service ingest"].ok and "1 of 2 tasks running" in probes["service ingest"].detail
    assert not probes["service live-view"].ok and "not HEALTHY: d" in probes["service live-view"].detail
    assert not probes["service web"].ok and "IN_PROGRESS" in probes["service web"].detail


def test_an_empty_cluster_fails_the_check():
    ecs = boto3.client("ecs", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    with Stubber(ecs) as stub:
        stub.add_response("list_services", {"serviceArns": []}, {"cluster": CLUSTER})
        (probe,) = deploy_check.ecs_services(ecs, CLUSTER)
    assert not probe.ok and "no service" in probe.detail


@pytest.mark.slow
def test_the_check_passes_on_the_local_deployment_and_fails_on_a_retired_model(private_stack):
    from vomage_dagster.local.aws.stack import free_port
    from vomage_dagster.local.deployment.daemon import running_daemon

    state = Path(private_stack["state_dir"])
    vomage = str(Path(sys.executable).parent / "vomage")
    with running_daemon(state, {}, webserver_port=free_port()) as daemon:
        done = subprocess.run([vomage, "deploy", "check", "--local-home", str(daemon.home), "--json"],
                              capture_output=True, text=True, timeout=600, env=dict(os.environ))
        report = {p["what"]: p for p in json.loads(done.stdout)}
        print(done.stdout)
        assert done.returncode == 0, done.stdout + done.stderr[-2000:]
        assert {"service code-server", "service daemon", "service ingest", "service webserver",
                "service run-worker vomage-runs", "model analysis", "model image", "recording end to end",
                "record and image"} <= set(report)
        assert all(p["ok"] for p in report.values())
        # The check's recording is erased afterwards: nothing of its user is left.
        from vomage_dagster.resources.build import build_resources
        from vomage_dagster.settings import load_settings

        assert not list(build_resources(load_settings())["store"].list(f"uploads/{deploy_check.CHECK_USER}/"))
        retired = subprocess.run([vomage, "deploy", "check", "--local-home", str(daemon.home), "--json",
                                  "--sample", "missing-sample"], capture_output=True, text=True, timeout=600,
                                 env={**os.environ, "VOMAGE_IMAGE_MODEL_ID": "amazon.nova-canvas-v1:0"})
        report = {p["what"]: p for p in json.loads(retired.stdout)}
        assert retired.returncode == 1
        assert not report["model image"]["ok"] and "LEGACY" in report["model image"]["detail"]
        assert not report["recording end to end"]["ok"]
