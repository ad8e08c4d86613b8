"""Keys, transcripts, status order and the upload sweep's cursor: pure code."""

import datetime as dt

from vomage_dagster.domain import lifecycle as st
from vomage_dagster.domain.keys import decode_event_key, parse_upload_key, upload_key
from vomage_dagster.domain.transcript import parse_transcribe_output, to_transcribe_code
from vomage_dagster.domain.upload_cursor import LOOKBACK, UploadCursor, take_new


def test_upload_keys_round_trip_and_reject_strangers():
    key = upload_key("user-1", "rec-42", ".M4A")
    assert key == "uploads/user-1/rec-42.m4a"
    parsed = parse_upload_key(key)
    assert (parsed.user_id, parsed.recording_id, parsed.extension) == ("user-1", "rec-42", "m4a")
    for bad in ("uploads/rec.m4a", "processed/u/r.m4a", "uploads/u/../r.m4a", "uploads/u/r r.m4a"):
        assert parse_upload_key(bad) is None
    assert decode_event_key("uploads/u/a+b%2Bc.m4a") == "uploads/u/a b+c.m4a"


def test_transcribe_output_is_parsed():
    doc = {"results": {
        "language_code": "en-US",
        "language_identification": [{"code": "en-US", "score": "0.97"}],
        "transcripts": [{"transcript": "hello there"}],
        "audio_segments": [{"id": 0, "transcript": "hello there", "start_time": "0.1",
                            "end_time": "1.2"}],
        "items": [{"type": "pronunciation", "alternatives": [{"confidence": "0.9", "content": "hello"}]},
                  {"type": "pronunciation", "alternatives": [{"confidence": "0.7", "content": "there"}]},
                  {"type": "punctuation", "alternatives": [{"confidence": "0.0", "content": "."}]}],
    }}
    t = parse_transcribe_output(doc)
    assert (t.text, t.language, t.confidence) == ("hello there", "en-US", 0.8)
    assert t.segments[0].end == 1.2
    assert to_transcribe_code("zh") == "zh-CN" and to_transcribe_code("ja-JP") == "ja-JP"
    assert to_transcribe_code("fr") is None and to_transcribe_code(None) is None


def test_stages_only_move_forward():
    order = [st.RANK[s] for s in (st.UPLOADED, st.TRANSCRIBING, st.ANALYZING, st.GENERATING, st.COMPLETE)]
    assert order == sorted(order)
    assert st.seconds_left(st.COMPLETE) == 0 and st.seconds_left(st.UPLOADED) > st.seconds_left(st.GENERATING)


T0 = dt.datetime(2026, 11, 29, 12, 0, tzinfo=dt.UTC)


def _tick(objects, cursor, limit=10, now=T0 + dt.timedelta(minutes=1)):
    """One upload-sweep tick over `objects` (listed in key order from the cursor's position)."""
    listing = sorted(o for o in objects if cursor.position is None or o[0] > cursor.position)
    taken, position = take_new(listing, cursor, limit)
    return taken, UploadCursor.from_json(cursor.advance(taken, position, now).to_json())


def test_cursor_never_repeats_and_resumes_a_large_listing_across_ticks():
    listed = [(f"uploads/u/r{i}.m4a", T0 + dt.timedelta(seconds=i)) for i in range(5)]
    taken, cursor = _tick(listed, UploadCursor(), limit=3)
    assert [k for k, _ in taken] == ["uploads/u/r0.m4a", "uploads/u/r1.m4a", "uploads/u/r2.m4a"]
    assert cursor.position == "uploads/u/r2.m4a"
    taken, cursor = _tick(listed, cursor, limit=3)
    assert [k for k, _ in taken] == ["uploads/u/r3.m4a", "uploads/u/r4.m4a"] and cursor.position is None
    assert _tick(listed, cursor, limit=3)[0] == []


