"""Queue messages: every shape the uploads queue carries, and every kind of poison."""

import json

import pytest

from vomage_dagster.domain.messages import PoisonMessage, parse_message

B = "vomage-recordings"


def s3_event(key: str, bucket: str = B, event: str = "ObjectCreated:Put") -> str:
    return json.dumps({"Records": [{"eventVersion": "2.1", "eventSource": "aws:s3",
                                    "eventName": event,
                                    "s3": {"bucket": {"name": bucket}, "object": {"key": key, "size": 10}}}]})


def test_s3_notification_keys_are_url_decoded():
    (a,) = parse_message(s3_event("uploads/user-1/rec-1.m4a"), B)
    assert (a.recording_id, a.upload.user_id, a.source) == ("rec-1", "user-1", "s3-event")


def test_s3_test_event_is_dropped():
    assert parse_message(json.dumps({"Service": "Amazon S3", "Event": "s3:TestEvent",
                                     "Bucket": B}), B) == []


def test_eventbridge_object_created():
    body = {"version": "0", "detail-type": "Object Created", "source": "aws.s3",
            "detail": {"bucket": {"name": B}, "object": {"key": "uploads/u/rec-2.webm"}}}
    (a,) = parse_message(json.dumps(body), B)
    assert (a.recording_id, a.source) == ("rec-2", "eventbridge")


def test_app_message():
    body = {"recording_id": "rec-3", "s3_key": "uploads/u/rec-3.ogg", "user_id": "u",
            "metadata": {"anything": "the app sends"}}
    (a,) = parse_message(json.dumps(body), B)
    assert (a.recording_id, a.source, a.attempt) == ("rec-3", "app", 1)


@pytest.mark.parametrize("raw", [
    "not json at all",
    "[1, 2]",
    s3_event("uploads/u/rec-1.m4a", bucket="someone-elses-bucket"),
    s3_event("private/u/rec-1.m4a"),
    s3_event("uploads/u/rec-1.m4a", event="ObjectRemoved:Delete"),
    json.dumps({"Records": []}),
    json.dumps({"recording_id": "rec-4", "s3_key": "uploads/u/rec-4.m4a"}),
    json.dumps({"recording_id": "rec-4", "s3_key": "uploads/u/rec-5.m4a", "user_id": "u"}),
    json.dumps({"recording_id": "rec-4", "s3_key": "uploads/u/rec-4.m4a", "user_id": "u",
                "metadata": "x"}),
    json.dumps({"recording_id": "../etc", "s3_key": "uploads/u/x.m4a", "user_id": "u"}),
], ids=["text", "array", "bucket", "prefix", "removed", "no-records", "missing-field",
        "id-mismatch", "metadata-type", "bad-id"])
def test_poison_messages_say_why(raw):
    with pytest.raises(PoisonMessage) as info:
        parse_message(raw, B)
    assert str(info.value)


def test_the_apps_upload_notice_is_the_first_attempt_of_its_upload():
    from vomage_dagster.domain.keys import parse_upload_key
    from vomage_dagster.domain.messages import upload_notice

    upload = parse_upload_key("uploads/alice/rec-20261207-abcdef01.m4a")
    (arrival,) = parse_message(json.dumps(upload_notice(upload, "vomage-b")), "vomage-b")
    assert (arrival.upload, arrival.source, arrival.attempt) == (upload, "app", 1)
    with pytest.raises(PoisonMessage):  # another bucket's object is no upload of ours
        parse_message(json.dumps(upload_notice(upload, "elsewhere")), "vomage-b")
