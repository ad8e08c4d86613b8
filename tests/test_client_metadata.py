"""Client metadata and identity: every field validated or defaulted, the key's user is the
record's user, a recording id belongs to its first upload, and the validated bytes are
the transcribed bytes."""

from __future__ import annotations

import datetime as dt

import pytest
from dagster import DagsterInstance, materialize
from hypothesis import given, settings
from hypothesis import strategies as st

from vomage_dagster.assets.partitions import recordings
from vomage_dagster.assets.recording import ASSETS
from vomage_dagster.assets.stages import media_copy_key
from vomage_dagster.domain import client_metadata
from vomage_dagster.domain.keys import new_recording_id, parse_upload_key, upload_key
from vomage_dagster.ingest.planner import plan_runs

NOW = dt.datetime(2026, 12, 1, 12, 0, tzinfo=dt.UTC)
UPLOADED = NOW - dt.timedelta(seconds=5)

texts = st.one_of(st.text(max_size=80), st.sampled_from([
    "America", "Europe/Paris", "../../etc/passwd", "/etc/localtime", "UTC", "zone.tab", "nan", "inf", "-1e400",
    "91", "-180.0", "9999-12-31T23:59:59-23:59", "0001-01-01T00:00:00+14:00", "2026-12-01T11:59:00",
    "2031-01-01T00:00:00Z", "2026-12-01T11:00:00+09:00", "en", "zh-CN", "xx-YY", "ja"]))


@settings(max_examples=500, deadline=None)
@given(st.dictionaries(st.sampled_from(["tz", "lat", "lon", "recorded-at", "lang", "user-id"]), texts))
def test_any_metadata_gives_usable_values(meta):
    found = client_metadata.read(meta, UPLOADED, NOW)
    assert client_metadata.EARLIEST <= found.recorded_at <= NOW + client_metadata.CLOCK_SKEW
    assert found.recorded_at.tzinfo is not None
    assert found.time_zone is None or client_metadata.valid_zone(found.time_zone) == found.time_zone
    assert (found.lat is None) == (found.lon is None)
    if found.lat is not None:
        assert -90 <= found.lat <= 90 and -180 <= found.lon <= 180
    assert found.language_hint in (None, "zh-CN", "en-US", "ja-JP")
    assert all(c in ("tz", "lat/lon", "recorded-at", "lang") for c in found.corrections)


@pytest.mark.parametrize(("meta", "expected"), [
    ({"tz": "America"}, {"time_zone": None, "corrections": ("tz",)}),
    ({"tz": "Asia/Tokyo", "lat": "35.6", "lon": "139.7"}, {"time_zone": "Asia/Tokyo", "lat": 35.6}),
    ({"lat": "nan", "lon": "2"}, {"lat": None, "lon": None, "corrections": ("lat/lon",)}),
    ({"lat": "95", "lon": "2"}, {"lat": None}),
    ({"recorded-at": "2031-01-01T00:00:00+00:00"}, {"recorded_at": UPLOADED, "corrections": ("recorded-at",)}),
    ({"recorded-at": "1999-01-01T00:00:00+00:00"}, {"recorded_at": UPLOADED}),
    ({"recorded-at": "9999-12-31T23:59:59-23:59"}, {"recorded_at": UPLOADED}),
    ({"recorded-at": "2026-12-01T11:00:00"}, {"recorded_at": dt.datetime(2026, 12, 1, 11, tzinfo=dt.UTC)}),
    ({"recorded-at": "2026-12-01T19:00:00+09:00"}, {"recorded_at": dt.datetime(2026, 12, 1, 10, tzinfo=dt.UTC)}),
    ({"lang": "xx"}, {"language_hint": None, "corrections": ("lang",)}),
    ({"lang": "ja"}, {"language_hint": "ja-JP"}),
])
def test_each_field_is_validated_or_defaulted(meta, expected):
    found = client_metadata.read(meta, UPLOADED, NOW)
    for name, value in expected.items():
        assert getattr(found, name) == value, name


def _put(settings, resources, user: str, rid: str, data: bytes, meta: dict, ext: str = "m4a") -> str:
    key = upload_key(user, rid, ext)
    resources["store"].put_bytes(key, data, "audio/mp4", meta)
    return key