def test_an_upload_landing_behind_the_position_mid_pass_is_taken_next_pass():
    listed = [(f"uploads/u/r{i}.m4a", T0 + dt.timedelta(seconds=i)) for i in range(1, 5)]
    _, cursor = _tick(listed, UploadCursor(), limit=2, now=T0)
    # A key sorting before the position lands while the pass goes on, and much later keys too.
    late = ("uploads/u/a.m4a", T0 + dt.timedelta(seconds=30))
    later = [(f"uploads/u/z{i}.m4a", T0 + dt.timedelta(minutes=10)) for i in range(2)]
    taken, cursor = _tick([late, *listed, *later], cursor, limit=10)
    assert late not in taken and cursor.position is None
    taken, _ = _tick([late, *listed, *later], cursor, limit=10)
    assert taken == [late]


def test_cursor_catches_a_late_listed_object_within_the_window():
    _, cursor = _tick([("uploads/u/b.m4a", T0)], UploadCursor())
    late = ("uploads/u/a.m4a", T0 - dt.timedelta(seconds=30))  # appeared after b was seen
    too_old = ("uploads/u/z.m4a", T0 - LOOKBACK - dt.timedelta(seconds=1))
    taken, _ = _tick([late, too_old, ("uploads/u/b.m4a", T0)], cursor)
    assert taken == [late]


def test_object_links_on_aws_open_the_console_page():
    from vomage_dagster.resources.store import ObjectStore

    store = ObjectStore(bucket="vomage-recordings", region_name="eu-west-1",
                        endpoint_url="https://s3.eu-west-1.amazonaws.com")
    assert store.browser_url("processed/rec 1/image.png") == (
        "https://console.aws.amazon.com/s3/object/vomage-recordings?region=eu-west-1"
        "&prefix=processed/rec%201/image.png")


def test_quality_checks_flag_what_deserves_a_look():
    from vomage_dagster.domain import quality

    good = {"text": "I am happy today", "language": "en-US", "confidence": 0.9}
    assert quality.transcript_check(good, 3.0).passed
    assert not quality.transcript_check({**good, "confidence": 0.2}, 3.0).passed
    assert not quality.transcript_check({**good, "language": "en-US", "text": "今天"}, 3.0).passed
    assert not quality.transcript_check({**good, "text": "word " * 500}, 3.0).passed
    assert quality.image_check({"width": 1024, "height": 1024, "image_key": "processed/r/image.png"}).passed
    assert not quality.image_check({"width": 1024, "height": 768, "image_key": "processed/r/image.png"}).passed
    assert not quality.mood_check({"primary_emotion": "joy"}).passed


def test_the_partition_window_keeps_every_recording_asset_under_dagsters_limit():
    from vomage_dagster.domain import lifetimes

    assert lifetimes.PARTITION_DAYS == lifetimes.partition_days(lifetimes.PLANNED_RECORDINGS_PER_DAY) == 2
    assert lifetimes.PARTITION_DAYS * lifetimes.PLANNED_RECORDINGS_PER_DAY <= 0.8 * lifetimes.MAX_PARTITIONS
    assert lifetimes.partition_days(3_600_000) == 1  # 100,000 concurrent users: prune daily, keep one day


def test_the_retention_window_follows_the_rate_and_the_ceiling():
    from vomage_dagster.domain import lifetimes

    hours = lifetimes.partition_window_hours
    assert hours(36_000 / lifetimes.DAY) == 53  # the planned volume: 80,000 / 36,000 a day
    assert hours(1.0) == 22 and hours(5.0) == 4 and hours(1000.0) == 1
    rate = lifetimes.RETENTION_RECORDINGS_PER_S
    assert rate >= lifetimes.MEASURED_RECORDINGS_PER_S
    # Flat out at that rate, a window plus the hour pruning may lag stays under the ceiling.
    assert (lifetimes.PARTITION_HOURS + 1) * 3600 * rate <= lifetimes.MAX_PARTITIONS
    assert (lifetimes.RETENTION_CRON == "20 * * * *") == (lifetimes.PARTITION_HOURS < 48)
