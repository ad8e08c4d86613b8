"""deploy/dagster.yaml: valid for Dagster's own instance schema, every class importable.

Nothing here connects to Postgres, ECS or S3: the file is checked the way the webserver
and daemon read it at start (`dagster_instance_config`), then each configurable class's
config against that class's own schema, with the `env:` values set to stand-ins.
"""

from __future__ import annotations

import importlib
import shutil
from pathlib import Path

import pytest

from vomage_dagster.jobs import BEDROCK_BATCH, QUOTA_TAG, TRANSCRIBE_BEDROCK, process_recording, reprocess_day

INSTANCE_YAML = Path(__file__).resolve().parents[1] / "deploy" / "dagster.yaml"

ENV = {
    "DAGSTER_PG_HOST": "db.example.internal",
    "DAGSTER_PG_PORT": "5432",
    "DAGSTER_PG_USER": "dagster",
    "DAGSTER_PG_PASSWORD": "not-a-secret",
    "DAGSTER_PG_DB": "dagster",
    "DAGSTER_PG_PASSWORD_SECRET_ARN": "arn:aws:secretsmanager:us-east-1:123456789012:secret:dagster-pg",
    "REDIS_PASSWORD_SECRET_REF": "arn:aws:secretsmanager:us-east-1:123456789012:secret:vomage-redis:token::",
    "VOMAGE_RUN_LOG_GROUP": "/vomage/dagster-runs",
    "VOMAGE_RUN_TASK_ROLE_ARN": "arn:aws:iam::123456789012:role/vomage-processing",
    "VOMAGE_TASK_EXECUTION_ROLE_ARN": "arn:aws:iam::123456789012:role/vomage-execution",
    "VOMAGE_BUCKET": "vomage-recordings",
    "AWS_DEFAULT_REGION": "us-east-1",
}


@pytest.fixture
def instance_config(tmp_path, monkeypatch) -> dict:
    from dagster._core.instance.config import dagster_instance_config

    for k, v in ENV.items():
        monkeypatch.setenv(k, v)
    shutil.copy(INSTANCE_YAML, tmp_path / "dagster.yaml")
    config, custom_class = dagster_instance_config(str(tmp_path))
    assert custom_class is None
    return dict(config)


def _validated(section: dict) -> dict:
    """The class named by a module/class/config section, its config checked and resolved.

    Through `ConfigurableClassData`, as the instance loads it (it also maps the public
    `dagster.core` module names to `dagster._core`).
    """
    import yaml
    from dagster._config import process_config, resolve_to_config_type
    from dagster._serdes.config_class import ConfigurableClassData

    data = ConfigurableClassData(section["module"], section["class"],
                                 yaml.dump(section.get("config") or {}))
    cls = getattr(importlib.import_module(data.module_name), data.class_name)
    result = process_config(resolve_to_config_type(cls.config_type()), data.config_dict)
    assert result.success, [e.message for e in result.errors]
    return result.value


def test_the_instance_schema_accepts_it(instance_config):
    for key in ("storage", "run_coordinator", "run_launcher", "compute_logs", "run_retries",
                "run_monitoring"):
        assert key in instance_config


def test_postgres_storage_reads_the_environment(instance_config):
    from dagster._config import process_config, resolve_to_config_type
    from dagster._core.storage.config import pg_config

    importlib.import_module("dagster_postgres")
    storage = instance_config["storage"]["custom"]
    assert (storage["module"], storage["class"]) == ("vomage_dagster.runtime.storage", "PooledPostgresStorage")
    db = storage["config"]["postgres_db"]
    assert db["password"] == {"env": "DAGSTER_PG_PASSWORD"}  # never a literal secret
    resolved = process_config(resolve_to_config_type(pg_config()), storage["config"])
    assert resolved.success, [e.message for e in resolved.errors]
    assert resolved.value["postgres_db"]["hostname"] == ENV["DAGSTER_PG_HOST"]
    assert resolved.value["postgres_db"]["port"] == 5432


