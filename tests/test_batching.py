"""Micro-batching: recordings that arrive together run as one partition range, and a
bad recording in a batch fails alone."""

import pytest
from dagster import AssetKey, DagsterInstance, materialize
from dagster._core.storage.partition_status_cache import AssetPartitionStatus

from vomage_dagster.assets.partitions import recordings
from vomage_dagster.assets.partitions import recordings_in_range as keys_in_range
from vomage_dagster.assets.recording import ASSETS, ORDER
from vomage_dagster.domain import quality
from vomage_dagster.domain.keys import UploadKey, parse_upload_key, processed_key, upload_key
from vomage_dagster.domain.run_tags import BATCH_TAG, recordings_of_run
from vomage_dagster.ingest.planner import plan_runs
from vomage_dagster.local.client.uploads import upload_file


@pytest.fixture()
def instance():
    with DagsterInstance.ephemeral() as inst:
        yield inst


def uploads(n: int, prefix: str) -> list[UploadKey]:
    return [UploadKey(key=f"uploads/u/{prefix}-{i}.m4a", user_id="u", recording_id=f"{prefix}-{i}",
                      extension="m4a") for i in range(n)]


def covered(plan) -> list[list[str]]:
    return [list(recordings_of_run(r.tags)) for r in plan.runs]


def test_a_burst_is_cut_into_batches_of_at_most_the_limit(instance, resources):
    plan = plan_runs(instance, resources["tracker"], uploads(5, "rec-cut"), max_batch=2)
    assert [len(b) for b in covered(plan)] == [2, 2, 1]
    assert instance.get_dynamic_partitions(recordings.name)[-5:] == [f"rec-cut-{i}" for i in range(5)]
    two = plan.runs[0]
    assert two.tags[BATCH_TAG] == "2" and two.partition_key_range.start == "rec-cut-0"
    assert plan.runs[-1].partition_key == "rec-cut-4"


def test_a_partition_added_by_another_writer_splits_the_batch(instance, resources, monkeypatch):
    """A range covers every partition between its ends: one that is not ours must not be inside."""
    add = instance.add_dynamic_partitions

    def interleaved(name, keys):
        add(name, keys[:2])
        add(name, ["rec-foreign"])
        add(name, keys[2:])

    monkeypatch.setattr(instance, "add_dynamic_partitions", interleaved)
    plan = plan_runs(instance, resources["tracker"], uploads(4, "rec-split"), max_batch=10)
    assert covered(plan) == [["rec-split-0", "rec-split-1"], ["rec-split-2", "rec-split-3"]]
    for request in plan.runs:
        keys = keys_in_range(instance, *request.partition_key_range)
        assert "rec-foreign" not in keys


def test_a_recording_whose_partition_exists_runs_alone(instance, resources):
    tracker = resources["tracker"]
    old, *new = uploads(3, "rec-again")
    instance.add_dynamic_partitions(recordings.name, [old.recording_id])
    plan = plan_runs(instance, tracker, [old, *new], max_batch=10)
    assert covered(plan) == [[old.recording_id], [u.recording_id for u in new]]
    assert plan.runs[0].partition_key == old.recording_id


def test_a_batch_run_completes_the_good_and_fails_the_bad_alone(instance, resources, settings,
                                                                samples, tmp_path):
    bad = tmp_path / "broken.m4a"
    bad.write_bytes(b"\x00not audio at all" * 400)
    rids = [upload_file(settings, samples["en_joy"]["path"], "batch"),
            upload_file(settings, bad, "batch"),
            upload_file(settings, samples["en_angry"]["path"], "batch")]
    arrivals = [parse_upload_key(upload_key("batch", rid, ext))
                for rid, ext in zip(rids, ("m4a", "m4a", "mp3"), strict=True)]
    plan = plan_runs(instance, resources["tracker"], arrivals, max_batch=10)
    (request,) = plan.runs
    result = materialize(ASSETS, instance=instance, resources=resources, tags=request.tags,
                         raise_on_error=False)
    assert not result.success  # one recording of it failed: the run says so
    status = resources["tracker"].status
    good = [rids[0], rids[2]]
    assert [status.get(r)["stage"] for r in good] == ["complete", "complete"]
    failed = status.get(rids[1])
    assert failed["stage"] == "failed" and failed["error"]["code"] == "undecodable"
    store = resources["store"]
    assert not store.exists(processed_key(rids[1], "raw_recording.json"))
    assert all(store.exists(processed_key(r, "published_record.json")) for r in good)
    # Materialized: each asset of each good recording, once; nothing for the bad one,
    # whose failed asset carries an observation saying why.
    events = result.asset_materializations_for_node("recording_chain")
    assert sorted((e.asset_key.path[-1], e.partition) for e in events) == sorted(
        (name, r) for name in ORDER for r in good)
    (why,) = result.asset_observations_for_node("recording_chain")
    assert (why.asset_key.path[-1], why.partition) == ("raw_recording", rids[1])
    assert why.metadata["outcome"].value.startswith("failed: undecodable")
    # The catalog agrees with the status table, through the instance's own partition status.
    for name in ORDER:
        by_partition = instance.get_status_by_partition(AssetKey(name), rids, recordings)
        assert by_partition == {rids[0]: AssetPartitionStatus.MATERIALIZED, rids[1]: AssetPartitionStatus.FAILED,
                                rids[2]: AssetPartitionStatus.MATERIALIZED}, (name, by_partition)
    # Each good recording's outputs got their quality checks, per partition, in the batch run.
    checks = [e.event_specific_data for e in result.all_events if e.event_type_value == "ASSET_CHECK_EVALUATION"]
    assert {(c.asset_key.path[-1], c.check_name, c.partition) for c in checks} == {
        (asset, name, rid) for asset, (name, _) in quality.CHECKS.items() for rid in (rids[0], rids[2])}
    assert all(c.passed for c in checks), [(c.check_name, c.description) for c in checks if not c.passed]


def test_a_batch_where_every_recording_fails_fails_the_run(instance, resources, settings, tmp_path):
    bad = tmp_path / "broken.m4a"
    bad.write_bytes(b"\x00not audio" * 400)
    rids = [upload_file(settings, bad, "batch-bad") for _ in range(2)]
    arrivals = [parse_upload_key(upload_key("batch-bad", r, "m4a")) for r in rids]
    (request,) = plan_runs(instance, resources["tracker"], arrivals, max_batch=10).runs
    result = materialize(ASSETS, instance=instance, resources=resources, tags=request.tags,
                         raise_on_error=False)
    assert not result.success
    assert {resources["tracker"].status.get(r)["error"]["code"] for r in rids} == {"undecodable"}
