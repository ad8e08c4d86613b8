"""Nothing left in progress, nothing run twice: canceled runs, a retry that cannot be queued,
launches that were lost, recordings stuck outside any run, and the crashes that once made
two runs of one recording (replayed here against the ownership rule)."""

from __future__ import annotations

import datetime as dt
import time

import pytest
from dagster import DagsterEventType, DagsterInstance, build_run_status_sensor_context, build_sensor_context
from helpers import own_and_move

from vomage_dagster import cli
from vomage_dagster.domain.errors import ProcessingError
from vomage_dagster.domain.keys import new_recording_id, parse_upload_key, upload_key
from vomage_dagster.domain.run_tags import recording_tag, recordings_of_run
from vomage_dagster.ingest.planner import plan_runs
from vomage_dagster.local.client.uploads import upload_file
from vomage_dagster.resources.queue import UploadQueue
from vomage_dagster.sensors import stranded
from vomage_dagster.sensors.run_watchdog import recording_canceled_sensor


@pytest.fixture()
def instance():
    with DagsterInstance.ephemeral() as inst:
        yield inst


def _job():
    from vomage_dagster.definitions import defs

    return defs.resolve_job_def("process_recording")


def _cancel(instance, resources, tags: dict) -> str:
    """A run with `tags`, canceled, reported to the cancel sensor; its run id."""
    run = instance.create_run_for_job(_job(), tags=tags)
    instance.report_run_canceling(run)
    instance.report_run_canceled(run)
    event = next(e.dagster_event for e in instance.all_logs(run.run_id)
                 if e.dagster_event and e.dagster_event.event_type == DagsterEventType.PIPELINE_CANCELED)
    with build_run_status_sensor_context(sensor_name=recording_canceled_sensor.name, dagster_event=event,
                                         dagster_instance=instance, dagster_run=instance.get_run_by_id(run.run_id),
                                         resources={"tracker": resources["tracker"]}) as ctx:
        recording_canceled_sensor(ctx)
    return run.run_id


def test_a_canceled_run_leaves_its_recordings_failed_and_retryable(instance, resources):
    rids = [new_recording_id() for _ in range(2)]
    for rid in rids:
        resources["tracker"].register(rid, f"uploads/u/{rid}.m4a")
    run_id = _cancel(instance, resources, {recording_tag(r): "1" for r in rids})
    for rid in rids:
        item = resources["tracker"].status.get(rid)
        assert item["stage"] == "failed" and item["error"]["code"] == "run_canceled"
        assert item["error"]["retryable"] is True and run_id[:8] in item["error"]["message"]


def test_a_canceled_run_that_did_not_own_its_recording_fails_nothing(instance, resources):
    """A duplicate run that stood down (another run owns the attempt) and is then canceled
    leaves the recording to its owner; the owner's own cancel fails it."""
    rid = new_recording_id()
    tracker = resources["tracker"]
    tracker.register(rid, f"uploads/u/{rid}.m4a")
    owner = instance.create_run_for_job(_job(), tags={recording_tag(rid): "1"})
    assert tracker.own(rid, 1, owner.run_id) is not None
    _cancel(instance, resources, {recording_tag(rid): "1"})  # another run of the same attempt
    assert tracker.status.get(rid)["stage"] == "uploaded"
    instance.report_run_canceling(owner)
    instance.report_run_canceled(owner)
    event = next(e.dagster_event for e in instance.all_logs(owner.run_id)
                 if e.dagster_event and e.dagster_event.event_type == DagsterEventType.PIPELINE_CANCELED)
    with build_run_status_sensor_context(sensor_name=recording_canceled_sensor.name, dagster_event=event,
                                         dagster_instance=instance, dagster_run=instance.get_run_by_id(owner.run_id),
                                         resources={"tracker": tracker}) as ctx:
        recording_canceled_sensor(ctx)
    assert tracker.status.get(rid)["error"]["code"] == "run_canceled"


def test_a_retry_that_cannot_be_queued_is_failed_again_not_lost(resources, settings, monkeypatch):
    rid = new_recording_id()
    tracker = resources["tracker"]
    tracker.register(rid, f"uploads/u/{rid}.m4a")
    tracker.fail(rid, ProcessingError("transcription_failed", "throttled", retryable=True))

    def refuse(self, body, **_):
        raise ConnectionError("queue unreachable")

    monkeypatch.setattr(UploadQueue, "send", refuse)
    assert cli.main(["retry", rid]) == 1
    item = tracker.status.get(rid)
    assert item["stage"] == "failed" and item["error"]["code"] == "retry_not_queued"
    assert item["error"]["retryable"] is True and item["attempt"] == 2
    monkeypatch.undo()
    assert cli.main(["retry", rid]) == 0 and tracker.status.get(rid)["attempt"] == 3


