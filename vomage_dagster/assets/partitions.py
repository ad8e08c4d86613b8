"""Partition definitions: one dynamic partition per voice recording."""

from dagster import (
    DagsterInstance,
    DailyPartitionsDefinition,
    DynamicPartitionsDefinition,
    PartitionKeyRange,
    partition_loading_context,
)

# Key = recording id. Dagster recommends at most ~100,000 dynamic partitions per asset:
# partitions of records already rolled into daily tables are to be pruned.
recordings = DynamicPartitionsDefinition(name="recordings")

# One partition per UTC day: the daily tables, the mood report, batch reprocessing.
days = DailyPartitionsDefinition(start_date="2026-01-01", timezone="UTC", end_offset=1)


def recordings_in_range(instance: DagsterInstance, start: str, end: str) -> list[str]:
    """The recordings a partition range covers."""
    with partition_loading_context(dynamic_partitions_store=instance):
        return list(recordings.get_partition_keys_in_range(PartitionKeyRange(start, end)))
