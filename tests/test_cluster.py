"""The multi-process cluster (`vomage cluster up`): Postgres, the code location as a
gRPC server, webserver, daemon and dagster-celery workers executing the steps.

    ./scripts/test.sh -k cluster -s
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest
import yaml
from dagster import DagsterEventType, DagsterInstance, DagsterRunStatus, RunsFilter

from vomage_dagster import cli
from vomage_dagster.execution import celery_config
from vomage_dagster.local import cluster, stack
from vomage_dagster.local.demo import SAMPLES_DIR, Upload, sample_manifest, upload_file, wait_until_final
from vomage_dagster.local.stack import _alive
from vomage_dagster.settings import load_settings

PRODUCTION = yaml.safe_load(cluster.PRODUCTION_INSTANCE.read_text())


def test_cluster_instance_is_the_production_one_without_its_aws_parts(tmp_path, monkeypatch):
    from dagster._core.instance.config import dagster_instance_config

    config = cluster.instance_config(PRODUCTION, max_concurrent_runs=3)
    assert "run_launcher" not in config and "compute_logs" not in config
    db = config["storage"]["postgres"]["postgres_db"]
    assert db == {k: v for k, v in PRODUCTION["storage"]["postgres"]["postgres_db"].items() if k != "params"}
    assert config["run_retries"] == PRODUCTION["run_retries"]
    queue = config["run_coordinator"]["config"]
    assert queue["max_concurrent_runs"] == 3
    assert queue["tag_concurrency_limits"] == PRODUCTION["run_coordinator"]["config"]["tag_concurrency_limits"]
    for k in ("DAGSTER_PG_HOST", "DAGSTER_PG_PORT", "DAGSTER_PG_USER", "DAGSTER_PG_PASSWORD", "DAGSTER_PG_DB"):
        monkeypatch.setenv(k, "5432" if k.endswith("PORT") else "x")
    (tmp_path / "dagster.yaml").write_text(yaml.safe_dump(config))
    dagster_instance_config(str(tmp_path))  # raises on anything Dagster's schema rejects


def test_celery_config_is_valid_for_the_executor_and_acks_late():
    from dagster._config import process_config
    from dagster_celery import celery_executor

    settings = load_settings({"REDIS_URL": "redis://127.0.0.1:6390/0", "VOMAGE_CELERY_VISIBILITY_TIMEOUT": "45"})
    config = celery_config(settings)
    assert process_config(celery_executor.config_schema.config_type, config).success
    assert config["broker"] == "redis://127.0.0.1:6390/1"  # the cache keeps database 0
    source = config["config_source"]
    assert source["task_acks_late"] and source["worker_prefetch_multiplier"] == 1
    assert source["broker_transport_options"]["visibility_timeout"] == 45


def _samples(n: int) -> list[Path]:
    files = [SAMPLES_DIR / m["file"] for m in sample_manifest()]
    return [files[i % len(files)] for i in range(n)]


def _upload(settings, paths: list[Path], user: str) -> list[Upload]:
    return [Upload(upload_file(settings, p, user), p, time.time()) for p in paths]


def _instance(info: dict, monkeypatch) -> DagsterInstance:
    for k, v in info["env"].items():
        monkeypatch.setenv(k, v)
    return DagsterInstance.from_config(info["home"])


def _finished_runs(instance: DagsterInstance, timeout_s: float = 60) -> list:
    """The process_recording runs, once none is still going (a run ends a moment after
    its last recording is complete)."""
    deadline = time.monotonic() + timeout_s
    while True:
        runs = instance.get_runs(RunsFilter(job_name="process_recording"))
        if all(r.is_finished for r in runs) or time.monotonic() > deadline:
            return runs
        time.sleep(0.5)


def _celery_steps(instance: DagsterInstance, run_id: str) -> list[tuple[str, str]]:
    """(step key, worker name) of every 'Executing steps … in celery worker' event."""
    found = []
    for entry in instance.all_logs(run_id, of_type=DagsterEventType.ENGINE_EVENT):
        metadata = entry.dagster_event.engine_event_data.metadata
        if "Celery worker" in metadata:
            found.append((entry.step_key, metadata["Celery worker"].value))
    return found


@pytest.mark.slow
def test_cluster_runs_steps_on_celery_workers_with_postgres(private_stack, monkeypatch):
    """`vomage cluster up` on the running stack, four uploads, `vomage cluster down`."""
    settings = load_settings()
    state = Path(private_stack["state_dir"])
    assert cli.main(["cluster", "up", "--workers", "2", "--ingest", "sqs"]) == 0
    try:
        info = cluster.read_info(state)
        assert set(info["pids"]) == {"postgres", "code-server", "webserver", "daemon",
                                     "worker-0", "worker-1"}
        assert info["env"]["DAGSTER_PG_PORT"] == str(info["ports"]["postgres"])
        assert not info["started_stack"]
        uploads = _upload(settings, _samples(4), "cluster")
        assert wait_until_final(settings, uploads, timeout_s=300)
        assert all(u.status["stage"] == "complete" for u in uploads), [u.status for u in uploads]
        with _instance(info, monkeypatch) as instance:
            assert type(instance.run_storage).__name__ == "PostgresRunStorage"
            assert type(instance.event_log_storage).__name__ == "PostgresEventLogStorage"
            runs = _finished_runs(instance)
            assert runs and all(r.status == DagsterRunStatus.SUCCESS for r in runs)
            steps = [s for r in runs for s in _celery_steps(instance, r.run_id)]
        # Every step of every run went through a worker; the parallel branches
        # (transcript, recording_context) let both workers take part.
        assert len(steps) == 6 * len(runs)
        assert {w.split("@")[0] for _, w in steps} == {"vomage-0", "vomage-1"}
    finally:
        assert cli.main(["cluster", "down"]) == 0
    assert not any(_alive(pid) for pid in info["pids"].values())
    assert not Path(info["postgres_root"]).exists()  # the database is thrown away
    assert cluster.read_info(state) is None
    assert stack.healthy(private_stack)  # it was running before: `down` leaves it running


def _step_in_progress_on(instance: DagsterInstance, worker: str) -> tuple[str, str] | None:
    """(run id, step key) of a step `worker` has started and not finished, if any."""
    for run in instance.get_runs(RunsFilter(job_name="process_recording", statuses=[DagsterRunStatus.STARTED])):
        finished = {e.step_key for e in instance.all_logs(run.run_id, of_type={
            DagsterEventType.STEP_SUCCESS, DagsterEventType.STEP_FAILURE})}
        for step, who in _celery_steps(instance, run.run_id):
            if who.startswith(worker + "@") and step not in finished:
                return run.run_id, step
    return None


def _wait_for_step_on(instance: DagsterInstance, worker: str, timeout_s: float = 180) -> tuple[str, str]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if found := _step_in_progress_on(instance, worker):
            return found
        time.sleep(0.2)
    raise AssertionError(f"{worker} never ran a step")


@pytest.mark.slow
def test_a_worker_killed_mid_burst_loses_no_recording(private_stack, monkeypatch):
    """SIGKILL a worker (and its pool process) while it executes a step: the step's task
    was not acknowledged, so once the visibility timeout has passed the broker hands it to
    the other worker; the run carries on and every recording completes."""
    settings = load_settings()
    state = Path(private_stack["state_dir"])
    env = {"VOMAGE_INGEST": "sqs", "VOMAGE_MAX_BATCH": "3", "VOMAGE_CELERY_VISIBILITY_TIMEOUT": "40"}
    with cluster.running_cluster(state, workers=2, extra_env=env) as info:
        uploads = _upload(settings, _samples(8), "killed")
        with _instance(info, monkeypatch) as instance:
            victim = _wait_for_step_on(instance, "vomage-0")
            cluster.kill_worker(state, 0)
            killed_at = time.monotonic()
            assert wait_until_final(settings, uploads, timeout_s=600)
            recovered_after = time.monotonic() - killed_at
            _finished_runs(instance)
            run_id, step = victim
            again = [w for s, w in _celery_steps(instance, run_id) if s == step]
            run = instance.get_run_by_id(run_id)
        print(f"\nkilled worker 0 in {step} of run {run_id[:8]}; all {len(uploads)} final "
              f"{recovered_after:.0f} s later; {step} executed by {again}")
    assert all(u.status["stage"] == "complete" for u in uploads), [u.status for u in uploads]
    assert again[0].startswith("vomage-0@") and any(w.startswith("vomage-1@") for w in again[1:])
    assert run.status == DagsterRunStatus.SUCCESS


def _pool_process(state: Path, index: int) -> int:
    """The pid of worker `index`'s pool process, the one that executes the steps: the
    worker's process group holds the launcher, its child the Celery worker, the worker's
    child the pool process (and that one's own children, Dagster's log capture)."""
    leader = cluster.read_info(state)["pids"][f"worker-{index}"]
    group = {}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == leader:
            group[int(pid)] = int(fields[1])
    celery = [pid for pid, parent in group.items() if parent == leader]
    pool = [pid for pid, parent in group.items() if celery and parent == celery[0]]
    assert len(celery) == 1 and len(pool) == 1, group
    return pool[0]


@pytest.mark.slow
def test_a_pool_process_killed_mid_step_fails_the_run_and_its_retry_completes(private_stack, monkeypatch):
    """SIGKILL only the pool process executing a step: Celery fails the task (late acks,
    no requeue), so the run fails; the instance retries it (run retries, 2) and the
    failure sensor leaves its recordings alone until then. Every recording completes."""
    settings = load_settings()
    state = Path(private_stack["state_dir"])
    env = {"VOMAGE_INGEST": "sqs", "VOMAGE_MAX_BATCH": "3"}
    with cluster.running_cluster(state, workers=2, extra_env=env) as info:
        uploads = _upload(settings, _samples(6), "pool")
        with _instance(info, monkeypatch) as instance:
            victim = _wait_for_step_on(instance, "vomage-0")
            os.kill(_pool_process(state, 0), signal.SIGKILL)
            assert wait_until_final(settings, uploads, timeout_s=600)
            runs = _finished_runs(instance, timeout_s=120)
            failed = instance.get_run_by_id(victim[0])
            retries = [r for r in runs if r.tags.get("dagster/parent_run_id") == victim[0]]
    assert all(u.status["stage"] == "complete" for u in uploads), [u.status for u in uploads]
    assert failed.status == DagsterRunStatus.FAILURE and failed.tags.get("dagster/will_retry") == "true"
    assert len(retries) == 1 and retries[0].status == DagsterRunStatus.SUCCESS
