"""The production services' commands (`vomage service NAME`): what each runs, what each
needs from its environment, and a service started without it stops at once, naming it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from vomage_dagster.runtime import services

ROOT = Path(__file__).resolve().parents[1]
VOMAGE = str(Path(sys.executable).parent / "vomage")


def complete_env(home: Path, **extra: str) -> dict[str, str]:
    """Every setting any service needs, against a Dagster home with the production instance."""
    (home / "dagster.yaml").write_text((ROOT / "deploy" / "dagster.yaml").read_text())
    names = {n for name in services.SERVICES for n in services.required(name, "vomage-batch")}
    names |= set(services.instance_variables((ROOT / "deploy" / "dagster.yaml").read_text()))
    env = {n: f"value-of-{n.lower()}" for n in names}
    return {**env, "DAGSTER_HOME": str(home), "VOMAGE_ENV": "aws", "AWS_DEFAULT_REGION": "us-east-1",
            "REDIS_URL": "rediss://cache.example:6379/0", "VOMAGE_CELERY_BROKER": "rediss://broker.example:6379/0",
            "VOMAGE_CODE_SERVER_HOST": "code-server.vomage.local", "DAGSTER_PG_PORT": "5432", **extra}


def test_the_production_instance_reads_postgres_from_the_environment():
    found = services.instance_variables((ROOT / "deploy" / "dagster.yaml").read_text())
    assert found == ["DAGSTER_PG_HOST", "DAGSTER_PG_PORT", "DAGSTER_PG_USER", "DAGSTER_PG_PASSWORD", "DAGSTER_PG_DB"]
    assert services.instance_variables("storage:\n  sqlite:\n    base_dir: /x\n") == []


@pytest.mark.parametrize("name", services.SERVICES)
def test_each_service_names_every_setting_it_lacks(name, tmp_path):
    queue = "vomage-batch" if name == services.RUN_WORKER else None
    env = complete_env(tmp_path)
    assert services.missing(name, env, queue) == []
    for dropped in services.required(name, queue):
        if dropped == "DAGSTER_HOME":
            continue
        lacking = services.missing(name, {k: v for k, v in env.items() if k != dropped}, queue)
        assert lacking == [dropped], (name, dropped)
    if "DAGSTER_HOME" in services.required(name, queue):
        (tmp_path / "dagster.yaml").unlink()
        assert services.missing(name, env, queue)[0].startswith("DAGSTER_HOME")


def test_the_region_may_come_as_aws_region(tmp_path):
    env = complete_env(tmp_path)
    env["AWS_REGION"] = env.pop("AWS_DEFAULT_REGION")
    assert services.missing(services.LIVE_VIEW, env) == []


def test_the_commands_each_service_runs(tmp_path):
    env = complete_env(tmp_path)
    run = tmp_path / "run"
    code = services.command(services.CODE_SERVER, env, run)
    assert code.argv[1:] == ["code-server", "start", "-h", "0.0.0.0", "-p", "4000", "-m",
                             "vomage_dagster.definitions", "--location-name", services.LOCATION]
    web = services.command(services.WEBSERVER, env, run)
    assert web.argv[1:5] == ["-h", "0.0.0.0", "-p", "3000"]
    workspace = yaml.safe_load(web.files[run / "workspace.yaml"])
    assert workspace == {"load_from": [{"grpc_server": {"host": "code-server.vomage.local", "port": 4000,
                                                        "location_name": services.LOCATION}}]}
    ingest = services.command(services.INGEST, env, run)
    assert ingest.argv[1:] == ["ingest", "--workspace", str(run / "workspace.yaml"),
                               "--heartbeat", str(run / services.HEARTBEAT_FILE)]
    assert services.command(services.DAEMON, env, run).argv[1:3] == ["run", "-w"]
    live = services.command(services.LIVE_VIEW, env, run, port=8080)
    assert live.argv[1:] == ["app", "serve", "--host", "0.0.0.0", "--port", "8080"]
    worker = services.command(services.RUN_WORKER, env, run, queue="vomage-batch", concurrency=3)
    assert worker.argv[worker.argv.index("-q") + 1] == "vomage-batch"
    # dagster-celery appends @%h itself: the node is vomage-batch@<host>, what the health check pings.
    from dagster_celery.cli import get_worker_name

    assert get_worker_name(worker.argv[worker.argv.index("-n") + 1]) == "vomage-batch@%h"
    assert worker.argv[-4:-2] == ["--concurrency", "3"]
    config = yaml.safe_load(worker.files[run / "run-workers.yaml"])["execution"]["config"]
    assert config["broker"] == "rediss://broker.example:6379/0"  # its own Redis, not the cache's


def test_a_run_worker_needs_a_known_queue(tmp_path):
    with pytest.raises(ValueError, match="--queue"):
        services.command(services.RUN_WORKER, complete_env(tmp_path), tmp_path, queue=None)


def test_start_files_are_private(tmp_path):
    env = complete_env(tmp_path)
    worker = services.command(services.RUN_WORKER, env, tmp_path / "run", queue="vomage-runs")
    services.write_files(worker)
    services.write_files(worker)  # a restart writes them again
    (path,) = worker.files
    assert oct(path.stat().st_mode & 0o777) == "0o600" and "broker" in path.read_text()


@pytest.mark.parametrize("name,dropped", [(services.INGEST, "VOMAGE_CODE_SERVER_HOST"),
                                          (services.LIVE_VIEW, "VOMAGE_USER_POOL_ID"),
                                          (services.RUN_WORKER, "DAGSTER_PG_PASSWORD")])
def test_a_service_started_without_a_setting_exits_at_once_naming_it(name, dropped, tmp_path):
    env = {k: v for k, v in complete_env(tmp_path).items() if k != dropped}
    extra = ["--queue", "vomage-runs"] if name == services.RUN_WORKER else []
    done = subprocess.run([VOMAGE, "service", name, *extra, "--runtime-dir", str(tmp_path / "run")],
                          env={**env, "PATH": os.environ["PATH"]}, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert dropped in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "run").exists()  # nothing written, nothing started


def test_iam_refusals_are_told_apart_from_other_errors():
    from botocore.exceptions import ClientError

    from vomage_dagster.resources.aws import refusal

    denied = ClientError({"Error": {"Code": "AccessDenied", "Message": "User: arn:aws:sts::1:assumed-role/R/s "
                                    "is not authorized to perform: sqs:GetQueueUrl"}}, "GetQueueUrl")
    assert refusal(denied) == ("GetQueueUrl: User: arn:aws:sts::1:assumed-role/R/s is not authorized to "
                               "perform: sqs:GetQueueUrl")
    assert refusal(ClientError({"Error": {"Code": "ThrottlingException"}}, "Query")) is None
    assert refusal(ValueError("x")) is None
