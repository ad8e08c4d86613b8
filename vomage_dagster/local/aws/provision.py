"""Create the platform's AWS resources in the local stack from the production template.

Local and production are described once, in `deploy/cloudformation/vomage.yaml`: the
local stack deploys that template into moto's CloudFormation with `Local=true` and the
names from the settings. `Local=true` leaves out what moto's CloudFormation cannot
create or what breaks moto (`LEFT_OUT_LOCALLY`). Two properties moto accepts but
ignores are applied here with the API (`_apply_what_moto_ignores`): the bucket's
notification to the uploads queue, which the S3→SQS ingest path needs, and the
tables' TTL.

The custom vocabularies (no CloudFormation resource) are created by `provision_vocabularies`
in the model server, which answers Transcribe locally, once it is up.

Idempotent: an existing stack is left as it is, and the two API calls only restate what
is already there, so running it twice changes nothing.
"""

from __future__ import annotations

import os
import time
from typing import Any

from vomage_dagster.domain import lifetimes, models
from vomage_dagster.local import PROJECT_ROOT
from vomage_dagster.local.models import served_models
from vomage_dagster.resources.aws import client
from vomage_dagster.settings import Settings

TEMPLATE = PROJECT_ROOT / "deploy" / "cloudformation" / "vomage.yaml"
# The stack name is also the prefix of named resources (the Bedrock batch role
# `vomage-bedrock-batch`, the `vomage-ops` topic): the same in production.
STACK_NAME = "vomage"
TTL_ATTRIBUTE = lifetimes.TTL_ATTRIBUTE
UPLOADS_NOTIFICATION_ID = "vomage-uploads"

# What `Local=true` leaves out (the template's `Condition: IsAws` resources), and why,
# as found with moto 5.2.5. Moto skips a type it does not support with a UserWarning
# and still reports the stack complete, so the reasons were checked one by one.
LEFT_OUT_LOCALLY = {
    "RecordingsBucketPolicy": "denies every request not made over TLS, and moto is served over plain "
                              "HTTP on loopback",
    "ImagesDistribution": "AWS::CloudFront::Distribution is not supported by moto's CloudFormation "
                          "(the live view serves images through presigned URLs, locally as on AWS)",
    "ImagesOriginAccessControl": "AWS::CloudFront::OriginAccessControl is not supported by moto's "
                                 "CloudFormation; only the distribution uses it",
    "ImagesOnlyFunction": "AWS::CloudFront::Function is not supported by moto's CloudFormation; only "
                          "the distribution uses it",
    "UploadToPublishedAlarm": "AWS::CloudWatch::Alarm is not supported by moto's CloudFormation; "
                              "operations/metrics.py puts the alarms on the platform's metrics itself",
    "ErrorRateAlarm": "AWS::CloudWatch::Alarm is not supported by moto's CloudFormation",
    "MetricExportStoppedAlarm": "AWS::CloudWatch::Alarm is not supported by moto's CloudFormation",
    "IngestBacklogAlarm": "AWS::CloudWatch::Alarm is not supported by moto's CloudFormation",
    "UploadsQueueAgeAlarm": "AWS::CloudWatch::Alarm is not supported by moto's CloudFormation (and moto "
                            "publishes no SQS metrics)",
    "DeadLetterAlarm": "AWS::CloudWatch::Alarm is not supported by moto's CloudFormation",
    "AlertSubscription": "an e-mail subscription would need its confirmation answered; locally nobody is "
                         "written to",
    "OperationsDashboard": "AWS::CloudWatch::Dashboard is not supported by moto's CloudFormation",
    "UploadsQueuePolicy": "AWS::SQS::QueuePolicy is not supported by moto's CloudFormation "
                          "(moto does not enforce it)",
    "OpsTopicPolicy": "AWS::SNS::TopicPolicy is not supported by moto's CloudFormation",
    "ProcessingErrorAlertRule": "moto's PutEvents fails (NotImplementedError, HTTP 500) on a rule "
                                "with an SNS target: every Processing Error event would fail",
    "ProcessingEventsArchive": "moto fails on an AWS::Events::Archive with an object EventPattern "
                               "(TypeError in EventPattern.load)",
    "AppUserPool": "AWS::Cognito::UserPool is not supported by moto's CloudFormation; the local stack "
                   "makes the pool through the Cognito API from these properties (local/aws/user_pool.py)",
    "AppUserPoolClient": "AWS::Cognito::UserPoolClient is not supported by moto's CloudFormation; made "
                         "with the pool (local/aws/user_pool.py)",
}


