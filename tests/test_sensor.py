"""The S3 sensor, called with a built context against the local stack."""

import pytest
from dagster import DagsterInstance, SensorResult, build_sensor_context

from vomage_dagster.domain.upload_cursor import UploadCursor
from vomage_dagster.local.demo import upload_file
from vomage_dagster.partitions import recordings
from vomage_dagster.run_tags import recording_tag, recordings_of_run
from vomage_dagster.sensors.planning import keys_in_range
from vomage_dagster.sensors.s3_uploads import s3_upload_sensor


@pytest.fixture()
def tick(resources):
    """Evaluate the sensor once; returns (result, cursor)."""
    instance = DagsterInstance.ephemeral()

    def run(cursor):
        with build_sensor_context(instance=instance, cursor=cursor,
                                  resources={"store": resources["store"],
                                             "tracker": resources["tracker"]}) as ctx:
            result = s3_upload_sensor(ctx)
        assert isinstance(result, SensorResult)
        return result, result.cursor

    run.instance = instance
    yield run
    instance.dispose()


def _drain(tick):
    """Start from a cursor past everything already in the bucket (other tests' uploads)."""
    result, cursor = tick(None)
    while result.run_requests or UploadCursor.from_json(cursor).position is not None:
        result, cursor = tick(cursor)
    return cursor


def test_new_uploads_become_partitions_and_runs_once(tick, settings, samples, resources):
    cursor = _drain(tick)
    rid = upload_file(settings, samples["en_joy"]["path"], "demo-sensor")
    result, cursor = tick(cursor)
    (request,) = result.run_requests
    assert request.run_key == rid and request.partition_key == rid
    assert request.tags["vomage/upload_key"].startswith("uploads/demo-sensor/")
    assert request.tags[recording_tag(rid)] == "1"
    (add,) = result.dynamic_partitions_requests
    assert add.partitions_def_name == recordings.name and list(add.partition_keys) == [rid]
    assert resources["tracker"].status.get(rid)["stage"] == "uploaded"
    again, _ = tick(cursor)
    assert again.run_requests == [] and again.skip_reason is not None


def test_uploads_arriving_together_run_as_one_batch(tick, settings, samples, resources):
    cursor = _drain(tick)
    rids = [upload_file(settings, samples[n]["path"], "demo-sensor") for n in ("en_joy", "zh_sad")]
    result, cursor = tick(cursor)
    (request,) = result.run_requests
    assert request.partition_key is None
    assert sorted(recordings_of_run(request.tags)) == sorted(rids)
    keys = keys_in_range(tick.instance, *request.partition_key_range)
    assert sorted(keys) == sorted(rids)
    for rid in rids:
        assert resources["tracker"].status.get(rid)["stage"] == "uploaded"
    again, _ = tick(cursor)
    assert again.run_requests == []


def test_a_fresh_cursor_skips_recordings_already_final(tick, settings, samples, resources):
    cursor = _drain(tick)
    done = upload_file(settings, samples["en_neutral"]["path"], "demo-sensor")
    todo = upload_file(settings, samples["en_angry"]["path"], "demo-sensor")
    tracker = resources["tracker"]
    tracker.register(done, f"uploads/demo-sensor/{done}.3gp")
    for stage in ("transcribing", "analyzing", "generating", "complete"):
        tracker.advance(done, stage)
    result, _ = tick(cursor)
    assert [r.run_key for r in result.run_requests] == [todo]
    # With no cursor at all (a new deployment): the finished one is skipped, and the
    # one just requested is claimed, so it is not requested a second time.
    fresh, _ = tick(None)
    assert not {done, todo} & {r.run_key for r in fresh.run_requests}


def test_foreign_keys_are_ignored_but_passed(tick, settings, resources):
    cursor = _drain(tick)
    resources["store"].put_bytes("uploads/not-a-recording.m4a", b"x")
    result, cursor = tick(cursor)
    assert result.run_requests == []
    assert "uploads/not-a-recording.m4a" in UploadCursor.from_json(cursor).recent


def test_a_tick_is_bounded(tick, settings, samples, monkeypatch):
    import vomage_dagster.sensors.s3_uploads as mod

    cursor = _drain(tick)
    monkeypatch.setattr(mod, "MAX_KEYS_PER_TICK", 2)
    rids = [upload_file(settings, samples["en_joy"]["path"], "demo-burst") for _ in range(3)]

    def covered(result):
        return [rid for r in result.run_requests for rid in recordings_of_run(r.tags)]

    # Keys another claimant holds come back in each pass too, so count only ours.
    seen: list[str] = []
    for _ in range(6):
        result, cursor = tick(cursor)
        assert len(covered(result)) <= 2
        seen += covered(result)
    assert sorted(set(seen) & set(rids)) == sorted(rids) and len(seen) == len(set(seen))