def test_odd_metadata_never_fails_a_recording_and_the_key_names_the_user(settings, resources, samples):
    rid = new_recording_id()
    _put(settings, resources, "real-owner", rid, samples["en_joy"]["path"].read_bytes(),
         {"user-id": "someone-else", "tz": "America", "lat": "inf", "lon": "1", "lang": "klingon",
          "recorded-at": "9999-12-31T23:59:59-23:59"})
    with DagsterInstance.ephemeral() as instance:
        instance.add_dynamic_partitions(recordings.name, [rid])
        assert materialize(ASSETS, partition_key=rid, instance=instance, resources=resources).success
    record = resources["records"].get(rid)
    assert record["user_id"] == "real-owner"
    assert record["context"]["time_zone"] == "UTC" and record["context"]["place"] is None
    assert resources["tracker"].status.get(rid)["stage"] == "complete"
    raw = resources["store"].get_json(f"processed/{rid}/raw_recording.json")
    assert set(raw["metadata_corrections"]) == {"tz", "lat/lon", "lang", "recorded-at"}


def test_a_recording_id_cannot_be_taken_over_by_another_users_upload(settings, resources, samples):
    rid = new_recording_id()
    data = samples["en_joy"]["path"].read_bytes()
    first = _put(settings, resources, "owner", rid, data, {})
    second = _put(settings, resources, "intruder", rid, data, {})
    with DagsterInstance.ephemeral() as instance:
        plan = plan_runs(instance, resources["tracker"], [parse_upload_key(first), parse_upload_key(second)], 10)
        assert [r.partition_key for r in plan.runs] == [rid] and plan.decisions[rid] == "launch"
        assert "recording_id_taken" in plan.refused[second] and first not in plan.refused
        # Later, the intruder's upload alone: still refused, the owner's recording untouched.
        again = plan_runs(instance, resources["tracker"], [parse_upload_key(second)], 10)
        assert again.runs == [] and second in again.refused and again.decisions[rid] == "refused"
    assert resources["tracker"].status.get(rid)["upload_key"] == first


def test_the_transcribed_object_is_the_validated_one(settings, resources, samples, monkeypatch):
    rid = new_recording_id()
    key = _put(settings, resources, "pin-user", rid, samples["en_joy"]["path"].read_bytes(), {})
    with DagsterInstance.ephemeral() as instance:
        instance.add_dynamic_partitions(recordings.name, [rid])
        assert materialize(ASSETS, selection=["raw_recording"], partition_key=rid, instance=instance,
                           resources=resources).success
        raw = resources["store"].get_json(f"processed/{rid}/raw_recording.json")
        assert raw["media_key"] == media_copy_key(rid, "m4a")
        store = resources["store"]
        # Copied for Transcribe only when the batch job is asked (a streamed transcript needs none).
        assert not store.exists(raw["media_key"])
        resources["cache"].delete("transcribe", raw["sha256"])  # transcribed by Transcribe, not the cache
        assert materialize(ASSETS, selection=["transcript"], partition_key=rid, instance=instance,
                           resources=resources).success
        assert store.get_bytes(raw["media_key"]) == store.get_bytes(key)
        assert store.head(raw["media_key"])["ETag"] == raw["etag"]

        # The upload replaced after it was validated, before the copy: refused, not transcribed.
        rid3 = new_recording_id()
        key3 = _put(settings, resources, "pin-user", rid3, samples["en_joy"]["path"].read_bytes(), {})
        instance.add_dynamic_partitions(recordings.name, [rid3])
        assert materialize(ASSETS, selection=["raw_recording"], partition_key=rid3, instance=instance,
                           resources=resources).success
        store.put_bytes(key3, samples["en_angry"]["path"].read_bytes(), "audio/mp4")
        # Not answered from the transcripts cache (the same audio was transcribed above).
        resources["cache"].delete("transcribe", store.get_json(f"processed/{rid3}/raw_recording.json")["sha256"])
        replaced = materialize(ASSETS, selection=["transcript"], partition_key=rid3, instance=instance,
                               resources=resources, raise_on_error=False)
        assert not replaced.success and not store.exists(media_copy_key(rid3, "m4a"))
        assert resources["tracker"].status.get(rid3)["error"]["code"] == "upload_changed"

        # The upload is replaced after its head was read: the pinned read refuses it.
        real_head = store.head

        def stale_head(k):
            head = real_head(k)
            store.put_bytes(key, samples["en_angry"]["path"].read_bytes(), "audio/mpeg")
            return head

        monkeypatch.setattr(type(store), "head", lambda self, k: stale_head(k))
        rid2 = new_recording_id()
        key = _put(settings, resources, "pin-user", rid2, samples["en_joy"]["path"].read_bytes(), {})
        instance.add_dynamic_partitions(recordings.name, [rid2])
        failed = materialize(ASSETS, selection=["raw_recording"], partition_key=rid2, instance=instance,
                             resources=resources, raise_on_error=False)
    assert not failed.success
    error = resources["tracker"].status.get(rid2)["error"]
    assert error["code"] == "upload_changed" and error["retryable"] is True
