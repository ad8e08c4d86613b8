"""The ingest service (`vomage_dagster/ingest/`) against the local queue and a real
instance: runs launched through Dagster's GraphQL `launchRun`, once per recording.

The instance has a run queue and no daemon here, so launched runs stay QUEUED: what is
checked is the launch itself (the run, its tags, its partition) and what becomes of the
messages. The end-to-end tests run the service beside the daemon (the local default).
"""

import logging
import threading
import time

import pytest
from dagster import DagsterInstance, DagsterRunStatus, RunsFilter
from dagster._core.storage.tags import PARTITION_NAME_TAG

from vomage_dagster.domain.run_tags import LAUNCHED_BY_TAG, recording_tag, recordings_of_run
from vomage_dagster.ingest.consumer import gather, ingest_once
from vomage_dagster.ingest.launcher import GraphQLLauncher
from vomage_dagster.ingest.service import serve
from vomage_dagster.local import PROJECT_ROOT
from vomage_dagster.local.client.uploads import upload_file
from vomage_dagster.local.deployment.daemon import create_storage, prepare_home


@pytest.fixture(scope="module")
def launcher(tmp_path_factory, local_stack):
    home = prepare_home(tmp_path_factory.mktemp("ingest"), runs="spawn")
    create_storage(home)
    with DagsterInstance.from_config(str(home)) as instance:
        launcher = GraphQLLauncher(PROJECT_ROOT / "workspace.yaml", instance, dispatch="queue")
        yield instance, launcher
        launcher.close()


LOG = logging.getLogger("test.ingest")


def _runs_of(instance, rid):
    return instance.get_runs(filters=RunsFilter(tags={recording_tag(rid): "1"}))


def test_an_upload_is_launched_at_once_and_its_message_deleted(launcher, queues, resources, settings, samples):
    instance, gql = launcher
    rid = upload_file(settings, samples["en_joy"]["path"], "ingest-user")
    assert ingest_once(queues, resources["store"], instance, resources["tracker"], gql.launch, 10, LOG) == 1
    [run] = _runs_of(instance, rid)
    assert run.job_name == "process_recording"
    assert run.tags[PARTITION_NAME_TAG] == rid and run.tags[recording_tag(rid)] == "1"
    assert run.tags[LAUNCHED_BY_TAG] == "ingest"
    assert run.status == DagsterRunStatus.QUEUED  # the queue and its limits still apply
    assert queues.depth() == {"visible": 0, "in_flight": 0}  # the run exists: the message is done

    # The same notification again (S3 and SQS deliver at least once): no second run.
    key = f"uploads/ingest-user/{rid}{samples['en_joy']['path'].suffix}"
    queues.send({"recording_id": rid, "s3_key": key, "user_id": "ingest-user"})
    assert ingest_once(queues, resources["store"], instance, resources["tracker"], gql.launch, 10, LOG) == 0
    assert len(_runs_of(instance, rid)) == 1
    assert queues.depth() == {"visible": 0, "in_flight": 0}


def test_uploads_arriving_together_share_a_run_each_recording_once(launcher, queues, resources, settings,
                                                                   samples):
    instance, gql = launcher
    names = ("en_joy", "en_neutral", "en_angry")
    rids = [upload_file(settings, samples[name]["path"], "ingest-batch") for name in names]
    launched = 0
    for _ in range(3):
        launched += ingest_once(queues, resources["store"], instance, resources["tracker"], gql.launch, 10, LOG)
    assert launched == 3
    runs = {r.run_id: r for rid in rids for r in _runs_of(instance, rid)}
    covered = sorted(rid for r in runs.values() for rid in recordings_of_run(r.tags))
    assert covered == sorted(rids)


class _Asked:
    """Stands in for the early mood (`ingest/early_mood.py`, tested on its own): which
    recordings it was asked for, and when relative to the launches."""

    def __init__(self, events):
        self.events = events

    def start(self, uploads):
        self.events += [("mood", u.recording_id) for u in uploads]


def test_the_mood_is_asked_before_the_launch_and_only_for_a_recording_to_launch(launcher, queues, resources,
                                                                                settings, samples):
    instance, gql = launcher
    events = []

    def launch(request):
        events.extend(("launch", rid) for rid in recordings_of_run(request.tags))
        return gql.launch(request)

    rid = upload_file(settings, samples["ja_tired"]["path"], "ingest-early")
    assert ingest_once(queues, resources["store"], instance, resources["tracker"], launch, 10, LOG,
                       early=_Asked(events)) == 1
    assert events == [("mood", rid), ("launch", rid)]
    # Its duplicate: the run exists, nothing is launched and no model is asked.
    key = f"uploads/ingest-early/{rid}{samples['ja_tired']['path'].suffix}"
    queues.send({"recording_id": rid, "s3_key": key, "user_id": "ingest-early"})
    assert ingest_once(queues, resources["store"], instance, resources["tracker"], launch, 10, LOG,
                       early=_Asked(events)) == 0
    assert events == [("mood", rid), ("launch", rid)]


