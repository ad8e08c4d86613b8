"""Launching a planned run through the workspace's GraphQL schema, as the UI does.

`launchRun` executed in-process against the workspace (`dagster_graphql.cli.execute_query`)
needs no webserver, and its runs enter the same run queue, with the same limits, as any
other. A sensor would add the daemon's tick loop (a 5 s floor in Dagster 1.13) between an
upload and its run; this launches the moment the message is read.
"""

from __future__ import annotations

from pathlib import Path

from dagster import DagsterInstance, RunRequest
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
