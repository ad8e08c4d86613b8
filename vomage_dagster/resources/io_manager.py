"""Asset outputs as JSON in S3 under `processed/<partition>/<asset>.json`.

Used by the assets that return values (the daily tables, reprocessing); the recording
assets write their stage outputs themselves (`assets/runner.py`), in the same place.
Keeping outputs in the bucket, not on a worker's disk, means any process can load them.
"""

from __future__ import annotations

from typing import Any

from dagster import ConfigurableIOManager, InputContext, OutputContext

from vomage_dagster.domain.keys import processed_key
from vomage_dagster.resources.store import ObjectStore


class S3JsonIOManager(ConfigurableIOManager):
    store: ObjectStore

    def _key(self, partition: str, asset_name: str) -> str:
        return processed_key(partition, f"{asset_name}.json")

    def handle_output(self, context: OutputContext, obj: Any) -> None:
        if obj is None:
            return
        key = self._key(context.asset_partition_keys[0], context.asset_key.path[-1])
        self.store.put_json(key, obj)
        context.add_output_metadata({"s3_key": self.store.uri(key)})

    def load_input(self, context: InputContext) -> Any:
        return self.store.get_json(self._key(context.asset_partition_keys[0], context.asset_key.path[-1]))
