"""The local stack's moto patches outside IAM (`local/aws/s3_conditions.py`,
`local/aws/moto_dispatch.py`, `local/aws/moto_sqs.py`, `local/aws/moto_dynamodb.py`): what
S3 refuses is refused by the stack's moto, the dispatch still finds every service, SQS
still hides what is in flight and drops what is past its retention, and DynamoDB's item
answers read back as moto's own serializer wrote them."""

import json
import uuid

import pytest
from botocore.exceptions import ClientError
from moto import backends

from vomage_dagster.local.aws import moto_dispatch, moto_dynamodb, moto_sqs


def test_copy_with_another_etag_is_refused_as_s3_refuses_it(resources):
    """Against the stack's own moto server (`iam/server.py` installs the check there)."""
    store = resources["store"]
    key = f"media/conditions-{uuid.uuid4().hex[:8]}.m4a"
    store.put_bytes(key, b"first", "audio/mp4")
    etag = store.head(key)["ETag"]
    store.copy(key, f"{key}.copy", if_match=etag)
    assert store.get_bytes(f"{key}.copy") == b"first"
    store.put_bytes(key, b"replaced", "audio/mp4")
    with pytest.raises(ClientError) as refused:
        store.copy(key, f"{key}.copy2", if_match=etag)
    assert refused.value.response["Error"]["Code"] in ("PreconditionFailed", "412")
    assert not store.exists(f"{key}.copy2")


HOSTS = ("127.0.0.1:5000", "dynamodb.us-east-1.amazonaws.com", "s3.us-east-1.amazonaws.com",
         "sqs.eu-west-1.amazonaws.com", "events.us-east-1.amazonaws.com", "sts.amazonaws.com", "moto_api", None)


def test_the_dispatch_finds_the_same_services_once_per_host():
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication

    before = DomainDispatcherApplication(lambda backend: None)
    listed = set(backends.list_of_moto_modules())
    found = {host: before.get_backend_for_host(host) for host in HOSTS}
    moto_dispatch.apply()
    after = DomainDispatcherApplication(lambda backend: None)
    assert set(backends.list_of_moto_modules()) == listed and {"s3", "dynamodb", "sqs"} <= listed
    assert {host: after.get_backend_for_host(host) for host in HOSTS} == found
    assert {host: after.get_backend_for_host(host) for host in HOSTS} == found  # remembered
    assert found["dynamodb.us-east-1.amazonaws.com"] == "dynamodb" and found["127.0.0.1:5000"] is None


def test_sqs_still_hides_in_flight_messages_and_drops_expired_ones():
    """On moto's SQS backend itself (no HTTP, so no credentials): the patched clock and
    retention check give the answers moto's own gave."""
    from moto.sqs.models import sqs_backends

    moto_sqs.apply()
    sqs = sqs_backends["123456789012"]["us-east-1"]
    name = f"patched-{uuid.uuid4().hex[:8]}"
    sqs.create_queue(name, MessageRetentionPeriod="60", VisibilityTimeout="30")
    sqs.send_message(name, "fresh")
    expired = sqs.send_message(name, "old")
    expired.sent_timestamp -= 61_000  # sent 61 s ago: past the 60 s retention
    sqs.send_message(name, "later", delay_seconds=30)

    got = sqs.receive_message(name, count=10, wait_seconds_timeout=0, visibility_timeout=30)
    assert [m.body for m in got] == ["fresh"]
    attributes = sqs.get_queue_attributes(name, ["All"])
    assert attributes["ApproximateNumberOfMessagesDelayed"] == 1
    assert attributes["ApproximateNumberOfMessagesNotVisible"] >= 1  # "fresh", in flight
    assert sqs.receive_message(name, count=10, wait_seconds_timeout=0, visibility_timeout=30) == []


ITEM = {"recording_id": {"S": "r-1"}, "stage_rank": {"N": "3"}, "done": {"BOOL": True}, "gone": {"NULL": True},
        "mood": {"M": {"primary": {"S": "calm"}, "valence": {"N": "0.4"},
                       "keywords": {"L": [{"S": "sea"}, {"N": "2"}, {"M": {"deep": {"SS": ["a", "b"]}}}]}}},
        "counts": {"NS": ["1", "2.5"]}, "text": {"S": "你好 \"quoted\" \\ and a newline\n"}}


@pytest.mark.parametrize(("operation", "result"), [
    ("UpdateItem", {"Attributes": ITEM}),
    ("GetItem", {"Item": ITEM, "ConsumedCapacity": {"TableName": "status", "CapacityUnits": 0.5}}),
    ("GetItem", {}),
    ("PutItem", {"Attributes": None}),
    ("BatchGetItem", {"Responses": {"status": [ITEM, ITEM]}, "UnprocessedKeys": {}}),
    ("Query", {"Items": [ITEM], "Count": 1, "ScannedCount": 1, "LastEvaluatedKey": {"recording_id": {"S": "r"}}}),
    ("GetItem", {"Item": {**ITEM, "blob": {"B": b"\x00\xffbytes"}, "blobs": {"BS": [b"\x01"]}}}),  # moto's own path
])
def test_dynamodb_item_answers_read_back_as_moto_wrote_them(operation, result):
    """Both answers parsed by botocore, as a client would: the same response."""
    from botocore.parsers import create_parser
    from moto.core.responses import ActionContext
    from moto.core.serialize import get_serializer_class
    from moto.core.utils import get_service_model
    from moto.dynamodb.responses import DynamoHandler, DynamoResult

    moto_dynamodb.apply()
    service = get_service_model("dynamodb")
    op = service.operation_model(operation)
    context = ActionContext(service, op, get_serializer_class("dynamodb", "json"), DynamoHandler())
    answers = [run(DynamoResult(result), context)
               for run in (moto_dynamodb.moto_execute_result, DynamoResult.execute_result)]
    assert answers[0][0] == answers[1][0] == 200
    assert answers[0][1]["Content-Type"] == answers[1][1]["Content-Type"] == "application/x-amz-json-1.0"
    parser = create_parser("json")
    parsed = [parser.parse({"status_code": status, "headers": headers, "body": body.encode()}, op.output_shape)
              for status, headers, body in answers]
    assert parsed[0] == parsed[1]
    if "blob" in str(result):  # which path answered: moto's own for bytes, json.dumps otherwise
        assert answers[1][2] == answers[0][2]
    else:
        assert answers[1][2] == json.dumps(moto_dynamodb.without_none(result), separators=(",", ":"))
