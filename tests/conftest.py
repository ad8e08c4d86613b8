"""Shared fixtures: the real local stack (moto, redis-server, model server) for a session."""

from __future__ import annotations

import json
import os
import urllib.request
from pathlib import Path

import pytest

from vomage_dagster.local.aws import stack
from vomage_dagster.local.demo.samples import SAMPLES_DIR, sample_manifest
from vomage_dagster.resources.aws import clear_clients
from vomage_dagster.settings import load_settings


def pytest_configure(config):
    """SIGTERM stops the suite as Ctrl-C does: fixtures tear down what they started (and
    every process they started is tied to this one, `local/processes.py`, should even that
    not happen)."""
    from vomage_dagster.cli.common import exit_on_sigterm

    exit_on_sigterm()


@pytest.fixture(scope="session")
def local_stack(tmp_path_factory):
    """Start the stack in a temporary state folder and point this process at it."""
    state = tmp_path_factory.mktemp("vomage-state")
    saved = dict(os.environ)
    os.environ["VOMAGE_STATE_DIR"] = str(state)
    os.environ["VOMAGE_ENV"] = "local"
    settings = load_settings()
    info = stack.up(settings, tied=True)
    os.environ.update(stack.stack_env(info))
    os.environ["VOMAGE_TRANSCRIBE_POLL_SECONDS"] = "0.2"
    # A test that provokes a retryable failure sees it failed at once; the automatic
    # retries have tests of their own (tests/test_auto_retry.py), which turn them on.
    os.environ["VOMAGE_AUTO_RETRIES"] = "0"
    clear_clients()
    try:
        yield info
    finally:
        stack.down(settings)
        os.environ.clear()
        os.environ.update(saved)
        clear_clients()


@pytest.fixture(scope="session")
def settings(local_stack):
    return load_settings()


@pytest.fixture(scope="session")
def resources(settings):
    from vomage_dagster.resources.build import build_resources

    return build_resources(settings)


@pytest.fixture(scope="session")
def model_calls(local_stack):
    """A function that reads how many calls each model has served so far."""

    def read() -> dict:
        url = f"http://127.0.0.1:{local_stack['ports']['models']}/stats"
        with urllib.request.urlopen(url, timeout=5) as resp:
            return json.loads(resp.read())["calls"]

    return read


@pytest.fixture(scope="session")
def samples() -> dict[str, dict]:
    """The bundled samples by name, with their path."""
    return {Path(m["file"]).stem: {**m, "path": SAMPLES_DIR / m["file"]} for m in sample_manifest()}


@pytest.fixture(scope="module")
def events_queue(settings, request):
    """An EventBridge rule that copies our events to a queue of this test module's own."""
    from vomage_dagster.resources.aws import client

    name = "vomage-test-" + request.module.__name__.rsplit(".", 1)[-1].replace("_", "-")
    events, sqs = client("events", settings.region), client("sqs", settings.region)
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(Name=name, EventPattern=json.dumps({"source": ["vomage.voice-processing"]}))
    events.put_targets(Rule=name, Targets=[{"Id": "q", "Arn": arn}])
    return url


@pytest.fixture()
def private_stack(tmp_path, monkeypatch):
    """A stack of its own: a sensor on a fresh cursor would otherwise also process every
    upload other tests left in the shared bucket, and warm the cache for ours."""
    env = {**os.environ, "VOMAGE_STATE_DIR": str(tmp_path / "state")}
    info = stack.up(load_settings(env), tied=True)
    for name, value in {**stack.stack_env(info), "VOMAGE_TRANSCRIBE_POLL_SECONDS": "1",
                        "VOMAGE_AUTO_RETRIES": "0"}.items():
        monkeypatch.setenv(name, value)
    clear_clients()
    try:
        yield info
    finally:
        stack.down(load_settings(env))
        clear_clients()


@pytest.fixture()
def queues(settings):
    """Both uploads queues emptied (PurgeQueue is limited to once a minute, so drain instead)."""
    from vomage_dagster.resources.queue import UploadQueue

    queue = UploadQueue(queue_name=settings.uploads_queue, region_name=settings.region,
                        dead_letter_queue_name=settings.dead_letter_queue, retry_visibility_s=0)
    for dead_letter in (False, True):
        while batch := queue.receive(10, dead_letter=dead_letter, visibility_s=60):
            queue.delete(batch, dead_letter=dead_letter)
    return queue


@pytest.fixture()
def ingest(instance, resources, queues):
    """One pass of the ingest on the drained queue, against the module's `instance`: the
    run requests it launched. Launching here creates the run in the instance (queued, as
    the run queue would hold it) without the GraphQL machinery `tests/test_ingest.py` uses."""
    import logging

    from vomage_dagster.definitions import defs
    from vomage_dagster.ingest.consumer import ingest_once

    job = defs.resolve_job_def("process_recording")

    def run(max_batch: int = 10) -> list:
        launched = []

        def launch(request):
            tags = {**request.tags, **({"dagster/partition": request.partition_key} if request.partition_key else {})}
            launched.append(request)
            return instance.create_run_for_job(job, tags=tags).run_id

        ingest_once(queues, resources["store"], instance, resources["tracker"], launch, max_batch,
                    logging.getLogger("test.ingest"))
        return launched
    return run

