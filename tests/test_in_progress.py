"""Nothing left in progress: canceled runs, a retry that cannot be queued, claims whose
tick died, recordings stuck outside any run."""

from __future__ import annotations

import datetime as dt
import time

import pytest
from dagster import DagsterEventType, DagsterInstance, build_run_status_sensor_context, build_sensor_context

from vomage_dagster import cli
from vomage_dagster.domain.errors import ProcessingError
from vomage_dagster.local.demo import new_recording_id, upload_file
from vomage_dagster.resources.queue import UploadQueue
from vomage_dagster.run_tags import recording_tag, recordings_of_run
from vomage_dagster.sensors import stranded
from vomage_dagster.sensors.planning import plan_runs
from vomage_dagster.sensors.run_failures import recording_canceled_sensor


@pytest.fixture()
def instance():
    with DagsterInstance.ephemeral() as inst:
        yield inst


def test_a_canceled_run_leaves_its_recordings_failed_and_retryable(instance, resources):
    from vomage_dagster.definitions import defs

    rids = [new_recording_id() for _ in range(2)]
    for rid in rids:
        resources["tracker"].register(rid, f"uploads/u/{rid}.m4a")
        resources["tracker"].advance(rid, "transcribing")
    job = defs.resolve_job_def("process_recording")
    run = instance.create_run_for_job(job, tags={recording_tag(r): "1" for r in rids})
    instance.report_run_canceling(run)
    instance.report_run_canceled(run)
    event = next(e.dagster_event for e in instance.all_logs(run.run_id)
                 if e.dagster_event and e.dagster_event.event_type == DagsterEventType.PIPELINE_CANCELED)
    with build_run_status_sensor_context(sensor_name=recording_canceled_sensor.name, dagster_event=event,
                                         dagster_instance=instance, dagster_run=instance.get_run_by_id(run.run_id),
                                         resources={"tracker": resources["tracker"],
                                                    "records": resources["records"]}) as ctx:
        recording_canceled_sensor(ctx)
    for rid in rids:
        item = resources["tracker"].status.get(rid)
        assert item["stage"] == "failed" and item["error"]["code"] == "run_canceled"
        assert item["error"]["retryable"] is True and run.run_id[:8] in item["error"]["message"]


def test_a_retry_that_cannot_be_queued_is_failed_again_not_lost(resources, settings, monkeypatch, capsys):
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
                                                            "records": resources["records"], "queue": queues}) as ctx:
        return stranded.stranded_recordings_sensor(ctx)


def test_a_claim_whose_tick_died_is_queued_again_then_run(instance, resources, settings, samples, queues, tick):
    """A tick claimed the recording and died before its run existed: the stranded sensor
    queues it again, and the next SQS tick requests its run."""
    rid = upload_file(settings, samples["en_joy"]["path"], "stranded-user")
    for batch in iter(lambda: queues.receive(10, visibility_s=60), []):
        queues.delete(batch)  # the notification was taken by the tick that died
    tracker = resources["tracker"]
    tracker.register(rid, f"uploads/stranded-user/{rid}.m4a")
    assert tracker.status.claim_run(rid, 1)
    _age(resources, rid)
    _stranded_tick(instance, resources, queues)
    assert tracker.status.get(rid)["requeues"] == 1
    # (Other tests' recordings left in progress long ago are queued again too.)
    covered = [k for _ in range(3) for r in tick().run_requests for k in recordings_of_run(r.tags)]
    assert covered.count(rid) == 1


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
    from vomage_dagster.definitions import defs

    rid = new_recording_id()
    tracker = resources["tracker"]
    tracker.register(rid, f"uploads/u/{rid}.m4a")
    tracker.advance(rid, "transcribing")
    # A run of its attempt exists and has not finished (NOT_STARTED: queued in the instance).
    instance.create_run_for_job(defs.resolve_job_def("process_recording"), tags={recording_tag(rid): "1"})
    _age(resources, rid, minutes=15)  # stalled by the status, but not yet taken for dead
    _stranded_tick(instance, resources, queues)
    item = tracker.status.get(rid)
    assert item["stage"] == "transcribing" and "requeues" not in item


def test_a_run_in_flight_without_progress_for_long_is_taken_for_dead(instance, resources, queues, monkeypatch):
    """A killed run process leaves its run STARTED (or CANCELING) for ever: after
    DEAD_RUN_AFTER without progress the run is reported failed and the recording failed."""
    from dagster import DagsterRunStatus

    from vomage_dagster.definitions import defs

    rid = new_recording_id()
    tracker = resources["tracker"]
    tracker.register(rid, f"uploads/u/{rid}.m4a")
    tracker.advance(rid, "analyzing")
    run = instance.create_run_for_job(defs.resolve_job_def("process_recording"), tags={recording_tag(rid): "1"})
    instance.report_run_canceling(run)  # a termination that never completed: the worker is gone
    # The run began longer ago than DEAD_RUN_AFTER (here: a minute), and so did the status.
    monkeypatch.setattr(stranded, "DEAD_RUN_AFTER", dt.timedelta(minutes=1))
    monkeypatch.setattr(stranded, "_running_since", lambda record: time.time() - 120)
    _age(resources, rid, minutes=15)
    _stranded_tick(instance, resources, queues)
    assert instance.get_run_by_id(run.run_id).status == DagsterRunStatus.FAILURE
    item = tracker.status.get(rid)
    assert item["stage"] == "failed" and item["error"]["code"] == "stalled" and item["error"]["retryable"]


