"""Asset outputs as JSON in S3 under `processed/<recording_id>/<asset>.json`.

Keeping every per-recording output in the bucket (not on a run worker's disk) means any
process can load any upstream output: a re-run of one stage, a different machine, or an
operator reading what a stage produced.

A run of several recordings (a batch, see `assets.batching`) hands over
`{recording_id: output}`; a recording missing from it failed in an earlier stage, so it
is neither written nor loaded.

Writes go to S3 every time; an input produced earlier in the same run is read back from
this process's memory (`RunOutputs`) instead of S3: the bytes are the ones just written,
and a six-asset chain then makes one S3 write per output and no reads.
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from typing import Any

from dagster import ConfigurableIOManager, DagsterInvariantViolationError, InputContext, OutputContext

from ..domain.keys import processed_key
from .store import ObjectStore


class RunOutputs:
    """The JSON text of outputs written in this process, by (run id, S3 key); bounded."""

    def __init__(self, max_entries: int = 1000):
        self._texts: OrderedDict[tuple[str, str], str] = OrderedDict()
        self._lock = threading.Lock()
        self.max_entries = max_entries

    def put(self, run_id: str, key: str, obj: Any) -> None:
        with self._lock:
            self._texts[(run_id, key)] = json.dumps(obj, ensure_ascii=False, default=str)
            while len(self._texts) > self.max_entries:
                self._texts.popitem(last=False)

    def get(self, run_id: str, key: str) -> Any:
        with self._lock:
            text = self._texts.get((run_id, key))
        return None if text is None else json.loads(text)


_written = RunOutputs()


def _run_id(context: InputContext) -> str | None:
    """The run loading the input; None outside a run (an input context built by hand)."""
    try:
        return context.step_context.run_id
    except DagsterInvariantViolationError:
        return None


class S3JsonIOManager(ConfigurableIOManager):
    store: ObjectStore

    def _key(self, partition: str, asset_name: str) -> str:
        return processed_key(partition, f"{asset_name}.json")

    def _put(self, run_id: str, key: str, obj: Any) -> None:
        self.store.put_json(key, obj)
        _written.put(run_id, key, obj)

    def _get(self, run_id: str | None, key: str, required: bool) -> Any:
        found = _written.get(run_id, key) if run_id else None
        if found is not None:
            return found
        return self.store.get_json(key) if required else self.store.get_json_or_none(key)

    def handle_output(self, context: OutputContext, obj: Any) -> None:
        if obj is None:
            return
        name = context.asset_key.path[-1]
        keys = context.asset_partition_keys
        if len(keys) > 1:
            for partition in keys:
                if partition in obj:
                    self._put(context.run_id, self._key(partition, name), obj[partition])
            return
        key = self._key(keys[0], name)
        self._put(context.run_id, key, obj)
        context.add_output_metadata({"s3_key": self.store.uri(key)})

    def load_input(self, context: InputContext) -> Any:
        name = context.asset_key.path[-1]
        keys = context.asset_partition_keys
        run_id = _run_id(context)
        if len(keys) > 1:
            found = {}
            for partition in keys:
                value = self._get(run_id, self._key(partition, name), required=False)
                if value is not None:
                    found[partition] = value
            return found
        return self._get(run_id, self._key(keys[0], name), required=True)
