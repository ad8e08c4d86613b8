"""The ingest service: the uploads queue, long-polled without pause, each run launched the
moment its message arrives.

Why not only the SQS sensor: the daemon starts a sensor tick at most every 5 s
(`MIN_INTERVAL_LOOP_TIME` in Dagster 1.13). A tick that receives a message returns at
once so that its run is submitted, and an upload that lands before the next tick waits
for it: 1.88 s p50 of pickup in the benchmark, the largest part of Dagster's share of a
recording (docs/performance.md). This process keeps a receive open at all times and
launches through Dagster's own GraphQL `launchRun`, as the UI does, executed in-process
against the workspace (`dagster_graphql.cli.execute_query`), so it needs no webserver.

It shares everything else with the sensor (`sensors.sqs_uploads.triage` and `settle`):
the same parser, the same claim in the status table, the same micro-batches, the same
poison handling. Both sensors stay defined, stopped by default when this service runs:
one claimant at a time (README, "Ingestion").
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from dagster import DagsterInstance, RunRequest
from dagster._core.storage.tags import PARTITION_NAME_TAG

from .resources.queue import UploadQueue
from .resources.store import ObjectStore
from .resources.tracker import ProcessingTracker
from .run_tags import recordings_of_run
from .sensors.sqs_uploads import receive, settle, triage
from .settings import Settings

log = logging.getLogger("vomage.ingest")

JOB = "process_recording"
POLL_S = 5
LAUNCHED_BY_TAG = "vomage/launched-by"
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

    def __init__(self, workspace_file: Path, instance: DagsterInstance):
        from dagster._core.workspace.context import WorkspaceProcessContext
        from dagster._core.workspace.load_target import WorkspaceFileTarget

        self.context = WorkspaceProcessContext(instance, WorkspaceFileTarget([str(workspace_file)]))
        names = self.context.create_request_context().code_location_names
        if len(names) != 1:
            raise RuntimeError(f"the workspace must hold one code location, not {names}")
        self.location = names[0]

    def launch(self, request: RunRequest) -> str:
        """Launch one planned run; its run id, or LaunchFailed with Dagster's reason."""
        from dagster_graphql.cli import execute_query

        tags = {**request.tags, LAUNCHED_BY_TAG: "ingest"}
        if request.partition_key:
            tags[PARTITION_NAME_TAG] = request.partition_key
        result = execute_query(self.context, LAUNCH_RUN, {"executionParams": {
            "selector": {"repositoryLocationName": self.location, "repositoryName": "__repository__",
                         "jobName": JOB},
            "runConfigData": {},
            "executionMetadata": {"tags": [{"key": k, "value": str(v)} for k, v in tags.items()]},
        }})
        answer = (result.get("data") or {}).get("launchRun") or {}
        if answer.get("__typename") == "LaunchRunSuccess":
            return answer["run"]["runId"]
        reason = answer.get("message") or answer.get("errors") or result.get("errors")
        raise LaunchFailed(f"{answer.get('__typename', 'no answer')}: {str(reason)[:500]}")

    def close(self) -> None:
        self.context.__exit__(None, None, None)


def ingest_once(instance: DagsterInstance, queue: UploadQueue, store: ObjectStore,
                tracker: ProcessingTracker, launch: Callable[[RunRequest], str], max_batch: int) -> int:
    """One receive (waiting up to the queue's long poll) and its runs; the number launched.

    A run that fails to launch keeps its message as a follow-up: the claim in the status
    table lapses after a minute (`claim_run`) and a later delivery launches it again; the
    stranded sensor ends it `failed` if that never works."""
    messages = receive(queue)
    if not messages:
        return 0
    t = triage(messages, instance, store, tracker, log, max_batch)
    launched: set[str] = set()
    for request in t.plan.run_requests:
        recordings = recordings_of_run(request.tags)
        try:
            run_id = launch(request)
        except Exception as exc:  # one failed launch must not hold back the others
            log.warning(f"launch of {len(recordings)} recording(s) failed: {exc}")
            continue
        launched.update(recordings)
        log.debug(f"launched run {run_id} for {len(recordings)} recording(s)")
    settle(queue, store, tracker, messages, t, log, frozenset(launched))
    return len(launched)


def serve(settings: Settings, instance: DagsterInstance, workspace_file: Path,
          stop: threading.Event) -> None:
    """Until `stop` is set: receive, plan, launch. A receive or plan that raises (SQS or
    DynamoDB unreachable for a moment) is logged and tried again after a short pause."""
    from .definitions import build_resources

    # Short long polls: a message ends one at once, so its length costs no latency, and
    # `stop` is seen within seconds.
    resources = build_resources(replace(settings, sqs_wait_seconds=POLL_S))
    queue: UploadQueue = resources["queue"]
    store: ObjectStore = resources["store"]
    tracker: ProcessingTracker = resources["tracker"]
    launcher = GraphQLLauncher(workspace_file, instance)
    log.info(f"ingest service: {queue.url()} → {JOB} in {launcher.location}")
    try:
        while not stop.is_set():
            try:
                ingest_once(instance, queue, store, tracker, launcher.launch, settings.max_batch)
            except Exception as exc:
                log.warning(f"ingest iteration failed ({type(exc).__name__}: {str(exc)[:300]}); retrying")
                stop.wait(2)
    finally:
        launcher.close()