def test_uploads_arriving_during_a_hold_have_their_moods_asked_then_share_a_run(launcher, queues, resources,
                                                                                settings, samples):
    instance, gql = launcher
    events, gathered = [], []
    rids = [upload_file(settings, samples[name]["path"], "ingest-held") for name in ("en_joy", "en_neutral")]
    deadline = time.monotonic() + 10
    while {("mood", rid) for rid in rids} - set(events) and time.monotonic() < deadline:
        gather(queues, resources["store"], resources["tracker"], gathered, _Asked(events))
    assert sorted(events) == sorted(("mood", rid) for rid in rids)  # asked while held
    assert not any(_runs_of(instance, rid) for rid in rids)  # nothing launched during the hold
    assert queues.depth() == {"visible": 0, "in_flight": len(gathered)}  # received, kept

    # The hold ends: one pass launches what gathered, together, and settles its messages.
    assert ingest_once(queues, resources["store"], instance, resources["tracker"], gql.launch, 10, LOG,
                       gathered=gathered) == 2
    assert gathered == []
    [run] = {r.run_id: r for rid in rids for r in _runs_of(instance, rid)}.values()
    assert sorted(recordings_of_run(run.tags)) == sorted(rids)
    assert queues.depth() == {"visible": 0, "in_flight": 0}

    # A duplicate notice gathered during a later hold: no second run (the early mood asks
    # each upload once, test_early_mood.py).
    key = f"uploads/ingest-held/{rids[0]}{samples['en_joy']['path'].suffix}"
    queues.send({"recording_id": rids[0], "s3_key": key, "user_id": "ingest-held"})
    while not gathered and time.monotonic() < deadline + 10:
        gather(queues, resources["store"], resources["tracker"], gathered, _Asked(events))
    assert ingest_once(queues, resources["store"], instance, resources["tracker"], gql.launch, 10, LOG,
                       gathered=gathered) == 0
    assert len(_runs_of(instance, rids[0])) == 1 and queues.depth() == {"visible": 0, "in_flight": 0}


def test_a_service_stopped_during_a_hold_lets_its_gathered_messages_go(launcher, queues, settings, samples,
                                                                       monkeypatch):
    instance, _ = launcher
    monkeypatch.setattr(GraphQLLauncher, "holding", lambda self, limit_s: True)  # the run slots stay full
    upload_file(settings, samples["en_joy"]["path"], "ingest-stopped")
    stop = threading.Event()
    service = threading.Thread(target=serve, args=(settings, instance, PROJECT_ROOT / "workspace.yaml", stop))
    service.start()
    deadline = time.monotonic() + 20
    while queues.depth()["in_flight"] == 0 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert queues.depth()["in_flight"] >= 1  # gathered, held
    stop.set()
    service.join(timeout=30)
    assert not service.is_alive()
    assert queues.depth()["in_flight"] == 0 and queues.depth()["visible"] >= 1  # released at once
    for message in queues.receive(10, wait_s=1):
        queues.delete([message])


@pytest.mark.slow
def test_direct_dispatch_skips_an_empty_queue_and_queues_behind_a_waiting_run(tmp_path, local_stack, queues,
                                                                              resources, settings, samples):
    """With room and nothing waiting, the ingest hands the run to the launcher at once;
    with a run already waiting in the queue, the next one queues behind it."""
    import time

    home = prepare_home(tmp_path / "direct", runs="spawn")
    create_storage(home)
    with DagsterInstance.from_config(str(home)) as instance:
        gql = GraphQLLauncher(PROJECT_ROOT / "workspace.yaml", instance)
        try:
            first = upload_file(settings, samples["en_neutral"]["path"], "ingest-direct")
            assert ingest_once(queues, resources["store"], instance, resources["tracker"], gql.launch, 10, LOG) == 1
            [run] = _runs_of(instance, first)
            assert gql.dispatched == {"direct": 1, "queued": 0} and run.status != DagsterRunStatus.QUEUED
            deadline = time.monotonic() + 120  # it runs: wait for it, leave no process behind
            while not instance.get_run_by_id(run.run_id).is_finished and time.monotonic() < deadline:
                time.sleep(0.5)
            assert instance.get_run_by_id(run.run_id).status == DagsterRunStatus.SUCCESS
            assert resources["tracker"].status.get(first)["stage"] == "complete"

            gql.direct = False  # a run left waiting in the queue (no daemon here dequeues it)
            waiting = upload_file(settings, samples["en_neutral"]["path"], "ingest-direct")
            ingest_once(queues, resources["store"], instance, resources["tracker"], gql.launch, 10, LOG)
            gql.direct = True
            behind = upload_file(settings, samples["en_neutral"]["path"], "ingest-direct")
            ingest_once(queues, resources["store"], instance, resources["tracker"], gql.launch, 10, LOG)
            assert [r.status for r in _runs_of(instance, waiting) + _runs_of(instance, behind)] == [
                DagsterRunStatus.QUEUED, DagsterRunStatus.QUEUED]
            assert gql.dispatched["queued"] == 2
        finally:
            gql.close()
