"""The local stack refuses what IAM would refuse: each process acts as its own template
role, and each role is held to what its process does (the platform's own code, run as the
role), while a call the role does not grant fails naming the role and the action.

The stack's moto checks every call (`local/aws/iam/`), the model server asks it about
Bedrock and Transcribe; these tests run with that check on, as the whole suite does.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import stat
from pathlib import Path

import pytest
from botocore.exceptions import ClientError
from dagster import DagsterInstance, build_sensor_context, materialize
from helpers import acting_as, acting_with, delete_stack_quietly, own_and_move

from vomage_dagster.assets import daily, reprocessing
from vomage_dagster.assets.partitions import recordings
from vomage_dagster.assets.recording import ASSETS
from vomage_dagster.domain.errors import ProcessingError
from vomage_dagster.domain.keys import new_recording_id
from vomage_dagster.domain.run_tags import recording_tag
from vomage_dagster.local.aws import roles
from vomage_dagster.local.client.uploads import upload_file
from vomage_dagster.resources.aws import client
from vomage_dagster.resources.users import UsersTable


def refused(call) -> ClientError:
    with pytest.raises(ClientError) as caught:
        call()
    assert caught.value.response["Error"]["Code"] in ("AccessDenied", "AccessDeniedException"), caught.value
    return caught.value


@pytest.fixture()
def instance():
    with DagsterInstance.ephemeral() as inst:
        yield inst


def test_every_process_has_a_role_of_the_template_and_its_credentials_are_private(local_stack):
    state = Path(local_stack["state_dir"])
    found = roles.read(state)
    assert set(roles.PROCESS_ROLES.values()) <= set(found)
    assert stat.S_IMODE((state / roles.ROLES_FILE).stat().st_mode) == 0o600
    # A made-up key is nobody, as on AWS.
    import boto3

    forged = boto3.client("sqs", region_name="us-east-1", endpoint_url=os.environ["AWS_ENDPOINT_URL"],
                          aws_access_key_id="AKIAFORGED0000000000", aws_secret_access_key="x")
    with pytest.raises(ClientError) as caught:
        forged.list_queues()
    assert caught.value.response["Error"]["Code"] in ("InvalidClientTokenId", "UnrecognizedClientException", "403")


def test_a_call_the_role_does_not_grant_fails_naming_the_role_and_the_action(settings):
    with acting_as("ProcessingRunRole"):
        error = refused(lambda: client("sqs", settings.region).send_message(
            QueueUrl=os.environ["VOMAGE_UPLOADS_QUEUE_URL"], MessageBody="{}"))
        assert "ProcessingRunRole" in str(error) and "sqs:SendMessage" in str(error)
        error = refused(lambda: client("dynamodb", settings.region).delete_item(
            TableName=settings.status_table, Key={"recording_id": {"S": "x"}}))
        assert "dynamodb:DeleteItem" in str(error) and settings.status_table in str(error)
    with acting_as("LiveViewRole"):  # Bedrock, served by the model server, asks the same IAM
        from vomage_dagster.resources.analyzer import MoodAnalyzer

        error = refused(lambda: MoodAnalyzer(region_name=settings.analysis_region).bedrock.converse(
            modelId=settings.analysis_model_id, messages=[{"role": "user", "content": [{"text": "hi"}]}]))
        assert "LiveViewRole" in str(error) and "bedrock:InvokeModel" in str(error)


def test_the_processing_role_processes_a_recording_and_takes_a_record_back(settings, resources, instance, samples):
    rid = upload_file(settings, samples["en_neutral"]["path"], "iam-user")
    with acting_as("IngestSensorRole"):
        resources["tracker"].register(rid, f"uploads/iam-user/{rid}.3gp")
    instance.add_dynamic_partitions(recordings.name, [rid])
    with acting_as("ProcessingRunRole"):
        result = materialize(ASSETS, partition_key=rid, instance=instance, resources=resources,
                             tags={recording_tag(rid): "1"})
        assert result.success
        assert resources["tracker"].status.get(rid)["stage"] == "complete"
        # A run that lost its recording takes the record it wrote back (DeleteItem).
        other = new_recording_id()
        own_and_move(resources["tracker"], other, "generating", owner="slow-run")
        resources["tracker"].records.put({"recording_id": other, "user_id": "u",
                                          "created_at": f"2026-12-06T00:00:00+00:00#{other}",
                                          "recorded_at": "2026-12-06T00:00:00+00:00"})
        resources["tracker"].records.delete({"user_id": "u", "created_at": f"2026-12-06T00:00:00+00:00#{other}"})


def test_the_ingest_role_ingests_sweeps_and_watches_runs(settings, resources, instance, queues, samples):
    from vomage_dagster.ingest.consumer import ingest_once
    from vomage_dagster.sensors import stranded, upload_sweep

    rid = upload_file(settings, samples["en_joy"]["path"], "iam-ingest")
    with acting_as("IngestSensorRole"):
        launched = []
        assert ingest_once(queues, resources["store"], instance, resources["tracker"],
                           lambda request: launched.append(request) or "run", 10, logging.getLogger("test")) == 1
        with build_sensor_context(instance=instance, resources={
                "store": resources["store"], "tracker": resources["tracker"], "queue": queues}) as ctx:
            upload_sweep.upload_sweep_sensor(ctx)
        # The watchdog fails a recording and takes its record back; the stranded sensor
        # scans and queues again.
        assert resources["tracker"].fail(rid, ProcessingError("run_failed", "x", retryable=True), 1)
        resources["tracker"].retract(rid)
        with build_sensor_context(instance=instance, resources={"tracker": resources["tracker"],
                                                                "queue": queues}) as ctx:
            stranded.stranded_recordings_sensor(ctx)
        error = refused(lambda: resources["store"].put_bytes(f"processed/{rid}/image.png", b"x"))
        assert "IngestSensorRole" in str(error)


def test_the_live_view_role_retries_signs_uploads_and_streams(settings, resources, local_stack):
    from vomage_dagster.app import views
    from vomage_dagster.operations.retry import retry
    from vomage_dagster.streaming.client import pcm16, stream
    from vomage_dagster.streaming.urls import stream_url

    rid = new_recording_id()
    tracker = resources["tracker"]
    tracker.register(rid, f"uploads/iam-viewer/{rid}.m4a")
    tracker.fail(rid, ProcessingError("transcription_failed", "throttled", retryable=True))
    with acting_as("LiveViewRole"):
        outcome = retry(tracker, resources["queue"], rid)
        assert outcome.queued, outcome.reason
        form = views.presigned_upload(resources["store"], "iam-viewer", new_recording_id(), "audio/mp4", "m4a", {})
        assert form.fields["key"].startswith("uploads/iam-viewer/")
        url = stream_url(settings, "iam-viewer", "en-US")
        # The feed's index and a user's first sign-in are granted; deleting a user is not.
        assert [i["recording_id"] for i in tracker.status.for_user("iam-viewer")][:1] == [rid]
        users = UsersTable(table_name=settings.users_table, region_name=settings.region)
        users.first_sign_in("iam-viewer", "iam-viewer-name")
        refused(lambda: users.delete("iam-viewer"))
        refused(lambda: users.get("iam-viewer"))  # nor reading users back
    import numpy as np

    result = stream(url, pcm16(np.zeros(16_000, dtype=np.float32)), realtime=False)
    assert result.finals == [] or isinstance(result.finals, list)  # the endpoint let the stream in


def test_the_batch_role_builds_tables_reprocesses_and_keeps_partitions(settings, resources, instance, samples):
    from vomage_dagster.jobs import prune_recording_partitions, warm_cache

    day = dt.datetime.now(dt.UTC).date().isoformat()
    with acting_as("BatchJobsRunRole"):
        assert materialize(daily.ASSETS, partition_key=day, instance=instance, resources=resources).success
        for version, extra in ((f"iam-on-demand-{new_recording_id()}", {}),
                               (f"iam-batch-{new_recording_id()}", {"min_batch_records": 1})):
            assert materialize(reprocessing.ASSETS[:1], partition_key=day, instance=instance, resources=resources,
                               run_config={"ops": {"mood_reprocessed": {"config": {"version": version, **extra}}}}
                               ).success
        assert warm_cache.execute_in_process(instance=instance, resources=resources).success
        assert prune_recording_partitions.execute_in_process(instance=instance, resources=resources).success


def test_the_metrics_role_exports_a_window(settings, resources):
    from vomage_dagster.operations.metrics import export_window

    with acting_as("MetricExportRunRole"):
        start = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=20)
        result = export_window(resources["records"], resources["tracker"].status, resources["queue"],
                               resources["store"], start, put_alarms=True)
        assert result["data_points"] >= 2
        error = refused(lambda: resources["store"].get_bytes("uploads/anything.m4a"))
        assert "MetricExportRunRole" in str(error)


def test_it_bites_a_grant_removed_from_a_copy_of_the_template_is_refused(settings, local_stack):
    """The live view's retry needs GetQueueUrl (the grant this check found missing). A copy
    of the template without it, deployed as a stack of its own, refuses the call its own
    queue; the template as it is grants it."""
    import dataclasses
    import uuid

    import boto3

    from vomage_dagster.local.aws import provision
    from vomage_dagster.resources.queue import UploadQueue

    granted = "Action: [sqs:GetQueueUrl, sqs:SendMessage]"
    template = provision.TEMPLATE.read_text()
    assert template.count(granted) == 1
    name = f"vomage-bites-{uuid.uuid4().hex[:8]}"
    mine = dataclasses.replace(settings, bucket=name, uploads_queue=f"{name}-uploads",
                               dead_letter_queue=f"{name}-dlq", status_table=f"{name}-status",
                               records_table=f"{name}-records", users_table=f"{name}-users")
    root = {"region_name": settings.region, "endpoint_url": os.environ["AWS_ENDPOINT_URL"],
            "aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
    cfn = boto3.client("cloudformation", **root)
    cfn.create_stack(StackName=name, TemplateBody=template.replace(granted, "Action: sqs:SendMessage"),
                     Parameters=provision.stack_parameters(mine), Capabilities=["CAPABILITY_NAMED_IAM"])
    try:
        found = roles.assume_all(cfn, boto3.client("sts", **root), name)
        queue = UploadQueue(queue_name=mine.uploads_queue, dead_letter_queue_name=mine.dead_letter_queue,
                            region_name=settings.region)
        with acting_with(roles.credentials_env_of(found["LiveViewRole"])):
            error = refused(lambda: queue.send({"recording_id": "r"}))
        assert "LiveViewRole" in str(error) and "sqs:GetQueueUrl" in str(error) and name in str(error)
    finally:
        delete_stack_quietly(cfn, name)
    with acting_as("LiveViewRole"):  # the template as it is: granted
        UploadQueue(queue_name=settings.uploads_queue, dead_letter_queue_name=settings.dead_letter_queue,
                    region_name=settings.region).url()


@pytest.mark.slow  # starts each service as a role without its grants: ~50 s
def test_a_service_without_its_grants_says_which_call_was_refused(settings, local_stack, tmp_path):
    """The ingest service run as a role that may not read the queue (the webserver's) stops
    at once with the refused call, as whom and on what, and no stack trace."""
    import subprocess
    import sys

    env = {**os.environ, **roles.process_env(Path(local_stack["state_dir"]), "webserver"),
           "DAGSTER_HOME": str(tmp_path)}
    (tmp_path / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    workspace = Path(__file__).resolve().parents[1] / "workspace.yaml"
    done = subprocess.run([str(Path(sys.executable).parent / "vomage"), "ingest", "--workspace", str(workspace)],
                          env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 3, done.stderr[-2000:]
    assert "AWS refused GetQueueUrl" in done.stderr and "WebserverRole" in done.stderr
    assert "sqs:GetQueueUrl" in done.stderr and "Traceback" not in done.stderr
