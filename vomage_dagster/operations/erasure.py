"""Erase a user: every place the platform writes, emptied of that user's recordings.

Found from three sides, so a recording stuck anywhere in the chain is not missed: the
user's uploads in S3, their records in VoiceRecords, and status items whose upload key
is theirs. For each recording: its S3 objects (upload, media copy, stage outputs, image,
Transcribe output), its rows in daily tables, reprocessing results and batch files, its
records and status items, its Redis keys, queue and dead-letter messages naming it, the
refused-message notes, and in Dagster its partitions and the runs (with their event logs
and the metadata they carry) that processed it. Then the user's own item in the users
table (their username and first sign-in). Their account in the app's Cognito user pool is
the pool's to delete (an operator's AdminDeleteUser), not the platform's data.

A batch run that covered this user's recordings and others' is deleted whole, since
Dagster's open-source storage cannot wipe single partitions' events: the others'
recordings keep all their data, and only lose that run's history in the Dagster UI.
Reports (`reports/`) hold aggregates only (counts and means, no ids) and are left.
"""

from __future__ import annotations

import io
import json
import re
from collections import Counter
from typing import Any
from urllib.parse import unquote_plus

from vomage_dagster.domain import prompts, streamed
from vomage_dagster.domain.keys import UPLOADS_PREFIX, parse_upload_key, processed_key
from vomage_dagster.resources.cache import Cache
from vomage_dagster.resources.queue import UploadQueue
from vomage_dagster.resources.records import RecordsTable
from vomage_dagster.resources.status_table import StatusTable
from vomage_dagster.resources.store import ObjectStore
from vomage_dagster.resources.users import UsersTable

_USER = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")


def _recordings(user_id: str, store: ObjectStore, records: RecordsTable, status: StatusTable) -> dict[str, dict]:
    """recording id → what is known of it (upload key, sha256, record)."""
    found: dict[str, dict] = {}
    for obj in store.list(f"{UPLOADS_PREFIX}{user_id}/"):
        parsed = parse_upload_key(obj.key)
        if parsed:
            found.setdefault(parsed.recording_id, {})["upload_key"] = obj.key
    for record in records.for_user(user_id):
        found.setdefault(record["recording_id"], {})["record"] = record
    for item in status.for_upload_prefix(f"{UPLOADS_PREFIX}{user_id}/"):
        info = found.setdefault(item["recording_id"], {})
        info.setdefault("upload_key", item["upload_key"])
        info["attempts"] = int(item.get("attempt", 1))
    for rid, info in found.items():
        raw = store.get_json_or_none(processed_key(rid, "raw_recording.json")) or {}
        info["sha256"] = raw.get("sha256") or (info.get("record") or {}).get("audio_sha256")
    return found


def _rewrite_jsonl(store: ObjectStore, prefix: str, rids: set[str], fields: tuple[str, ...]) -> int:
    """Drop the lines naming one of `rids` from every JSONL under `prefix`; lines removed."""
    removed = 0
    for obj in list(store.list(prefix)):
        if not obj.key.endswith((".jsonl", ".jsonl.out")):
            continue
        lines = store.get_bytes(obj.key).decode("utf-8").splitlines()
        kept = [line for line in lines if not line.strip()
                or not any(json.loads(line).get(f) in rids for f in fields)]
        if len(kept) != len(lines):
            removed += len(lines) - len(kept)
            store.put_bytes(obj.key, ("\n".join(kept) + "\n").encode("utf-8"), "application/x-ndjson")
    return removed


def _rewrite_tables(store: ObjectStore, user_id: str) -> int:
    """Drop the user's rows from every daily table; rows removed."""
    import pyarrow.parquet as pq

    from vomage_dagster.domain import tables

    removed = 0
    for obj in list(store.list("tables/voice_records/")):
        if not obj.key.endswith(".parquet"):
            continue
        table = tables.read_parquet(store.get_bytes(obj.key))
        mask = [u != user_id for u in table.column("user_id").to_pylist()]
        if all(mask):
            continue
        kept = table.filter(mask)
        removed += table.num_rows - kept.num_rows
        out = io.BytesIO()
        pq.write_table(kept, out, compression="zstd")
        store.put_bytes(obj.key, out.getvalue(), "application/vnd.apache.parquet")
    return removed


def _erase_dagster(instance: Any, found: dict[str, dict]) -> Counter:
    from dagster import RunsFilter

    from vomage_dagster.assets.partitions import recordings
    from vomage_dagster.domain.run_tags import recording_tag

    done: Counter = Counter()
    doomed: set[str] = set()
    for rid, info in found.items():
        filters = [{recording_tag(rid): str(a)} for a in range(1, info.get("attempts", 1) + 2)]
        filters.append({"dagster/partition": rid})
        for tags in filters:
            doomed |= {r.dagster_run.run_id for r in instance.get_run_records(filters=RunsFilter(tags=tags))}
    for run_id in doomed:
        instance.delete_run(run_id)
    done["dagster_runs"] = len(doomed)
    done["dagster_asset_index_rows"] = _refresh_asset_index(instance, doomed)
    existing = set(instance.get_dynamic_partitions(recordings.name))
    for rid in set(found) & existing:
        instance.delete_dynamic_partition(recordings.name, rid)
        done["dagster_partitions"] += 1
    return done


