"""The embedded stack: real servers on loopback, provisioned, reachable through boto3."""

import json
import os
import urllib.request

import redis

from vomage_dagster.local import processes
from vomage_dagster.local.aws import stack
from vomage_dagster.resources.aws import client
from vomage_dagster.settings import load_settings


def test_env_points_boto3_and_redis_at_the_stack(local_stack):
    env = stack.stack_env(local_stack)
    for name in ("AWS_ENDPOINT_URL", "AWS_DEFAULT_REGION", "AWS_ACCESS_KEY_ID", "REDIS_URL",
                 "VOMAGE_BUCKET", "VOMAGE_UPLOADS_QUEUE", "VOMAGE_STATUS_TABLE",
                 "AWS_ENDPOINT_URL_TRANSCRIBE", "AWS_ENDPOINT_URL_BEDROCK_RUNTIME"):
        assert env[name]
        assert f"export {name}={env[name]}" in stack.export_lines(local_stack)
    assert all(v.startswith("http://127.0.0.1:") for k, v in env.items()
               if k.startswith("AWS_ENDPOINT_URL"))
    assert redis.Redis.from_url(env["REDIS_URL"]).ping()


def test_resources_are_provisioned(local_stack):
    settings = load_settings()
    s3, sqs, ddb = (client(s, settings.region) for s in ("s3", "sqs", "dynamodb"))
    assert settings.bucket in {b["Name"] for b in s3.list_buckets()["Buckets"]}
    tables = ddb.list_tables()["TableNames"]
    assert settings.status_table in tables and settings.records_table in tables
    url = sqs.get_queue_url(QueueName=settings.uploads_queue)["QueueUrl"]
    attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["RedrivePolicy"])["Attributes"]
    assert json.loads(attrs["RedrivePolicy"])["maxReceiveCount"] in (3, "3")
    notif = s3.get_bucket_notification_configuration(Bucket=settings.bucket)
    assert notif["QueueConfigurations"][0]["Events"] == ["s3:ObjectCreated:*"]


def test_resources_come_from_the_production_template(local_stack):
    """One description: the local stack is the CloudFormation template deployed into moto."""
    from vomage_dagster.local.aws.provision import STACK_NAME

    settings = load_settings()
    cfn = client("cloudformation", settings.region)
    [described] = cfn.describe_stacks(StackName=STACK_NAME)["Stacks"]
    assert described["StackStatus"] == "CREATE_COMPLETE"
    made = {r["LogicalResourceId"] for r in cfn.list_stack_resources(StackName=STACK_NAME)[
        "StackResourceSummaries"]}
    assert {"RecordingsBucket", "UploadsQueue", "DeadLetterQueue", "StatusTable", "RecordsTable",
            "ProcessingErrorRule", "ProcessingRunRole"} <= made
    ddb = client("dynamodb", settings.region)
    for table in (settings.status_table, settings.records_table):
        assert ddb.describe_time_to_live(TableName=table)["TimeToLiveDescription"]["TimeToLiveStatus"] == "ENABLED"


def test_up_is_idempotent_and_provisioning_reruns_cleanly(local_stack):
    again = stack.up(load_settings())
    assert again["pids"] == local_stack["pids"]
    from vomage_dagster.local.aws.provision import provision

    assert provision(load_settings())["queue_url"].endswith("/vomage-uploads")


def test_model_server_is_warm(local_stack):
    base = os.environ["VOMAGE_MODEL_SERVER_URL"]
    with urllib.request.urlopen(f"{base}/health", timeout=5) as resp:
        assert json.loads(resp.read())["ok"] is True
    with urllib.request.urlopen(f"{base}/stats", timeout=5) as resp:
        assert set(json.loads(resp.read())["calls"]) == {"transcribe", "analysis", "image", "streaming"}


def test_down_stops_every_process(tmp_path):
    """A second, private stack: `down` leaves no process behind."""
    env = {**os.environ, "VOMAGE_STATE_DIR": str(tmp_path)}
    settings = load_settings(env)
    info = stack.up(settings, tied=True)
    pids = list(info["pids"].values())
    below = [p for guard in pids for p in processes.descendants(guard)]
    assert stack.healthy(info) and len(below) >= len(pids)  # each guard runs its service
    assert sorted(stack.down(settings)) == ["broker", "models", "moto", "redis", "traces"]
    assert not any(processes.alive(p) for p in pids + below)
    assert stack.read_info(settings) is None
    assert stack.down(settings) == []


def test_processing_error_events_reach_the_templates_log_group(local_stack):
    """The template's EventBridge rule works locally: an error event is delivered."""
    import time

    from vomage_dagster.resources.events import ERROR, EventPublisher

    settings = load_settings()
    EventPublisher(region_name=settings.region).publish(ERROR, {"recording_id": "rec-rule-check"})
    logs = client("logs", settings.region)
    group = "/aws/events/vomage-processing-errors"
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        messages = [e["message"] for s in logs.describe_log_streams(logGroupName=group)["logStreams"]
                    for e in logs.get_log_events(logGroupName=group, logStreamName=s["logStreamName"])["events"]]
        if any("rec-rule-check" in m for m in messages):
            return
        time.sleep(0.2)
    raise AssertionError(f"no error event in {group}")


def test_a_restarted_stack_shows_no_recordings_whose_data_is_gone(tmp_path):
    """Moto starts empty after `down` and `up`; Dagster's home starts empty with it, so the
    UI lists no partitions, runs or materializations of recordings that no longer exist."""
    from dagster import DagsterInstance

    from vomage_dagster.assets.partitions import recordings
    from vomage_dagster.local.deployment.daemon import prepare_home

    settings = load_settings({**os.environ, "VOMAGE_STATE_DIR": str(tmp_path)})
    stack.up(settings, tied=True)
    try:
        home = prepare_home(tmp_path, runs="spawn")
        with DagsterInstance.from_config(str(home)) as instance:
            instance.add_dynamic_partitions(recordings.name, ["rec-before-restart"])
        stack.down(settings)
        stack.up(settings, tied=True)
        assert not (tmp_path / stack.HOME_DIR).exists()
        home = prepare_home(tmp_path, runs="spawn")
        with DagsterInstance.from_config(str(home)) as instance:
            assert instance.get_dynamic_partitions(recordings.name) == []
    finally:
        stack.down(settings)
