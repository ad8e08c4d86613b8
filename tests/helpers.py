"""Helpers the tests share (fixtures are in conftest.py)."""

from __future__ import annotations

from contextlib import contextmanager


def own_and_move(tracker, rid: str, *stages: str, owner: str = "test-run", attempt: int = 1) -> None:
    """Register `rid` if needed, own its attempt as `owner`, and move it through `stages`
    (the last may be "complete" or "failed"), as a run would."""
    from vomage_dagster.domain.errors import ProcessingError

    tracker.register(rid, f"uploads/u/{rid}.m4a")
    assert tracker.own(rid, attempt, owner) is not None
    for stage in stages:
        if stage == "complete":
            assert tracker.complete(rid, attempt, owner)
        elif stage == "failed":
            assert tracker.fail(rid, ProcessingError("test_failure", "failed by the test"), attempt, owner)
        else:
            assert tracker.advance(rid, stage, attempt, owner)


@contextmanager
def acting_as(role: str):
    """This process acts as `role` of the session's stack (a template role's logical id)
    for the block: its boto3 clients are rebuilt with that role's credentials."""
    import os
    from pathlib import Path

    from vomage_dagster.local.aws import roles

    with acting_with(roles.credentials_env(Path(os.environ["VOMAGE_STATE_DIR"]), role)):
        yield


@contextmanager
def acting_with(creds: dict[str, str]):
    """This process's boto3 clients use `creds` for the block, then what they used before."""
    from vomage_dagster.local.aws.stack import environ_patched
    from vomage_dagster.resources.aws import clear_clients

    try:
        with environ_patched(creds, keep=("AWS_SECURITY_TOKEN",)):
            clear_clients()
            yield
    finally:
        clear_clients()


def delete_stack_quietly(cfn, name: str) -> None:
    """Delete a test's own stack; moto cannot always (it refuses to delete a role whose
    inline policies it attached itself), and a uniquely named leftover harms nothing."""
    from botocore.exceptions import ClientError

    try:
        cfn.delete_stack(StackName=name)
    except ClientError:
        pass


def cfn_refs(node) -> set[str]:
    """Every logical id or parameter a template value refers to (Ref, GetAtt, ${...} of Sub)."""
    import re

    found: set[str] = set()
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "Ref":
                found.add(value)
            elif key == "Fn::GetAtt":
                found.add(value[0] if isinstance(value, list) else value.split(".")[0])
            elif key == "Fn::Sub":
                text = value if isinstance(value, str) else value[0]
                found |= {m.split(".")[0] for m in re.findall(r"\$\{([^}!]+)\}", text)}
                if not isinstance(value, str):
                    found |= cfn_refs(value[1])
            else:
                found |= cfn_refs(value)
    elif isinstance(node, list):
        for value in node:
            found |= cfn_refs(value)
    return found


def wait_for_batch_job(jobs, arn: str) -> dict:
    """A Bedrock batch job's description once it ended (the local server's take seconds)."""
    import time

    from vomage_dagster.domain import batch

    for _ in range(240):
        job = jobs.describe(arn)
        if job["status"] in batch.TERMINAL_STATUSES:
            return job
        time.sleep(0.25)
    raise AssertionError(f"batch job {arn} did not end")
