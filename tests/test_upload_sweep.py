"""The upload sweep, called with a built context against the local stack: it sends the
ingest a message for an upload nothing registered, and never plans a run itself."""

import datetime as dt
import json

import pytest
from dagster import DagsterInstance, SensorResult, build_sensor_context

from vomage_dagster.domain.upload_cursor import UploadCursor
from vomage_dagster.local.client.uploads import upload_file
from vomage_dagster.sensors import upload_sweep
from vomage_dagster.sensors.upload_sweep import upload_sweep_sensor


@pytest.fixture()
def sweep(resources, queues, monkeypatch):
    """Evaluate the sensor once; returns (result, cursor). Uploads count as old enough at
    once (GRACE 0), and the queue is drained of the uploads' own S3 notifications first."""
    monkeypatch.setattr(upload_sweep, "GRACE", dt.timedelta(0))
    instance = DagsterInstance.ephemeral()

    def run(cursor):
        with build_sensor_context(instance=instance, cursor=cursor, resources={
                "store": resources["store"], "tracker": resources["tracker"], "queue": queues}) as ctx:
            result = upload_sweep_sensor(ctx)
        assert isinstance(result, SensorResult) and not result.run_requests
        return result, result.cursor

    yield run
    instance.dispose()


def _drain(sweep, queues):
    """A cursor past everything already in the bucket (other tests' uploads), and the queue empty."""
    result, cursor = sweep(None)
    while UploadCursor.from_json(cursor).position is not None:
        result, cursor = sweep(cursor)
    _messages(queues)
    return cursor


def _messages(queues) -> list[dict]:
    found = []
    while batch := queues.receive(10):
        found += [json.loads(m.body) for m in batch]
        queues.delete(batch)
    return found


def _sent(queues) -> list[str]:
    """Recording ids of the app messages the sweep sent (S3's own notifications left out)."""
    return [m["recording_id"] for m in _messages(queues) if "recording_id" in m]


def test_an_upload_nothing_registered_is_sent_to_the_ingest_once(sweep, queues, settings, samples, resources):
    cursor = _drain(sweep, queues)
    rid = upload_file(settings, samples["en_joy"]["path"], "sweep-user")
    _messages(queues)  # the notification was lost
    result, cursor = sweep(cursor)
    assert _sent(queues) == [rid]
    assert resources["tracker"].status.get(rid) is None  # registering is the ingest's
    again, _ = sweep(cursor)
    assert _sent(queues) == []


def test_a_registered_upload_is_left_alone(sweep, queues, settings, samples, resources):
    cursor = _drain(sweep, queues)
    rid = upload_file(settings, samples["en_neutral"]["path"], "sweep-user")
    resources["tracker"].register(rid, f"uploads/sweep-user/{rid}.3gp")
    sweep(cursor)
    assert _sent(queues) == []


def test_an_upload_naming_a_taken_id_is_sent_so_the_ingest_refuses_it(sweep, queues, settings, samples,
                                                                       resources):
    cursor = _drain(sweep, queues)
    rid = upload_file(settings, samples["en_neutral"]["path"], "sweep-owner")
    resources["tracker"].register(rid, f"uploads/sweep-owner/{rid}.3gp")
    upload_file(settings, samples["en_joy"]["path"], "sweep-intruder", recording_id=rid)
    sweep(cursor)
    assert _sent(queues) == [rid]


def test_an_upload_too_new_to_judge_is_looked_at_again(sweep, queues, settings, samples, monkeypatch):
    cursor = _drain(sweep, queues)
    monkeypatch.setattr(upload_sweep, "GRACE", dt.timedelta(hours=1))
    rid = upload_file(settings, samples["en_joy"]["path"], "sweep-new")
    _messages(queues)
    _, cursor = sweep(cursor)
    assert _sent(queues) == []
    monkeypatch.setattr(upload_sweep, "GRACE", dt.timedelta(0))
    sweep(cursor)
    assert _sent(queues) == [rid]


def test_foreign_keys_are_ignored_but_passed(sweep, queues, resources):
    cursor = _drain(sweep, queues)
    resources["store"].put_bytes("uploads/not-a-recording.m4a", b"x")
    _, cursor = sweep(cursor)
    assert _sent(queues) == []
    assert "uploads/not-a-recording.m4a" in UploadCursor.from_json(cursor).recent


def test_a_tick_is_bounded(sweep, queues, settings, samples, monkeypatch):
    cursor = _drain(sweep, queues)
    monkeypatch.setattr(upload_sweep, "MAX_KEYS_PER_TICK", 2)
    rids = [upload_file(settings, samples["en_joy"]["path"], "sweep-burst") for _ in range(3)]
    _messages(queues)
    seen: list[str] = []
    for _ in range(4):
        _, cursor = sweep(cursor)
        sent = _sent(queues)
        assert len(sent) <= 2
        seen += sent
    assert sorted(seen) == sorted(rids)