def _age(resources, rid: str, minutes: int = 30) -> None:
    status = resources["tracker"].status
    old = (dt.datetime.now(dt.UTC) - dt.timedelta(minutes=minutes)).isoformat(timespec="milliseconds")
    status.table.update_item(Key={"recording_id": rid}, UpdateExpression="SET updated_at = :t",
                             ExpressionAttributeValues={":t": old})


def _stranded_tick(instance, resources, queues):
    with build_sensor_context(instance=instance, resources={"tracker": resources["tracker"],
                                                            "queue": queues}) as ctx:
        return stranded.stranded_recordings_sensor(ctx)


def test_a_lost_launch_is_queued_again_then_run(instance, resources, settings, samples, queues, ingest):
    """The ingest registered the recording and died before its run existed (its message was
    taken): the stranded sensor queues it again, and the ingest launches its run."""
    rid = upload_file(settings, samples["en_joy"]["path"], "stranded-user")
    for batch in iter(lambda: queues.receive(10, visibility_s=60), []):
        queues.delete(batch)  # the notification was taken by the pass that died
    tracker = resources["tracker"]
    tracker.register(rid, f"uploads/stranded-user/{rid}.m4a")
    _age(resources, rid)
    _stranded_tick(instance, resources, queues)
    assert tracker.status.get(rid)["requeues"] == 1
    # (Other tests' recordings left in progress long ago are queued again too.)
    covered = [k for _ in range(3) for r in ingest() for k in recordings_of_run(r.tags)]
    assert covered.count(rid) == 1


def test_an_owner_whose_run_ended_is_released_and_the_recording_queued_again(instance, resources, queues):
    """The owner's run ended without ending the recording (a crash whose failure was never
    recorded): after the stall the owner is released and the recording queued again."""
    rid = new_recording_id()
    tracker = resources["tracker"]
    tracker.register(rid, f"uploads/u/{rid}.m4a")
    gone = instance.create_run_for_job(_job(), tags={recording_tag(rid): "1"})
    instance.report_run_failed(gone)
    own_and_move(tracker, rid, "transcribing", owner=gone.run_id)
    _age(resources, rid)
    _stranded_tick(instance, resources, queues)
    item = tracker.status.get(rid)
    assert item["requeues"] == 1 and "owner" not in item and item["stage"] == "transcribing"
    assert tracker.own(rid, 1, "the-next-run") is not None


def test_a_recording_stuck_too_often_ends_failed(instance, resources, queues):
    rid = new_recording_id()
    tracker = resources["tracker"]
    tracker.register(rid, f"uploads/u/{rid}.m4a")
    for _ in range(stranded.MAX_REQUEUES):
        _age(resources, rid)
        _stranded_tick(instance, resources, queues)
    assert tracker.status.get(rid)["requeues"] == stranded.MAX_REQUEUES
    _age(resources, rid)
    _stranded_tick(instance, resources, queues)
    item = tracker.status.get(rid)
    assert item["stage"] == "failed" and item["error"] == {
        "code": "stalled", "message": "processing did not start or finish; retry it with `vomage retry`",
        "retryable": True}


def test_a_recording_whose_run_is_in_flight_is_left_alone(instance, resources, queues):
    rid = new_recording_id()
    tracker = resources["tracker"]
    # A run of its attempt exists and has not finished (NOT_STARTED: queued in the instance).
    run = instance.create_run_for_job(_job(), tags={recording_tag(rid): "1"})
    own_and_move(tracker, rid, "transcribing", owner=run.run_id)
    _age(resources, rid, minutes=15)  # stalled by the status, but not yet taken for dead
    _stranded_tick(instance, resources, queues)
    item = tracker.status.get(rid)
    assert item["stage"] == "transcribing" and "requeues" not in item


def test_a_run_by_hand_in_flight_is_left_alone_too(instance, resources, queues):
    """A run started from the UI carries no recording tags: its ownership says it is running."""
    rid = new_recording_id()
    tracker = resources["tracker"]
    run = instance.create_run_for_job(_job(), tags={"dagster/partition": rid})
    own_and_move(tracker, rid, "analyzing", owner=run.run_id)
    _age(resources, rid, minutes=15)
    _stranded_tick(instance, resources, queues)
    assert tracker.status.get(rid)["owner"] == run.run_id and "requeues" not in tracker.status.get(rid)


