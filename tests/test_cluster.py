"""The multi-process cluster (`vomage cluster up`): Postgres, the code location as a
gRPC server, webserver, daemon and warm run workers (dagster-celery workers executing
whole runs, the production run launcher).

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
from vomage_dagster.local.aws import stack
from vomage_dagster.local.client.uploads import upload_file
from vomage_dagster.local.demo.samples import SAMPLES_DIR, Upload, sample_manifest, wait_until_final
from vomage_dagster.local.deployment import cluster
from vomage_dagster.local.processes import alive as _alive
from vomage_dagster.local.processes import descendants
from vomage_dagster.runtime.execution import celery_config, run_worker_config
from vomage_dagster.settings import load_settings

PRODUCTION = yaml.safe_load(cluster.PRODUCTION_INSTANCE.read_text())


def test_cluster_instance_is_the_production_one_without_its_aws_parts(tmp_path, monkeypatch):
    from dagster._core.instance.config import dagster_instance_config

    config = cluster.instance_config(PRODUCTION, max_concurrent_runs=3)
    assert config["run_launcher"] == PRODUCTION["run_launcher"]  # the warm launcher, as in production
    assert config["compute_logs"]["class"] == "NoOpComputeLogManager"
    db = cluster.storage_config(config)["postgres_db"]
    assert config["storage"]["custom"]["class"] == "PooledPostgresStorage"
    assert db == {k: v for k, v in cluster.storage_config(PRODUCTION)["postgres_db"].items() if k != "params"}
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


def test_run_worker_config_is_valid_for_the_launcher_and_acks_on_receipt():
    from vomage_dagster.runtime.run_launcher import WarmRunLauncher

    settings = load_settings({"REDIS_URL": "redis://127.0.0.1:6390/0"})
    config = run_worker_config(settings)
    assert config["broker"] == config["backend"] == "redis://127.0.0.1:6390/1"
    assert config["default_queue"] == "vomage-runs"
    assert config["config_source"]["task_acks_late"] is False  # a run is never handed to a second worker
    launcher = WarmRunLauncher.from_config_value(None, {"default_queue": "elsewhere"})
    assert launcher.default_queue == "elsewhere" and launcher.broker == load_settings().celery_broker_url


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


def _run_pids(instance: DagsterInstance, run_id: str) -> list[int]:
    """The process(es) a run executed in, from its "Started process for run" events."""
    return [int(e.dagster_event.engine_event_data.metadata["pid"].value)
            for e in instance.all_logs(run_id, of_type=DagsterEventType.ENGINE_EVENT)
            if "pid" in e.dagster_event.engine_event_data.metadata
            and (e.message or "").startswith("Started process for run")]


def _group(pid: int) -> int | None:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[2])
    except OSError:
        return None


def _worker_of(info: dict, pid: int) -> str | None:
    """Which run worker (`worker-<i>`) a process belongs to: its process group."""
    leaders = {v: k for k, v in info["pids"].items() if k.startswith("worker-")}
    return leaders.get(_group(pid))


def _run_in_progress_on(instance: DagsterInstance, info: dict, worker: str | None,
                        timeout_s: float = 180) -> tuple[str, int]:
    """(run id, pid) of a run `worker` (None: any run worker) is executing."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for run in instance.get_runs(RunsFilter(job_name="process_recording", statuses=[DagsterRunStatus.STARTED])):
            for pid in _run_pids(instance, run.run_id):
                if (found := _worker_of(info, pid)) and (worker is None or found == worker):
                    return run.run_id, pid
        time.sleep(0.2)
    raise AssertionError(f"{worker} never ran a run")


@pytest.mark.slow
def test_cluster_runs_recordings_in_warm_run_workers_with_postgres(private_stack, monkeypatch):
    """`vomage cluster up` on the running stack, four uploads (one run each), `vomage
    cluster down`. Every run executed inside a run worker's long-lived process."""
    settings = load_settings()
    state = Path(private_stack["state_dir"])
    monkeypatch.setenv("VOMAGE_MAX_BATCH", "1")
    assert cli.main(["cluster", "up", "--workers", "2"]) == 0
    try:
        info = cluster.read_info(state)
        assert set(info["pids"]) == {"postgres", "code-server", "webserver", "daemon", "ingest",
                                     "worker-0", "worker-1", "worker-batch", "worker-metrics"}
        assert info["env"]["DAGSTER_PG_PORT"] == str(info["ports"]["postgres"])
        assert not info["started_stack"]
        uploads = _upload(settings, _samples(4), "cluster")
        assert wait_until_final(settings, uploads, timeout_s=300)
        assert all(u.status["stage"] == "complete" for u in uploads), [u.status for u in uploads]
        with _instance(info, monkeypatch) as instance:
            assert type(instance.run_storage).__name__ == "PostgresRunStorage"
            assert type(instance.run_launcher).__name__ == "WarmRunLauncher"
            runs = _finished_runs(instance)
            assert len(runs) == 4 and all(r.status == DagsterRunStatus.SUCCESS for r in runs)
            where = {r.run_id: [_worker_of(info, pid) for pid in _run_pids(instance, r.run_id)] for r in runs}
        print(f"\nruns by worker: {where}")
        assert all(r.tags.get("dagster-celery/task_id") for r in runs)
        assert all(len(w) == 1 and w[0] in ("worker-0", "worker-1") for w in where.values()), where
        # Warm: the processes outlive their runs (the same pid executes several).
        pids = [pid for r in runs for pid in _run_pids(instance, r.run_id)]
        assert len(set(pids)) < len(pids) and all(_alive(pid) for pid in set(pids))
    finally:
        assert cli.main(["cluster", "down"]) == 0
    assert not any(_alive(pid) for pid in info["pids"].values())
    assert not any(_alive(pid) for pid in set(pids))  # nothing below the guards either
    assert not Path(info["postgres_root"]).exists()  # the database is thrown away
    assert cluster.read_info(state) is None
    assert stack.healthy(private_stack)  # it was running before: `down` leaves it running