def test_queue_limits_count_the_tags_the_jobs_set(instance_config):
    coordinator = _validated(instance_config["run_coordinator"])
    assert coordinator["max_concurrent_runs"] > 0
    limits = {(lim["key"], lim.get("value")): lim["limit"] for lim in coordinator["tag_concurrency_limits"]}
    # run_tags: what the sensor daemon and the launchpad put on every run of the job
    assert process_recording.run_tags[QUOTA_TAG] == TRANSCRIBE_BEDROCK
    assert reprocess_day.run_tags[QUOTA_TAG] == BEDROCK_BATCH
    assert 0 < limits[(QUOTA_TAG, TRANSCRIBE_BEDROCK)] < coordinator["max_concurrent_runs"]
    assert limits[(QUOTA_TAG, BEDROCK_BATCH)] == 1


def test_the_warm_run_launcher_takes_its_broker_from_the_settings(instance_config, monkeypatch):
    """Runs go to the run workers over ElastiCache (TLS, the AUTH token from the
    environment's secret), with the settings the workers read too."""
    from dagster._serdes.config_class import ConfigurableClassData

    section = instance_config["run_launcher"]
    assert (section["module"], section["class"]) == ("vomage_dagster.runtime.run_launcher", "WarmRunLauncher")
    assert not section.get("config")  # nothing to disagree with the workers' configuration
    monkeypatch.delenv("VOMAGE_CELERY_BROKER", raising=False)  # the local stack sets one
    monkeypatch.setenv("REDIS_URL", "rediss://cache.example.internal:6379/0")
    monkeypatch.setenv("REDIS_PASSWORD", "s3cret token")
    launcher = ConfigurableClassData(section["module"], section["class"], "{}\n").rehydrate()
    assert launcher.broker == "rediss://:s3cret%20token@cache.example.internal:6379/1" == launcher.backend
    assert launcher.default_queue == "vomage-runs"
    assert launcher.config_source["broker_use_ssl"]["ssl_cert_reqs"] == 2  # CERT_REQUIRED


def test_no_compute_log_capture_on_the_hot_path(instance_config):
    assert instance_config["compute_logs"]["class"] == "NoOpComputeLogManager"


def test_run_retries_and_monitoring(instance_config):
    retries = instance_config["run_retries"]
    assert retries["enabled"] is True and retries["max_retries"] >= 1
    assert retries["retry_on_asset_or_op_failure"] is False
    assert instance_config["run_monitoring"]["enabled"] is True


def test_each_configured_class_constructs_offline(instance_config, monkeypatch):
    """The instance would build these at start; construction makes no AWS call (the
    endpoint below answers nothing), so this runs anywhere."""
    import yaml
    from dagster._serdes.config_class import ConfigurableClassData

    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    built = {}
    for key in ("run_coordinator", "run_launcher", "compute_logs"):
        section = instance_config[key]
        data = ConfigurableClassData(section["module"], section["class"], yaml.dump(section.get("config") or {}))
        built[key] = type(data.rehydrate()).__name__
    assert built == {"run_coordinator": "QueuedRunCoordinator", "run_launcher": "WarmRunLauncher",
                     "compute_logs": "NoOpComputeLogManager"}


def test_every_job_names_the_run_queue_of_its_role():
    """Runs go to the run workers of their job's IAM role (docs/deploy.md): every job
    carries a queue tag, and the recordings' queue is the launcher's default."""
    from vomage_dagster.jobs import JOBS, QUEUE_TAG
    from vomage_dagster.runtime.execution import RUN_QUEUE, RUN_QUEUES

    queues = {job.name: (job.tags or {}).get(QUEUE_TAG) for job in JOBS}
    assert set(queues.values()) == set(RUN_QUEUES), queues
    assert queues["process_recording"] == queues["check_models"] == RUN_QUEUE
    assert queues["export_metrics"] == "vomage-metrics"
    assert {queues[j] for j in ("daily_tables", "reprocess_day", "warm_cache", "prune_recording_partitions")} == {
        "vomage-batch"}
