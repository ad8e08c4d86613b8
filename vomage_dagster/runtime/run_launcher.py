"""The run launcher of warm runs: dagster-celery's `CeleryRunLauncher`, told apart from a
dead worker and able to stop a run without killing the warm process for nothing.

`CeleryRunLauncher` (dagster-celery 0.29) sends each run to a Celery worker that has the
code location imported already (execution.py, local/deployment/run_workers.py, docs/deploy.md). Two
gaps of it matter to a platform that must lose no recording:

- Its health check trusts the task state in the result backend. A worker that vanished
  whole (machine lost, SIGKILL of the worker and its processes) leaves the run's task
  STARTED for ever, and the run with it. Here a STARTED run whose worker does not answer
  a ping is reported FAILED: run monitoring then fails the run (the instance's run retries
  may run it again) and the failure sensor fails its recordings, retryable.
- Its `terminate` revokes the task and returns, leaving the run CANCELING until run
  monitoring's cancel timeout. Here the run's process is signalled and the run reported
  canceled at once: the canceled-run sensor then fails its recordings, retryable.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dagster import DagsterRun, DagsterRunStatus, Field, Noneable, Permissive, StringSource
from dagster._core.launcher import CheckRunHealthResult, WorkerStatus
from dagster._serdes import ConfigurableClassData
from dagster_celery.launcher import CeleryRunLauncher
from dagster_celery.tags import DAGSTER_CELERY_TASK_ID_TAG

PING_TIMEOUT_S = 2.0


class WarmRunLauncher(CeleryRunLauncher):
    """Configured from the platform's settings (execution.run_worker_config), the same
    function the workers' configuration comes from, so the two cannot disagree; anything
    set in dagster.yaml overrides it."""

    @classmethod
    def config_type(cls) -> Any:
        return {name: Field(Noneable(kind), is_required=False) for name, kind in (
            ("broker", StringSource), ("backend", StringSource), ("default_queue", StringSource),
            ("config_source", Permissive()))}

    @classmethod
    def from_config_value(cls, inst_data: ConfigurableClassData, config_value: Mapping[str, Any]):
        from vomage_dagster.runtime.execution import run_worker_config
        from vomage_dagster.settings import load_settings

        config = {**run_worker_config(load_settings()),
                  **{k: v for k, v in config_value.items() if v is not None}}
        return cls(inst_data=inst_data, **config)

    def check_run_worker_health(self, run: DagsterRun) -> CheckRunHealthResult:
        health = super().check_run_worker_health(run)
        if health.status != WorkerStatus.RUNNING:
            return health
        info = self.celery.AsyncResult(run.tags[DAGSTER_CELERY_TASK_ID_TAG]).info
        worker = info.get("hostname") if isinstance(info, dict) else None
        if not worker:
            return health
        replies = self.celery.control.ping(destination=[worker], timeout=PING_TIMEOUT_S) or []
        if any(worker in reply for reply in replies):
            return health
        return CheckRunHealthResult(WorkerStatus.FAILED, f"the run's worker {worker} does not answer")

    def terminate(self, run_id: str) -> bool:
        run = self._instance.get_run_by_id(run_id)
        if run is None or DAGSTER_CELERY_TASK_ID_TAG not in run.tags:
            return False
        # The pool process is replaced by one forked from the warm parent: nothing is
        # imported again. Writes are single S3/DynamoDB calls, each whole or absent.
        self.celery.AsyncResult(run.tags[DAGSTER_CELERY_TASK_ID_TAG]).revoke(terminate=True, signal="SIGKILL")
        if not run.is_finished:
            if run.status != DagsterRunStatus.CANCELING:
                self._instance.report_run_canceling(run)
            self._instance.report_run_canceled(self._instance.get_run_by_id(run_id) or run,
                                               message="the run's process was stopped")
        return True