def _refresh_asset_index(instance: Any, deleted_runs: set[str]) -> int:
    """Point each recording asset's cached "latest materialization" past the deleted runs.

    Deleting a run removes its events, but the SQL event storage (SQLite, Postgres) keeps
    a copy of each asset's latest materialization, and a partition-status cache, in its
    `asset_keys` index: both would still name the erased recordings. There is no public
    API to refresh them, so this reaches into the storage's own table (dagster 1.13): the
    row gets the latest remaining materialization and its status cache is dropped (Dagster
    rebuilds it). Returns the rows refreshed."""
    from dagster._core.storage.event_log.schema import AssetKeyTable
    from dagster._serdes import serialize_value

    from vomage_dagster.assets.recording import KEYS

    storage = instance.event_log_storage
    if not deleted_runs or not hasattr(storage, "index_connection"):
        return 0
    refreshed = 0
    for key in KEYS:
        remaining = instance.fetch_materializations(key, limit=1).records
        latest = remaining[0] if remaining else None
        with storage.index_connection() as conn:
            row = conn.execute(AssetKeyTable.select().where(
                AssetKeyTable.c.asset_key == key.to_string())).fetchone()
            if row is None:
                continue
            conn.execute(AssetKeyTable.update().where(AssetKeyTable.c.asset_key == key.to_string()).values(
                last_materialization=serialize_value(latest) if latest else None,
                last_run_id=latest.run_id if latest else None,
                cached_status_data=None))
            refreshed += 1
    return refreshed


def erase_user(user_id: str, store: ObjectStore, records: RecordsTable, status: StatusTable, cache: Cache,
               queue: UploadQueue, instance: Any | None = None, users: UsersTable | None = None) -> Counter:
    """Erase everything of `user_id`; counts of what was removed, per place (`users`: the
    app's users table, whose item goes too)."""
    if not _USER.fullmatch(user_id):
        raise ValueError("a user id is [A-Za-z0-9_-], at most 64 characters")
    found = _recordings(user_id, store, records, status)
    rids = set(found)
    done: Counter = Counter(recordings=len(rids))

    keys = [o.key for o in store.list(f"{UPLOADS_PREFIX}{user_id}/")]
    keys += [o.key for o in store.list(f"{streamed.PREFIX}{user_id}/")]  # sidecars, also audio-less ones
    for rid, info in found.items():
        keys += [o.key for o in store.list(f"processed/{rid}/")]
        keys += [o.key for o in store.list(f"media/{rid}.")]
        if info.get("sha256"):
            keys += [o.key for o in store.list(f"transcribe-output/vomage-{info['sha256'][:32]}")]
    user_marker = f"{UPLOADS_PREFIX}{user_id}/"

    def names(body: str) -> bool:
        """Whether a message body names the user or one of their recordings (S3 events
        carry keys URL-encoded)."""
        plain = unquote_plus(body)
        return user_marker in plain or any(rid in plain for rid in rids)

    for obj in list(store.list("ingest-errors/")):
        note = store.get_json_or_none(obj.key) or {}
        if names(str(note.get("body", ""))) or str(note.get("upload_key", "")).startswith(user_marker):
            keys.append(obj.key)
    # Cache keys first: some are derived from the outputs about to go.
    for rid, info in found.items():
        cache.delete("status", rid)
        if info.get("sha256"):
            cache.delete("transcribe", info["sha256"])
        record = info.get("record") or {}
        if record.get("transcript"):
            model = (record.get("models") or {}).get("analysis", "")
            cache.delete("analysis", prompts.analysis_cache_key(record["transcript"], record["language"], model))
        image = store.get_json_or_none(processed_key(rid, "mood_image.json")) or {}
        if image.get("prompt_hash"):
            cache.delete("image", image["prompt_hash"])
        done["cache_keys"] += 1
    done["s3_objects"] = store.delete_many(sorted(set(keys)))
    done["table_rows"] = _rewrite_tables(store, user_id)
    done["batch_lines"] = _rewrite_jsonl(store, "batch/", rids, ("recordId",))
    done["reprocessed_lines"] = _rewrite_jsonl(store, "reprocessed/", rids, ("recording_id",))
    for info in found.values():
        if info.get("record"):
            records.delete(info["record"])
            done["records"] += 1
    for rid in rids:
        status.delete(rid)
    done["status_items"] = len(rids)

    done["queue_messages"] = queue.delete_matching(names)
    done["dead_letters"] = queue.delete_matching(names, dead_letter=True)
    if instance is not None:
        done.update(_erase_dagster(instance, found))
    if users is not None:
        done["users"] = int(users.delete(user_id))
    return done
