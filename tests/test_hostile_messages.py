"""Any queue message, any shape: the parser refuses it with a reason or reads it right,
and an ingest pass with hostile messages still runs the valid ones received with it.

Property-based (hypothesis): arbitrary JSON values and text, and valid notifications with
one field anywhere replaced by an arbitrary value.
"""

from __future__ import annotations

import json
import uuid

import pytest
from dagster import DagsterInstance
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vomage_dagster.domain.keys import parse_upload_key
from vomage_dagster.domain.messages import Arrival, PoisonMessage, parse_message

B = "vomage-recordings"

json_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(10 ** 40), max_value=10 ** 40),
    st.floats(allow_nan=False), st.text(max_size=40),
    st.sampled_from(["uploads/u/r.m4a", "uploads/u/r.m4a\n", "uploads/\u0000/r.m4a", "ObjectCreated:Put",
                     B, "s3:TestEvent", "aws.s3", "Object Created", "rec-1", "u"]))
json_values = st.recursive(json_scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=12), inner, max_size=5)), max_leaves=25)


def s3_event(key: str = "uploads/user-1/rec-1.m4a") -> dict:
    return {"Records": [{"eventVersion": "2.1", "eventSource": "aws:s3", "eventName": "ObjectCreated:Put",
                         "s3": {"bucket": {"name": B}, "object": {"key": key, "size": 10}}}]}


VALID = [
    s3_event(),
    {"version": "0", "detail-type": "Object Created", "source": "aws.s3",
     "detail": {"bucket": {"name": B}, "object": {"key": "uploads/u/rec-2.webm"}}},
    {"recording_id": "rec-3", "s3_key": "uploads/u/rec-3.ogg", "user_id": "u", "metadata": {"note": 2},
     "attempt": 1},
]


def _outcome(raw: str) -> list[Arrival] | PoisonMessage:
    try:
        arrivals = parse_message(raw, B)
    except PoisonMessage as exc:
        assert str(exc)
        return exc
    for a in arrivals:  # whatever is accepted is a real upload key with a plain id
        assert parse_upload_key(a.upload.key) == a.upload
        assert type(a.attempt) is int and a.attempt >= 1
    return arrivals


@settings(max_examples=400, deadline=None)
@given(json_values)
def test_any_json_value_is_read_or_refused_never_a_crash(value):
    _outcome(json.dumps(value))


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200))
def test_any_text_is_read_or_refused(text):
    _outcome(text)


