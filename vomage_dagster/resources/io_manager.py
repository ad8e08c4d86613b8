"""Asset outputs as JSON in S3 under `processed/<recording_id>/<asset>.json`.

Keeping every per-recording output in the bucket (not on a run worker's disk) means any
process can load any upstream output: a re-run of one stage, a different machine, or an
operator reading what a stage produced.

A run of several recordings (a batch, see `assets.batching`) hands over
`{recording_id: output}`; a recording missing from it failed in an earlier stage, so it
is neither written nor loaded.
"""

from __future__ import annotations

from typing import Any

from dagster import ConfigurableIOManager, InputContext, OutputContext

from ..domain.keys import processed_key
from .store import ObjectStore


class S3JsonIOManager(ConfigurableIOManager):
    store: ObjectStore

    def _key(self, partition: str, asset_name: str) -> str:
        return processed_key(partition, f"{asset_name}.json")

    def handle_output(self, context: OutputContext, obj: Any) -> None:
        if obj is None:
            return
        name = context.asset_key.path[-1]
        keys = context.asset_partition_keys
        if len(keys) > 1:
            for partition in keys:
                if partition in obj:
                    self.store.put_json(self._key(partition, name), obj[partition])
            return
        key = self._key(keys[0], name)
        self.store.put_json(key, obj)
        context.add_output_metadata({"s3_key": self.store.uri(key)})

    def load_input(self, context: InputContext) -> Any:
        name = context.asset_key.path[-1]
        keys = context.asset_partition_keys
        if len(keys) > 1:
            found = {}
            for partition in keys:
                value = self.store.get_json_or_none(self._key(partition, name))
                if value is not None:
                    found[partition] = value
            return found
        return self.store.get_json(self._key(keys[0], name))
