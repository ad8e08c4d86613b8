"""Launching a planned run through the workspace's GraphQL schema, as the UI does.

`launchRun` executed in-process against the workspace (as `dagster_graphql.cli.execute_query`, the schema built once)
needs no webserver. A sensor would add the daemon's tick loop (a 5 s floor in Dagster 1.13)
between an upload and its run; this launches the moment the message is read.

Dispatch (`direct`, the default): while the run queue is empty and fewer runs are in
flight than the queue's own `max_concurrent_runs`, a run is handed to the run launcher at
once, as Dagster's synchronous coordinator does, instead of waiting for the daemon's next
dequeue (every second at best); otherwise, in a burst, it enters the queue, whose limit
and order protect the workers as before. The queue's limit can be passed by one for a
moment when the daemon dequeues while the ingest dispatches. `queue`: always the queue.

Holding (`holding`, `VOMAGE_INGEST_HOLD_S`): while the runs in flight fill that limit, the
ingest launches nothing; it goes on receiving, and asks the early moods of what arrives
(`consumer.gather`), and when a run ends the next pass launches all that gathered as
batches (`max_batch` recordings a run, run side by side in one run process). A run for
each would wait in the queue all the same, and each would pay a run's start and
bookkeeping.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from dagster import DagsterInstance, DagsterRunStatus, RunRequest, RunsFilter
from dagster._core.run_coordinator.queued_run_coordinator import QueuedRunCoordinator
from dagster._core.run_coordinator.sync_in_memory_run_coordinator import SyncInMemoryRunCoordinator
from dagster._core.storage.tags import PARTITION_NAME_TAG

from vomage_dagster.domain.run_tags import LAUNCHED_BY_TAG

JOB = "process_recording"
LAUNCH_RUN = """
mutation LaunchRun($executionParams: ExecutionParams!) {
  launchRun(executionParams: $executionParams) {
    __typename
    ... on LaunchRunSuccess { run { runId } }
    ... on PythonError { message }
    ... on RunConflict { message }
    ... on InvalidSubsetError { message }
    ... on RunConfigValidationInvalid { errors { message } }
    ... on UnauthorizedError { message }
  }
}
"""


class LaunchFailed(RuntimeError):
    pass


class GraphQLLauncher:
    """Launches runs of `process_recording` through the workspace's GraphQL schema."""

    def __init__(self, workspace_file: Path, instance: DagsterInstance, dispatch: str = "direct"):
        from dagster._core.workspace.context import WorkspaceProcessContext
        from dagster._core.workspace.load_target import WorkspaceFileTarget

        self.context = WorkspaceProcessContext(instance, WorkspaceFileTarget([str(workspace_file)]))
        names = self.context.create_request_context().code_location_names
        if len(names) != 1:
            raise RuntimeError(f"the workspace must hold one code location, not {names}")
        self.location = names[0]
        self.instance = instance
        # Built once: dagster_graphql's execute_query builds the whole schema on every call
        # (≈ 37 ms of CPU a launch on these cores, warm).
        from dagster_graphql.schema import create_schema

        self.schema = create_schema()
        self.direct = dispatch == "direct" and isinstance(instance.run_coordinator, QueuedRunCoordinator)
        self._at_once = SyncInMemoryRunCoordinator()
        self._at_once.register_instance(instance)
        self.dispatched = {"direct": 0, "queued": 0}
        self._held_since: float | None = None

    def _room(self) -> bool:
        """Whether a run may skip the queue: none waits in it, and it has room."""
        queue = self.instance.run_coordinator
        assert isinstance(queue, QueuedRunCoordinator)
        if self.instance.get_runs_count(RunsFilter(statuses=[DagsterRunStatus.QUEUED])):
            return False
        in_flight = self.instance.get_runs_count(RunsFilter(statuses=[
            DagsterRunStatus.NOT_STARTED, DagsterRunStatus.STARTING, DagsterRunStatus.STARTED]))
        return in_flight < queue.get_run_queue_config().max_concurrent_runs

    def holding(self, limit_s: float, now: float | None = None) -> bool:
        """Direct dispatch only: whether to hold the launches now, because the runs in
        flight fill the limit and the hold has lasted less than `limit_s`. A hold ends when
        a run ends (room) or at its limit (what gathered then goes through the queue)."""
        if limit_s <= 0 or not self.direct or self._room():
            self._held_since = None
            return False
        now = time.monotonic() if now is None else now
        if self._held_since is None:
            self._held_since = now
        if now - self._held_since >= limit_s:
            self._held_since = None
            return False
        return True

    @contextmanager
    def _coordinator(self) -> Iterator[str]:
        """The coordinator this launch goes through: at once when there is room, else the queue."""
        if not (self.direct and self._room()):
            yield "queued"
            return
        queue = self.instance.run_coordinator
        self.instance._run_coordinator = self._at_once  # noqa: SLF001 - Dagster has no per-submit choice
        try:
            yield "direct"
        finally:
            self.instance._run_coordinator = queue  # noqa: SLF001

    def launch(self, request: RunRequest) -> str:
        """Launch one planned run; its run id, or LaunchFailed with Dagster's reason."""
        tags = {**request.tags, LAUNCHED_BY_TAG: "ingest"}
        if request.partition_key:
            tags[PARTITION_NAME_TAG] = request.partition_key
        with self._coordinator() as how:
            result = self._execute(LAUNCH_RUN, {"executionParams": {
                "selector": {"repositoryLocationName": self.location, "repositoryName": "__repository__",
                             "jobName": JOB},
                "runConfigData": {},
                "executionMetadata": {"tags": [{"key": k, "value": str(v)} for k, v in tags.items()]},
            }})
        self.dispatched[how] += 1
        answer = (result.get("data") or {}).get("launchRun") or {}
        if answer.get("__typename") == "LaunchRunSuccess":
            return answer["run"]["runId"]
        reason = answer.get("message") or answer.get("errors") or result.get("errors")
        raise LaunchFailed(f"{answer.get('__typename', 'no answer')}: {str(reason)[:500]}")

    def _execute(self, query: str, variables: dict) -> dict:
        """dagster_graphql.cli.execute_query with the schema built once: the query against a
        fresh request context of the workspace; the result as a dict."""
        import asyncio

        context = self.context.create_request_context()
        result = asyncio.run(self.schema.execute_async(query, context_value=context, variable_values=variables))
        return result.formatted

    def close(self) -> None:
        self.context.__exit__(None, None, None)
