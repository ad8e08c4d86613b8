"""Partition definitions: one dynamic partition per voice recording."""

from dagster import DynamicPartitionsDefinition

# Key = recording id. Dagster recommends at most ~100,000 dynamic partitions per asset:
# partitions of records already rolled into daily tables are to be pruned.
recordings = DynamicPartitionsDefinition(name="recordings")
