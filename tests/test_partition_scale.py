"""Dagster recommends at most 100,000 partitions per asset: at that ceiling the ingest
still registers a new recording's partition, its run still materializes
`published_record`, and the UI's partition view of the asset still answers. (Their
times at 0 / 10k / 100k are the benchmark's: `python -m benchmarks.partitions`.)"""

from __future__ import annotations

import pytest
from dagster import DagsterInstance

from vomage_dagster.assets.partitions import recordings
from vomage_dagster.domain.keys import parse_upload_key, upload_key
from vomage_dagster.domain.lifetimes import MAX_PARTITIONS
from vomage_dagster.local.client.uploads import upload_file
from vomage_dagster.testing import partition_scale as scale

pytestmark = pytest.mark.slow


@pytest.fixture()
def full_instance(tmp_path):
    """A SQLite instance on disk (the local deployment's storage) holding the ceiling's partitions."""
    home = tmp_path / "home"
    home.mkdir()
    with DagsterInstance.local_temp(str(home)) as instance:
        assert scale.preload(instance, MAX_PARTITIONS) == MAX_PARTITIONS
        yield instance


def test_at_100k_partitions_ingest_publish_and_the_ui_partition_view_work(full_instance, resources, settings,
                                                                          samples, tmp_path):
    instance = full_instance
    rid = upload_file(settings, samples["en_joy"]["path"], "scale")
    plan, _ = scale.register(instance, resources["tracker"], parse_upload_key(upload_key("scale", rid, "m4a")))
    assert plan.added_partitions == [rid]
    (request,) = plan.runs
    assert request.partition_key == rid
    assert instance.has_dynamic_partition(recordings.name, rid)
    assert len(instance.get_dynamic_partitions(recordings.name)) == MAX_PARTITIONS + 1

    result, _ = scale.publish(instance, resources, request)
    assert result.success
    assert scale.published_partition(instance) == rid
    assert resources["records"].get(rid)["recording_id"] == rid

    with scale.ui_context(instance, tmp_path) as context:
        node, _ = scale.partition_view(context)
    assert node["__typename"] == "AssetNode"
    (dimension,) = node["partitionKeysByDimension"]
    assert len(dimension["partitionKeys"]) == MAX_PARTITIONS + 1
    assert node["partitionStats"]["numPartitions"] == MAX_PARTITIONS + 1
    assert node["partitionStats"]["numMaterialized"] == 1
    statuses = node["assetPartitionStatuses"]
    assert statuses["materializedPartitions"] == [rid]