def _age_claim(resources, rid: str, seconds: int = 120) -> None:
    old = (dt.datetime.now(dt.UTC) - dt.timedelta(seconds=seconds)).isoformat(timespec="milliseconds")
    resources["tracker"].status.table.update_item(
        Key={"recording_id": rid}, UpdateExpression="SET run_claimed_at = :t",
        ExpressionAttributeValues={":t": old})


def test_of_two_runs_requested_for_one_recording_one_processes(instance, resources, settings, samples):
    """A tick claimed a recording and its run was not launched (a daemon crash); the claim
    went stale and another claimant took it and ran it. When the first tick is resumed and
    submits its old request, that run processes nothing and leaves the status alone."""
    from dagster import materialize

    from vomage_dagster.assets.recording import ASSETS

    rid, arrival = _uploaded(settings, samples)
    tracker = resources["tracker"]
    (stale,) = plan_runs(instance, tracker, [arrival]).run_requests
    _age_claim(resources, rid)
    (fresh,) = plan_runs(instance, tracker, [arrival]).run_requests
    assert stale.tags["vomage/claim"] != fresh.tags["vomage/claim"]
    assert materialize(ASSETS, instance=instance, resources=resources, tags=fresh.tags,
                       partition_key=rid).success
    assert tracker.status.get(rid)["stage"] == "complete"

    late = materialize(ASSETS, instance=instance, resources=resources, tags=stale.tags, partition_key=rid)
    assert late.success and not late.asset_materializations_for_node("recording_chain")
    (why,) = late.asset_observations_for_node("recording_chain")
    assert why.metadata["outcome"].value.startswith("stood down")
    assert tracker.status.get(rid)["stage"] == "complete"


def test_a_run_takes_over_a_claim_whose_claimant_never_launched(instance, resources, settings, samples):
    """The other way round: the second claimant died before launching. The first request's
    run waits for that fresh claim to go stale, then takes it and processes."""
    from dagster import materialize

    from vomage_dagster.assets.recording import ASSETS
    from vomage_dagster.resources.status import WAITING

    rid, arrival = _uploaded(settings, samples)
    tracker = resources["tracker"]
    (first,) = plan_runs(instance, tracker, [arrival]).run_requests
    _age_claim(resources, rid)
    plan_runs(instance, tracker, [arrival])  # claimed again; its run is never launched
    assert tracker.status.take_claim(rid, 1, first.tags["vomage/claim"]) == WAITING
    _age_claim(resources, rid)
    assert materialize(ASSETS, instance=instance, resources=resources, tags=first.tags,
                       partition_key=rid).success
    assert tracker.status.get(rid)["stage"] == "complete"


def _uploaded(settings, samples):
    from vomage_dagster.domain.keys import parse_upload_key, upload_key

    rid = upload_file(settings, samples["en_joy"]["path"], "claims")
    return rid, parse_upload_key(upload_key("claims", rid, "m4a"))


def test_a_taken_claim_never_goes_stale(resources):
    from vomage_dagster.resources.status import HELD, TAKEN, WAITING

    rid = new_recording_id()
    status = resources["tracker"].status
    status.register(rid, f"uploads/u/{rid}.m4a")
    assert status.claim_run(rid, 1, "first")
    _age_claim(resources, rid)
    assert status.claim_run(rid, 1, "second")  # stale and not taken: another claimant wins
    assert status.take_claim(rid, 1, "first") == WAITING  # "second" may yet launch its run
    assert status.take_claim(rid, 1, "second") == TAKEN
    assert status.take_claim(rid, 1, "first") == HELD
    _age_claim(resources, rid)
    assert not status.claim_run(rid, 1, "third")  # taken: never stale, whatever its age
    assert status.take_claim(rid, 1, "first") == HELD
    assert status.take_claim(rid, 2, "second") == HELD  # another attempt's run


def test_a_canceled_run_that_lost_its_claim_fails_nothing(instance, resources):
    """A run that stood down (its claim was taken over) and is then canceled leaves the
    recording to the run holding the claim; the holder's own cancel fails it."""
    from vomage_dagster.definitions import defs

    rid = new_recording_id()
    tracker = resources["tracker"]
    tracker.register(rid, f"uploads/u/{rid}.m4a")
    assert tracker.status.claim_run(rid, 1, "holder")
    job = defs.resolve_job_def("process_recording")
    for token, stage in (("stale", "uploaded"), ("holder", "failed")):
        run = instance.create_run_for_job(job, tags={recording_tag(rid): "1", "vomage/claim": token})
        instance.report_run_canceling(run)
        instance.report_run_canceled(run)
        event = next(e.dagster_event for e in instance.all_logs(run.run_id)
                     if e.dagster_event and e.dagster_event.event_type == DagsterEventType.PIPELINE_CANCELED)
        with build_run_status_sensor_context(
                sensor_name=recording_canceled_sensor.name, dagster_event=event, dagster_instance=instance,
                dagster_run=instance.get_run_by_id(run.run_id),
                resources={"tracker": tracker, "records": resources["records"]}) as ctx:
            recording_canceled_sensor(ctx)
        assert tracker.status.get(rid)["stage"] == stage, token