def test_a_run_in_flight_without_progress_for_long_is_taken_for_dead(instance, resources, queues, monkeypatch):
    """A run whose worker hangs stays STARTED (or CANCELING) for ever: after DEAD_RUN_AFTER
    without progress the run is ended and the recording failed."""
    from dagster import DagsterRunStatus

    rid = new_recording_id()
    tracker = resources["tracker"]
    run = instance.create_run_for_job(_job(), tags={recording_tag(rid): "1"})
    own_and_move(tracker, rid, "analyzing", owner=run.run_id)
    instance.report_run_canceling(run)  # a termination that never completed: the worker is stuck
    # The run began longer ago than DEAD_RUN_AFTER (here: a minute), and so did the status.
    monkeypatch.setattr(stranded, "DEAD_RUN_AFTER", dt.timedelta(minutes=1))
    monkeypatch.setattr(stranded, "_running_since", lambda record: time.time() - 120)
    _age(resources, rid, minutes=15)
    _stranded_tick(instance, resources, queues)
    assert instance.get_run_by_id(run.run_id).status == DagsterRunStatus.FAILURE
    item = tracker.status.get(rid)
    assert item["stage"] == "failed" and item["error"]["code"] == "stalled" and item["error"]["retryable"]


def _uploaded(settings, samples):
    rid = upload_file(settings, samples["en_joy"]["path"], "owners")
    return rid, parse_upload_key(upload_key("owners", rid, "m4a"))


def _stood_down(result, rid) -> str:
    assert result.success and not result.asset_materializations_for_node("recording_chain")
    (why,) = [o for o in result.asset_observations_for_node("recording_chain") if o.partition == rid]
    return why.metadata["outcome"].value


def test_of_two_runs_launched_for_one_attempt_one_processes(instance, resources, settings, samples):
    """Two launches of one attempt (a duplicate delivery read by two ingest replicas at once,
    or a pass resumed after a crash): the first run to start owns it; the other, even
    started while the owner works, stands down and leaves the status alone."""
    from dagster import materialize

    from vomage_dagster.assets.recording import ASSETS

    rid, arrival = _uploaded(settings, samples)
    tracker = resources["tracker"]
    (first,) = plan_runs(instance, tracker, [arrival], 10).runs
    second = first  # the same request, planned again by another replica before the run existed
    owner = instance.create_run_for_job(_job(), tags=first.tags)  # in flight, owning the attempt
    assert tracker.own(rid, 1, owner.run_id) is not None
    late = materialize(ASSETS, instance=instance, resources=resources, tags=second.tags, partition_key=rid)
    assert _stood_down(late, rid) == f"stood down: run {owner.run_id[:8]} owns attempt 1"
    assert tracker.status.get(rid)["stage"] == "uploaded" and tracker.status.get(rid)["owner"] == owner.run_id


def test_a_run_takes_over_an_attempt_whose_owner_ended_without_ending_it(instance, resources, settings, samples):
    """The owner's run crashed before anything recorded its failure: the next run of that
    attempt (a re-queue, a duplicate) supersedes it and processes."""
    from dagster import materialize

    from vomage_dagster.assets.recording import ASSETS

    rid, arrival = _uploaded(settings, samples)
    tracker = resources["tracker"]
    (request,) = plan_runs(instance, tracker, [arrival], 10).runs
    crashed = instance.create_run_for_job(_job(), tags=request.tags)
    assert tracker.own(rid, 1, crashed.run_id) is not None
    instance.report_run_failed(crashed)
    assert materialize(ASSETS, instance=instance, resources=resources, tags=request.tags,
                       partition_key=rid).success
    assert tracker.status.get(rid)["stage"] == "complete"
    assert tracker.status.get(rid)["owner"] != crashed.run_id


def test_an_ownership_never_lapses_while_its_run_is_in_flight(resources):
    rid = new_recording_id()
    tracker = resources["tracker"]
    own_and_move(tracker, rid, owner="first")
    _age(resources, rid, minutes=60)
    assert tracker.own(rid, 1, "second") is None  # however old, while the owner is in flight
    assert tracker.own(rid, 2, "first") is None  # another attempt's run
    assert tracker.own(rid, 1, "first") is not None  # the owner asking again (a retry of its run)
