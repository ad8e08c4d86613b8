"""Create the bucket, queues, tables and notifications the platform needs, idempotently.

Run against the local stack at `vomage stack up`; every call tolerates "already exists",
so running it twice changes nothing.
"""

from __future__ import annotations

import json

from ..resources.aws import client
from ..resources.records import DAY_INDEX, RECORDING_INDEX
from ..settings import Settings

MAX_RECEIVE_COUNT = 3
VISIBILITY_TIMEOUT_S = 300


def provision(settings: Settings, endpoint_url: str | None = None) -> dict[str, str]:
    """Create everything; return the names and URLs an operator needs."""
    region = settings.region
    s3 = client("s3", region, endpoint_url)
    sqs = client("sqs", region, endpoint_url)
    ddb = client("dynamodb", region, endpoint_url)

    existing = {b["Name"] for b in s3.list_buckets().get("Buckets", [])}
    if settings.bucket not in existing:
        if region == "us-east-1":
            s3.create_bucket(Bucket=settings.bucket)
        else:
            s3.create_bucket(Bucket=settings.bucket,
                             CreateBucketConfiguration={"LocationConstraint": region})

    dlq_url = sqs.create_queue(QueueName=settings.dead_letter_queue,
                               Attributes={"MessageRetentionPeriod": "1209600"})["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])[
        "Attributes"]["QueueArn"]
    queue_url = sqs.create_queue(
        QueueName=settings.uploads_queue,
        Attributes={
            "VisibilityTimeout": str(VISIBILITY_TIMEOUT_S),
            "MessageRetentionPeriod": "1209600",
            "RedrivePolicy": json.dumps(
                {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(MAX_RECEIVE_COUNT)}
            ),
        },
    )["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])[
        "Attributes"]["QueueArn"]

    s3.put_bucket_notification_configuration(
        Bucket=settings.bucket,
        NotificationConfiguration={
            "QueueConfigurations": [{
                "Id": "vomage-uploads",
                "QueueArn": queue_arn,
                "Events": ["s3:ObjectCreated:*"],
                "Filter": {"Key": {"FilterRules": [{"Name": "prefix",
                                                    "Value": settings.uploads_prefix}]}},
            }]
        },
    )

    tables = set(ddb.list_tables().get("TableNames", []))
    if settings.status_table not in tables:
        ddb.create_table(
            TableName=settings.status_table,
            KeySchema=[{"AttributeName": "recording_id", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "recording_id", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
    if settings.records_table not in tables:
        ddb.create_table(
            TableName=settings.records_table,
            KeySchema=[{"AttributeName": "user_id", "KeyType": "HASH"},
                       {"AttributeName": "created_at", "KeyType": "RANGE"}],
            AttributeDefinitions=[{"AttributeName": "user_id", "AttributeType": "S"},
                                  {"AttributeName": "created_at", "AttributeType": "S"},
                                  {"AttributeName": "recording_id", "AttributeType": "S"},
                                  {"AttributeName": "day", "AttributeType": "S"}],
            GlobalSecondaryIndexes=[{
                "IndexName": RECORDING_INDEX,
                "KeySchema": [{"AttributeName": "recording_id", "KeyType": "HASH"}],
                "Projection": {"ProjectionType": "ALL"},
            }, {
                "IndexName": DAY_INDEX,
                "KeySchema": [{"AttributeName": "day", "KeyType": "HASH"},
                              {"AttributeName": "recording_id", "KeyType": "RANGE"}],
                "Projection": {"ProjectionType": "ALL"},
            }],
            BillingMode="PAY_PER_REQUEST",
        )
    return {"queue_url": queue_url, "dead_letter_queue_url": dlq_url}