def stack_parameters(settings: Settings) -> list[dict[str, str]]:
    """The template's parameters for these settings (names as the code uses them)."""
    prefix = models.split_profile(settings.analysis_model_id)[0]
    routes = list(served_models.PROFILE_REGIONS.get(prefix or "", (settings.analysis_region,) * 3))[:3]
    routes += [routes[-1]] * (3 - len(routes))
    values = {
        "Local": "true" if settings.is_local else "false",
        # Required (no default): locally nobody is written to (the subscription is AWS-only).
        "AlertEmail": os.environ.get("VOMAGE_ALERT_EMAIL", "alerts@vomage.invalid"),
        "BucketName": settings.bucket,
        "UploadsPrefix": settings.uploads_prefix,
        "AppOrigin": "*" if settings.is_local else os.environ.get("VOMAGE_APP_ORIGIN", "https://app.vomage.example"),
        "UploadsQueueName": settings.uploads_queue,
        "DeadLetterQueueName": settings.dead_letter_queue,
        "StatusTableName": settings.status_table,
        "RecordsTableName": settings.records_table,
        "UsersTableName": settings.users_table,
        "EventBusName": settings.event_bus,
        "TtlAttributeName": TTL_ATTRIBUTE,
        "AnalysisModelId": models.foundation_id(settings.analysis_model_id),
        "InferenceProfilePrefix": prefix or "",
        "AnalysisProfileRegions": ",".join(routes),
        "ImageModelId": settings.image_model_id,
        "ImageModelRegion": settings.image_region,
    }
    return [{"ParameterKey": k, "ParameterValue": v} for k, v in values.items()]


def provision(settings: Settings, endpoint_url: str | None = None) -> dict[str, str]:
    """Deploy the template (once), apply what moto ignores; return the queue URLs."""
    region = settings.region
    deploy_stack(client("cloudformation", region, endpoint_url), settings)
    sqs = client("sqs", region, endpoint_url)
    # URLs from SQS itself rather than the stack outputs: moto's outputs carry the AWS
    # host name, the queue API answers with the endpoint actually in use.
    queue_url = sqs.get_queue_url(QueueName=settings.uploads_queue)["QueueUrl"]
    dlq_url = sqs.get_queue_url(QueueName=settings.dead_letter_queue)["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])[
        "Attributes"]["QueueArn"]
    _apply_what_moto_ignores(settings, queue_arn, endpoint_url)
    return {"queue_url": queue_url, "dead_letter_queue_url": dlq_url}


def provision_vocabularies(settings: Settings, transcribe_endpoint: str) -> list[str]:
    """Every custom vocabulary of the settings, created and READY (as `vomage deploy
    vocabularies` does on AWS); their names."""
    from vomage_dagster.domain.vocabulary import load_all
    from vomage_dagster.operations.vocabularies import ensure_all

    outcomes = ensure_all(client("transcribe", settings.region, transcribe_endpoint),
                          load_all(settings.vocabulary_names), timeout_s=30.0, poll_s=0.1)
    return [o.name for o in outcomes]


def deploy_stack(cfn: Any, settings: Settings, timeout_s: float = 60.0) -> str:
    """Create the stack unless it exists; its final status (CREATE_COMPLETE or raise)."""
    status = _stack_status(cfn)
    if status is None:
        cfn.create_stack(StackName=STACK_NAME, TemplateBody=TEMPLATE.read_text(),
                         Parameters=stack_parameters(settings),
                         Capabilities=["CAPABILITY_NAMED_IAM"])
        deadline = time.monotonic() + timeout_s
        # Moto creates synchronously; the loop is for a CloudFormation that does not.
        while (status := _stack_status(cfn)) == "CREATE_IN_PROGRESS" and time.monotonic() < deadline:
            time.sleep(0.2)
    if status not in ("CREATE_COMPLETE", "UPDATE_COMPLETE"):
        raise RuntimeError(f"stack {STACK_NAME} is {status}")
    return status


def _stack_status(cfn: Any) -> str | None:
    from botocore.exceptions import ClientError

    try:
        stacks = cfn.describe_stacks(StackName=STACK_NAME)["Stacks"]
    except ClientError as exc:
        if "does not exist" in str(exc):
            return None
        raise
    return stacks[0]["StackStatus"] if stacks else None


def _apply_what_moto_ignores(settings: Settings, queue_arn: str, endpoint_url: str | None) -> None:
    """The template's bucket notification, CORS and TTL, which moto's CloudFormation drops.

    Moto's AWS::S3::Bucket reads only BucketEncryption and Tags; its AWS::DynamoDB::Table
    ignores TimeToLiveSpecification. The calls restate the template's values.
    """
    s3 = client("s3", settings.region, endpoint_url)
    s3.put_bucket_notification_configuration(
        Bucket=settings.bucket,
        NotificationConfiguration={
            "QueueConfigurations": [{
                "Id": UPLOADS_NOTIFICATION_ID,
                "QueueArn": queue_arn,
                "Events": ["s3:ObjectCreated:*"],
                "Filter": {"Key": {"FilterRules": [{"Name": "prefix",
                                                    "Value": settings.uploads_prefix}]}},
            }]
        },
    )
    # The live view's CORS (the template's AppOrigin; locally any loopback page may post).
    s3.put_bucket_cors(Bucket=settings.bucket, CORSConfiguration={"CORSRules": [{
        "ID": "live-view", "AllowedOrigins": ["*"], "AllowedMethods": ["POST", "GET"],
        "AllowedHeaders": ["*"], "MaxAgeSeconds": 600}]})
    ddb = client("dynamodb", settings.region, endpoint_url)
    for table in (settings.status_table, settings.records_table):
        ttl = ddb.describe_time_to_live(TableName=table)["TimeToLiveDescription"]
        if ttl.get("TimeToLiveStatus") not in ("ENABLED", "ENABLING"):
            ddb.update_time_to_live(TableName=table, TimeToLiveSpecification={
                "Enabled": True, "AttributeName": TTL_ATTRIBUTE})
