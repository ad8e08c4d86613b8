"""The AWS simulation models S3's notification delay: under a latency profile with
`s3_event_notification_s`, the ingest acts on an S3 notification (or EventBridge's
"Object Created") only once S3 would have delivered it; the app's own messages at once."""

import json
import time

from vomage_dagster.ingest.consumer import _delivered
from vomage_dagster.resources.queue import Message

BUCKET = "vomage-test"
KEY = "uploads/alice/rec-20261207-abcdef01.m4a"


def message(body: dict, sent_at: float) -> Message:
    return Message(f"m-{sent_at}", "rh", json.dumps(body), 1, "md5", {}, sent_at)


def s3_event() -> dict:
    return {"Records": [{"eventName": "ObjectCreated:Post",
                         "s3": {"bucket": {"name": BUCKET}, "object": {"key": KEY}}}]}


def app_notice() -> dict:
    return {"recording_id": "rec-20261207-abcdef01", "s3_key": KEY, "user_id": "alice", "attempt": 1}


def profile(tmp_path, monkeypatch, seconds: float) -> None:
    path = tmp_path / f"profile-{seconds}.json"
    path.write_text(json.dumps({"name": "t", "figures": {"s3_event_notification_s": {
        "distribution": "point", "value": seconds, "source": "test"}}}))
    monkeypatch.setenv("VOMAGE_LATENCY_PROFILE", str(path))
    monkeypatch.setenv("VOMAGE_ENV", "local")


def test_an_s3_notification_waits_for_its_delivery_an_app_notice_does_not(tmp_path, monkeypatch):
    profile(tmp_path, monkeypatch, 2.0)
    sent = time.time()
    s3, app = message(s3_event(), sent), message(app_notice(), sent)
    now, later = _delivered([s3, app], BUCKET)
    assert now == [app] and later == [(sent + 2.0, s3)]


def test_an_old_notification_is_delivered_already(tmp_path, monkeypatch):
    profile(tmp_path, monkeypatch, 2.0)
    old = message(s3_event(), time.time() - 5)
    assert _delivered([old], BUCKET) == ([old], [])


def test_without_a_profile_nothing_waits(monkeypatch):
    monkeypatch.delenv("VOMAGE_LATENCY_PROFILE", raising=False)
    fresh = message(s3_event(), time.time())
    assert _delivered([fresh], BUCKET) == ([fresh], [])


def test_a_poison_message_is_not_held(tmp_path, monkeypatch):
    profile(tmp_path, monkeypatch, 2.0)
    poison = Message("p", "rh", "{not json", 1, "md5", {}, time.time())
    assert _delivered([poison], BUCKET)[0] == [poison]


def test_held_messages_come_out_when_due_and_shorten_the_receive_wait():
    from vomage_dagster.ingest.consumer import Held

    held = Held()
    early, late = message(s3_event(), 1.0), message(s3_event(), 2.0)
    held.add([(time.time() - 0.1, early), (time.time() + 3.5, late)])
    assert held.take_due() == [early] and [m for _, m in held.messages] == [late]
    assert held.wait_s(5) == 3  # the receive returns in time to hand the held one on
    assert Held().wait_s(5) == 5