def _paths(value, prefix=()):
    yield prefix
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _paths(v, (*prefix, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _paths(v, (*prefix, i))


def _replace(value, path, new):
    if not path:
        return new
    copy = json.loads(json.dumps(value))
    node = copy
    for step in path[:-1]:
        node = node[step]
    node[path[-1]] = new
    return copy


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(range(len(VALID))), st.data(), json_values)
def test_a_valid_message_with_any_field_replaced_is_read_or_refused(n, data, new):
    base = VALID[n]
    path = data.draw(st.sampled_from(list(_paths(base))))
    _outcome(json.dumps(_replace(base, path, new)))


@pytest.mark.parametrize(("raw", "reason"), [
    ("[" * 100_000 + "]" * 100_000, "nested"),
    ('{"a":' * 5_000 + "1" + "}" * 5_000, "nested"),
    (json.dumps({"recording_id": "rec-1", "s3_key": "uploads/u/rec-1.m4a", "user_id": "u"})[:-1]
     + ', "attempt": ' + "9" * 5_000 + "}", "not JSON"),
    (json.dumps({**VALID[2], "metadata": [3]}), "metadata must be an object"),
    (json.dumps({**VALID[2], "attempt": 10 ** 30}), "attempt"),
    (json.dumps({**VALID[2], "attempt": True}), "attempt"),
    (json.dumps({**VALID[2], "attempt": 1.5}), "attempt"),
    (json.dumps({**VALID[2], "recording_id": "rec-3\n"}), "characters"),
    (json.dumps(s3_event("uploads/u/rec-1.m4a\n")), "not uploads/"),
    (json.dumps(s3_event("uploads/u\u0007x/rec-1.m4a")), "not uploads/"),
    (json.dumps({"Records": [s3_event()["Records"][0]] * 11}), "records in one message"),
    (json.dumps({"Records": [{"eventName": "ObjectCreated:Put", "s3": {"bucket": ["x"], "object": 7}}]}),
     "unknown bucket"),
    (json.dumps({"detail-type": "Object Created", "source": "aws.s3", "detail": [1, 2]}), "unknown bucket"),
    ("x" * 300_000, "characters"),
], ids=["deep-array", "deep-object", "huge-int", "follow-up-str", "follow-up-huge", "follow-up-bool",
        "attempt-float", "id-newline", "key-newline", "key-control", "many-records", "wrong-types",
        "detail-list", "oversized"])
def test_hostile_shapes_are_poison_with_a_reason(raw, reason):
    with pytest.raises(PoisonMessage) as info:
        parse_message(raw, B)
    assert reason in str(info.value)


def test_a_test_event_carrying_records_is_not_dropped():
    (a,) = parse_message(json.dumps({"Event": "s3:TestEvent", **s3_event()}), B)
    assert a.recording_id == "rec-1"


@pytest.fixture()
def instance():
    with DagsterInstance.ephemeral() as inst:
        yield inst


HOSTILE = [
    json.dumps({"Records": [{"eventName": "ObjectCreated:Put", "s3": {"bucket": {"name": B}, "object": [1]}}]}),
    "[" * 50_000 + "]" * 50_000,
    '{"recording_id": "r", "s3_key": "uploads/u/r.m4a", "user_id": "u", "attempt": ' + "9" * 5_000 + "}",
    json.dumps({"recording_id": "rec-x", "s3_key": "uploads/u/rec-x.m4a", "user_id": "u",
                "metadata": "many"}),
    json.dumps({"Records": [{"eventName": "ObjectCreated:Put", "s3": {"bucket": {"name": B},
                                                                     "object": {"key": "uploads/u\u0001/r.m4a"}}}]}),
    json.dumps({"Service": "Amazon S3", "Event": "s3:TestEvent", "Bucket": B}),
]


def test_hostile_messages_before_valid_ones_do_not_stop_the_pass(ingest, queues, resources):
    """Five poison messages and a test event sent before eight valid uploads: the first
    pass registers all eight and launches their runs; each poison message's reason is kept."""
    for body in HOSTILE:
        queues.send(body)
    rids = [f"rec-hostile-{uuid.uuid4().hex[:8]}-{n}" for n in range(8)]
    for rid in rids:
        queues.send(s3_event(f"uploads/hostile-user/{rid}.m4a"))
    assert ingest()
    assert all(resources["tracker"].status.get(rid) for rid in rids)
    reasons = [resources["store"].get_json(o.key)["reason"] for o in resources["store"].list("ingest-errors/")]
    for expected in ("no object key", "nested too deeply", "not JSON", "metadata must be", "not uploads/"):
        assert any(expected in r for r in reasons), expected


def test_an_upload_claiming_another_users_recording_id_is_refused_and_noted(ingest, queues, resources, settings,
                                                                             samples):
    from vomage_dagster.local.client.uploads import upload_file

    rid = upload_file(settings, samples["en_joy"]["path"], "id-owner")
    ingest()
    intruder = f"uploads/id-intruder/{rid}.m4a"
    resources["store"].put_bytes(intruder, samples["en_joy"]["path"].read_bytes(), "audio/mp4", {})
    for _ in range(3):
        ingest()
    notes = [resources["store"].get_json(o.key) for o in resources["store"].list("ingest-errors/")]
    assert any(n.get("upload_key") == intruder and "recording_id_taken" in n["reason"] for n in notes)
    assert resources["tracker"].status.get(rid)["upload_key"] == f"uploads/id-owner/{rid}.m4a"
