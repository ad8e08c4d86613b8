"""Shared fixtures: the real local stack (moto, redis-server, model server) for a session."""

from __future__ import annotations

import json
import os
import urllib.request
from pathlib import Path

import pytest

from vomage_dagster.local import stack
from vomage_dagster.local.demo import SAMPLES_DIR, sample_manifest
from vomage_dagster.resources.aws import clear_clients
from vomage_dagster.settings import load_settings


@pytest.fixture(scope="session")
def local_stack(tmp_path_factory):
    """Start the stack in a temporary state folder and point this process at it."""
    state = tmp_path_factory.mktemp("vomage-state")
    saved = dict(os.environ)
    os.environ["VOMAGE_STATE_DIR"] = str(state)
    os.environ["VOMAGE_ENV"] = "local"
    settings = load_settings()
    info = stack.up(settings)
    os.environ.update(stack.stack_env(info))
    os.environ["VOMAGE_TRANSCRIBE_POLL_SECONDS"] = "0.2"
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
    from vomage_dagster.definitions import build_resources

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
    info = stack.up(load_settings(env))
    for name, value in {**stack.stack_env(info), "VOMAGE_TRANSCRIBE_POLL_SECONDS": "1"}.items():
        monkeypatch.setenv(name, value)
    clear_clients()
    try:
        yield info
    finally:
        stack.down(load_settings(env))
        clear_clients()


@pytest.fixture()
def queues(settings, monkeypatch):
    """Both uploads queues emptied (PurgeQueue is limited to once a minute, so drain instead)."""
    import vomage_dagster.sensors.sqs_uploads as sqs_mod
    from vomage_dagster.resources.queue import UploadQueue

    queue = UploadQueue(queue_name=settings.uploads_queue, region_name=settings.region,
                        dead_letter_queue_name=settings.dead_letter_queue, retry_visibility_s=0)
    for dead_letter in (False, True):
        while batch := queue.receive(10, dead_letter=dead_letter, visibility_s=60):
            queue.delete(batch, dead_letter=dead_letter)
    monkeypatch.setattr(sqs_mod, "FOLLOW_UP_DELAY_S", 0)
    return queue


@pytest.fixture()
def tick(instance, resources, queues):
    """One SQS sensor tick on the drained queue, against the module's `instance`."""
    from dagster import SensorResult, build_sensor_context

    from vomage_dagster.sensors.sqs_uploads import sqs_upload_sensor

    def run() -> SensorResult:
        with build_sensor_context(instance=instance, resources={
                "queue": queues, "store": resources["store"], "tracker": resources["tracker"]}) as ctx:
            return sqs_upload_sensor(ctx)
    return run
