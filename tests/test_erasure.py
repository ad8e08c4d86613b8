"""`vomage user erase`: a user uploads, is processed, batched, tabled, reprocessed and
refused once; after the erasure every place the platform writes is searched and holds
nothing of theirs, while another user's recording processed beside theirs is intact."""

from __future__ import annotations

import json
import uuid

import pytest
from dagster import AssetKey, DagsterInstance, materialize

from vomage_dagster.assets import daily, reprocessing
from vomage_dagster.assets.partitions import recordings
from vomage_dagster.assets.recording import ASSETS
from vomage_dagster.domain import tables
from vomage_dagster.domain.keys import parse_upload_key, upload_key
from vomage_dagster.ingest.planner import plan_runs
from vomage_dagster.local.client.uploads import upload_file
from vomage_dagster.operations.erasure import erase_user
from vomage_dagster.resources.aws import client
from vomage_dagster.resources.users import UsersTable

TODAY = __import__("datetime").datetime.now(__import__("datetime").UTC).date().isoformat()


@pytest.fixture()
def instance():
    with DagsterInstance.ephemeral() as inst:
        yield inst


def _scan(table: str, region: str) -> list[dict]:
    ddb = client("dynamodb", region)
    items, start = [], None
    while True:
        kwargs = {"TableName": table, **({"ExclusiveStartKey": start} if start else {})}
        resp = ddb.scan(**kwargs)
        items += resp["Items"]
        start = resp.get("LastEvaluatedKey")
        if not start:
            return items


def test_erase_leaves_nothing_of_the_user_anywhere(instance, settings, resources, samples, queues, ingest):
    user, other = f"erase-{uuid.uuid4().hex[:8]}", f"keep-{uuid.uuid4().hex[:8]}"
    store, records, tracker, cache = resources["store"], resources["records"], resources["tracker"], resources["cache"]
    mine = [upload_file(settings, samples[n]["path"], user, lat="48.8566", lon="2.3522", tz="Europe/Paris")
            for n in ("en_joy", "en_angry")]
    theirs = upload_file(settings, samples["zh_sad"]["path"], other, lang="zh-CN")
    ext = {mine[0]: "m4a", mine[1]: "mp3", theirs: "webm"}
    owners = {mine[0]: user, mine[1]: user, theirs: other}
    # One batch run over both users' recordings, as the ingest micro-batches them.
    arrivals = [parse_upload_key(upload_key(owners[r], r, ext[r])) for r in (*mine, theirs)]
    (request,) = plan_runs(instance, tracker, arrivals, 10).runs
    assert materialize(ASSETS, instance=instance, resources=resources, tags=request.tags).success
    assert materialize(daily.ASSETS, partition_key=TODAY, instance=instance, resources=resources).success
    assert materialize(reprocessing.ASSETS[:1], partition_key=TODAY, instance=instance, resources=resources,
                       run_config={"ops": {"mood_reprocessed": {"config": {
                           "version": f"erase-{uuid.uuid4().hex[:6]}"}}}}).success
    # A refused message naming the user, kept in ingest-errors/ and bound for the dead letters.
    queues.send({"recording_id": mine[0], "s3_key": upload_key(user, "other-id", "m4a"), "user_id": user})
    queues.send({"recording_id": mine[0], "s3_key": upload_key(user, mine[0], "m4a"), "user_id": user},
                dead_letter=True)
    ingest()
    shas = [store.get_json(f"processed/{r}/raw_recording.json")["sha256"] for r in mine]
    assert cache.get_json("transcribe", shas[0]) is not None

    # Both users signed in to the app once: each has an item in the users table.
    users = UsersTable(table_name=settings.users_table, region_name=settings.region)
    assert users.first_sign_in(user, f"name-of-{user}") and users.first_sign_in(other, f"name-of-{other}")

    done = erase_user(user, store, records, tracker.status, cache, queues, instance, users)
    assert done["recordings"] == 2 and done["records"] == 2 and done["table_rows"] == 2
    assert done["users"] == 1 and users.get(user) is None and users.by_username(f"name-of-{user}") == []
    assert done["dagster_runs"] >= 1 and done["dead_letters"] == 1

    needles = [user, *mine]

    def holds(text: str) -> bool:
        return any(n in text for n in needles)

    # S3: every object's key and content (tables decoded row by row).
    for obj in store.list(""):
        assert not holds(obj.key), obj.key
        data = store.get_bytes(obj.key)
        if obj.key.endswith(".parquet"):
            rows = tables.read_parquet(data).to_pylist()
            assert not any(holds(json.dumps(r, default=str)) for r in rows), obj.key
        elif not obj.key.endswith(".png"):
            assert not holds(data.decode("utf-8", "ignore")), obj.key
    # DynamoDB: both tables, every attribute.
    for table in (settings.status_table, settings.records_table, settings.users_table):
        assert not any(holds(json.dumps(item)) for item in _scan(table, settings.region)), table
    # Redis: every key name and value, and the keys derived from the user's audio.
    r = cache.redis
    for key in r.scan_iter(count=1000):
        value = r.get(key) if r.type(key) == b"string" else b""
        assert not holds(key.decode()) and not holds((value or b"").decode("utf-8", "ignore")), key
    assert all(cache.get_json("transcribe", sha) is None for sha in shas)
    # Both queues.
    for dead_letter in (False, True):
        seen = queues.receive(10, dead_letter=dead_letter, visibility_s=1)
        assert not any(holds(m.body) for m in seen)
    # Dagster: runs, partitions, materializations (with their metadata).
    assert not any(holds(json.dumps(dict(run.tags))) for run in instance.get_runs())
    assert not set(mine) & set(instance.get_dynamic_partitions(recordings.name))
    for asset in ("raw_recording", "transcript", "mood", "mood_image", "published_record"):
        events = instance.fetch_materializations(AssetKey(asset), limit=1000).records
        assert not any(e.partition_key in mine for e in events), asset
        latest = instance.get_latest_materialization_event(AssetKey(asset))
        assert latest is None or latest.dagster_event.partition not in mine
        assert not holds(str(instance.get_asset_records([AssetKey(asset)]))), asset  # the index rows

    # The other user's recording, processed in the same run, keeps its data.
    assert records.get(theirs)["user_id"] == other
    assert users.get(other)["username"] == f"name-of-{other}"
    assert store.exists(f"processed/{theirs}/published_record.json")
    table = tables.read_parquet(store.get_bytes(daily.table_key(TODAY))).to_pylist()
    assert any(row["recording_id"] == theirs for row in table)


def test_status_items_and_records_carry_their_expiry(settings, resources, samples, instance):
    import datetime as dt

    from vomage_dagster.domain import lifetimes

    rid = upload_file(settings, samples["en_joy"]["path"], f"ttl-{uuid.uuid4().hex[:6]}")
    instance.add_dynamic_partitions(recordings.name, [rid])
    assert materialize(ASSETS, partition_key=rid, instance=instance, resources=resources).success
    now = dt.datetime.now(dt.UTC).timestamp()
    item = resources["tracker"].status.get(rid)
    assert abs(item["expires_at"] - (now + lifetimes.STATUS_DAYS * lifetimes.DAY)) < 600
    record = resources["records"].get(rid)
    recorded = dt.datetime.fromisoformat(record["recorded_at"]).timestamp()
    assert record["expires_at"] == int(recorded) + lifetimes.RECORD_DAYS * lifetimes.DAY