@pytest.mark.slow
def test_a_run_worker_lost_mid_run_loses_no_recording(private_stack, monkeypatch):
    """SIGKILL a whole run worker (its parent and its process) while it executes a run,
    as a lost machine would: its task stays STARTED in the result backend, but the worker
    does not answer a ping, so run monitoring fails the run; the instance retries it (run
    retries, 2) on the other worker and every recording completes."""
    settings = load_settings()
    state = Path(private_stack["state_dir"])
    env = {"VOMAGE_MAX_BATCH": "3"}
    with cluster.running_cluster(state, workers=2, extra_env=env) as info:
        uploads = _upload(settings, _samples(8), "killed")
        with _instance(info, monkeypatch) as instance:
            run_id, _ = _run_in_progress_on(instance, info, "worker-0")
            cluster.kill_worker(state, 0)
            killed_at = time.monotonic()
            assert wait_until_final(settings, uploads, timeout_s=600)
            recovered_after = time.monotonic() - killed_at
            runs = _finished_runs(instance, timeout_s=120)
            failed = instance.get_run_by_id(run_id)
            retries = [r for r in runs if r.tags.get("dagster/parent_run_id") == run_id]
            retried_on = [_worker_of(info, pid) for r in retries for pid in _run_pids(instance, r.run_id)]
        print(f"\nkilled worker 0 in run {run_id[:8]}; all {len(uploads)} final {recovered_after:.0f} s "
              f"later; retried on {retried_on}")
    assert all(u.status["stage"] == "complete" for u in uploads), [u.status for u in uploads]
    assert failed.status == DagsterRunStatus.FAILURE and failed.tags.get("dagster/will_retry") == "true"
    assert len(retries) == 1 and retries[0].status == DagsterRunStatus.SUCCESS and retried_on == ["worker-1"]


def _pool_process(state: Path, index: int) -> int:
    """The pid of worker `index`'s pool process, the one that executes the runs: below the
    worker's guard, dagster-celery's launcher, its Celery worker, and the worker's child."""
    guard = cluster.read_info(state)["pids"][f"worker-{index}"]
    chain = [guard]
    for _ in range(3):
        below = [pid for pid in descendants(chain[-1]) if _parent(pid) == chain[-1]]
        assert len(below) == 1, (chain, below)
        chain.append(below[0])
    return chain[-1]


def _parent(pid: int) -> int | None:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except OSError:
        return None


@pytest.mark.slow
def test_a_run_process_killed_mid_run_fails_the_run_and_its_retry_completes(private_stack, monkeypatch):
    """SIGKILL only the process executing a run: Celery fails its task (WorkerLostError)
    and starts a new process, forked warm; run monitoring fails the run, the instance
    retries it, and the failure sensor leaves its recordings alone until then."""
    settings = load_settings()
    state = Path(private_stack["state_dir"])
    env = {"VOMAGE_MAX_BATCH": "3"}
    with cluster.running_cluster(state, workers=2, extra_env=env) as info:
        uploads = _upload(settings, _samples(6), "pool")
        with _instance(info, monkeypatch) as instance:
            run_id, pid = _run_in_progress_on(instance, info, None)
            index = int(_worker_of(info, pid).split("-")[1])
            assert pid == _pool_process(state, index)
            os.kill(pid, signal.SIGKILL)
            assert wait_until_final(settings, uploads, timeout_s=600)
            runs = _finished_runs(instance, timeout_s=120)
            failed = instance.get_run_by_id(run_id)
            retries = [r for r in runs if r.tags.get("dagster/parent_run_id") == run_id]
        replaced = _pool_process(state, index)
    assert all(u.status["stage"] == "complete" for u in uploads), [u.status for u in uploads]
    assert failed.status == DagsterRunStatus.FAILURE and failed.tags.get("dagster/will_retry") == "true"
    assert len(retries) == 1 and retries[0].status == DagsterRunStatus.SUCCESS
    assert replaced != pid  # a new process, forked from the warm parent
