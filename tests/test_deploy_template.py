"""deploy/cloudformation/vomage.yaml: cfn-lint clean, and in step with the code it serves.

The template is what production and the local stack both deploy, so the names, the
queue's redrive, the table keys and the alarms are checked against the constants the
code uses, and every IAM statement against the least-privilege rules we hold it to.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import cfn_refs

from vomage_dagster.domain import models
from vomage_dagster.local.aws.provision import LEFT_OUT_LOCALLY, TEMPLATE, TTL_ATTRIBUTE
from vomage_dagster.operations import metrics
from vomage_dagster.resources.events import ERROR, SOURCE
from vomage_dagster.resources.records import DAY_INDEX, RECORDING_INDEX
from vomage_dagster.settings import Settings

# Actions IAM grants on "*" only (no resource-level permissions): the only ones allowed
# a "*" resource here.
NO_RESOURCE_LEVEL = {"transcribe:StartTranscriptionJob", "transcribe:StartStreamTranscriptionWebSocket",
                     "cloudwatch:PutMetricData", "xray:PutSpans", "xray:PutSpansForIndexing",
                     "ecs:DescribeTaskDefinition", "ec2:DescribeNetworkInterfaces",
                     "bedrock:ListFoundationModels"}


@pytest.fixture(scope="module")
def template() -> dict:
    from cfnlint.decode import decode

    tpl, problems = decode(str(TEMPLATE))
    assert not problems, problems
    return tpl


def test_cfn_lint_finds_nothing():
    """Errors, warnings and informational findings alike fail the test."""
    from cfnlint.api import ManualArgs, lint_file

    matches = lint_file(Path(TEMPLATE), ManualArgs(include_checks=["I"]))
    assert not matches, "\n".join(f"{m.rule.id} {m.message} (line {m.linenumber})" for m in matches)


def test_cfn_lint_does_catch_a_broken_template():
    """The linter really runs: a wrong property is found."""
    from cfnlint.api import lint_all

    broken = TEMPLATE.read_text().replace("VisibilityTimeout: 300", "VisibilityTimeOut: 300", 1)
    assert any(m.rule.id.startswith("E") for m in lint_all(broken))


def test_parameter_defaults_are_the_local_settings(template):
    d = Settings()
    defaults = {k: v.get("Default") for k, v in template["Parameters"].items()}
    assert defaults["BucketName"] == d.bucket
    assert defaults["UploadsPrefix"] == d.uploads_prefix
    assert defaults["UploadsQueueName"] == d.uploads_queue
    assert defaults["DeadLetterQueueName"] == d.dead_letter_queue
    assert defaults["StatusTableName"] == d.status_table
    assert defaults["RecordsTableName"] == d.records_table
    assert defaults["EventBusName"] == d.event_bus
    assert defaults["AnalysisModelId"] == models.foundation_id(d.analysis_model_id) == d.analysis_model
    assert defaults["InferenceProfilePrefix"] == d.inference_profile_prefix
    assert defaults["ImageModelId"] == d.image_model_id
    assert defaults["ImageModelRegion"] == d.image_region
    assert defaults["TtlAttributeName"] == TTL_ATTRIBUTE


def test_queue_redrive_and_visibility(template):
    q = template["Resources"]["UploadsQueue"]["Properties"]
    assert q["VisibilityTimeout"] == 300
    assert q["RedrivePolicy"]["maxReceiveCount"] == 3
    assert q["RedrivePolicy"]["deadLetterTargetArn"] == {"Fn::GetAtt": ["DeadLetterQueue", "Arn"]}


def test_bucket_notifies_the_queue_of_uploads(template):
    [conf] = template["Resources"]["RecordingsBucket"]["Properties"]["NotificationConfiguration"][
        "QueueConfigurations"]
    assert conf["Event"] == "s3:ObjectCreated:*"
    assert conf["Filter"]["S3Key"]["Rules"] == [{"Name": "prefix", "Value": {"Ref": "UploadsPrefix"}}]


def test_tables_keys_indexes_and_ttl(template):
    res = template["Resources"]
    status, records = res["StatusTable"]["Properties"], res["RecordsTable"]["Properties"]
    assert status["KeySchema"] == [{"AttributeName": "recording_id", "KeyType": "HASH"}]
    assert records["KeySchema"] == [{"AttributeName": "user_id", "KeyType": "HASH"},
                                    {"AttributeName": "created_at", "KeyType": "RANGE"}]
    assert {g["IndexName"] for g in records["GlobalSecondaryIndexes"]} == {RECORDING_INDEX, DAY_INDEX}
    for table in (status, records):
        assert table["TimeToLiveSpecification"]["Enabled"] is True


def test_alarms_are_the_ones_the_metric_export_defines(template):
    res = template["Resources"]
    by_name = {r["Properties"]["AlarmName"]: r["Properties"] for r in res.values()
               if r["Type"] == "AWS::CloudWatch::Alarm"}
    for alarm in metrics.ALARMS:
        got = by_name[alarm["AlarmName"]]
        for key, value in alarm.items():
            if key == "Dimensions":
                assert got.get("Dimensions", []) == value, alarm["AlarmName"]
            elif key == "Threshold":
                assert float(got["Threshold"]) == value
            else:
                assert got[key] == value, (alarm["AlarmName"], key)


def test_no_alarm_can_go_silent(template):
    """Every alarm writes to the alert topic, which has a subscriber, when it fires and when
    it is over; a health alarm breaches on missing data; the export has a heartbeat; the
    15 s alarm watches what users wait for."""
    res = template["Resources"]
    alarms = {r["Properties"]["AlarmName"]: r["Properties"] for r in res.values()
              if r["Type"] == "AWS::CloudWatch::Alarm"}
    assert {"vomage-upload-to-published-p90", "vomage-error-rate-high", "vomage-metric-export-stopped",
            "vomage-ingest-backlog-old", "vomage-uploads-queue-age", "vomage-dead-letters"} <= set(alarms)
    for name, props in alarms.items():
        assert props["AlarmActions"] == [{"Ref": "OpsTopic"}] == props["OKActions"], name
        assert props["TreatMissingData"] != "ignore", name
    for name in ("vomage-metric-export-stopped", "vomage-ingest-backlog-old"):
        assert alarms[name]["TreatMissingData"] == "breaching", name
    assert alarms["vomage-dead-letters"]["TreatMissingData"] == "missing"  # stays ALARM while nobody reads them
    wait = alarms["vomage-upload-to-published-p90"]
    assert (wait["MetricName"], wait["ExtendedStatistic"], float(wait["Threshold"])) == ("UploadToPublished", "p90", 15)
    (subscription,) = [r for r in res.values() if r["Type"] == "AWS::SNS::Subscription"]
    assert subscription["Properties"]["TopicArn"] == {"Ref": "OpsTopic"}
    assert subscription["Properties"]["Endpoint"] == {"Ref": "AlertEmail"}
    assert "Default" not in template["Parameters"]["AlertEmail"]


def test_the_dashboard_shows_the_wait_errors_backlog_api_satisfaction_and_cost(template):
    import json
    import re

    body, names = template["Resources"]["OperationsDashboard"]["Properties"]["DashboardBody"]["Fn::Sub"]
    rendered = re.sub(r"\$\{[^}]+\}", "x", body)
    widgets = json.loads(rendered)["widgets"]
    text = json.dumps(widgets)
    for metric in ("UploadToPublished", "SpeechEndToMood", "ErrorRate", "Errors", "IngestBacklogAge",
                   "APIResponseTime", "UserSatisfactionScore", "EstimatedCost"):
        assert metric in text, metric
    assert all(set(re.findall(r"\$\{([^}]+)\}", body)) - {"AWS::Region"} <= set(names) for _ in [0])

def test_event_rule_matches_the_published_source(template):
    for name in ("ProcessingErrorRule", "ProcessingErrorAlertRule"):
        rule = template["Resources"][name]["Properties"]
        assert rule["EventPattern"] == {"source": [SOURCE], "detail-type": [ERROR]}


def _statements(template: dict):
    for name, res in template["Resources"].items():
        props = res.get("Properties", {})
        if res["Type"] == "AWS::IAM::Role":
            docs = [p["PolicyDocument"] for p in props.get("Policies", [])]
        elif res["Type"] == "AWS::IAM::Policy":
            docs = [props["PolicyDocument"]]
        else:
            continue
        for doc in docs:
            for st in doc["Statement"]:
                yield name, st


def test_iam_is_least_privilege(template):
    roles = {n for n, r in template["Resources"].items() if r["Type"] == "AWS::IAM::Role"}
    assert {"IngestSensorRole", "ProcessingRunRole", "BatchJobsRunRole", "MetricExportRunRole"} <= roles
    for name, st in _statements(template):
        assert st["Effect"] == "Allow"
        actions = st["Action"] if isinstance(st["Action"], list) else [st["Action"]]
        for action in actions:
            assert "*" not in action, f"{name}: wildcard action {action}"
        if st["Resource"] == "*":
            assert set(actions) <= NO_RESOURCE_LEVEL, f"{name}: {actions} on '*'"


def _arns(resource) -> list[str]:
    """The ARN patterns of a statement's Resource, through !If and both forms of !Sub."""
    out = []
    for item in resource if isinstance(resource, list) else [resource]:
        if isinstance(item, dict) and "Fn::If" in item:
            out += _arns([v for v in item["Fn::If"][1:] if v != {"Ref": "AWS::NoValue"}])
        elif isinstance(item, dict) and "Fn::Sub" in item:
            sub = item["Fn::Sub"]
            text, names = (sub, {}) if isinstance(sub, str) else (sub[0], sub[1])
            for name, value in names.items():
                text = text.replace("${" + name + "}", f"<{value['Fn::Select'][0]}>")
            out.append(text)
        else:
            out.append(item if isinstance(item, str) else str(item))
    return out


def _statement(template: dict, role: str, sid: str) -> dict:
    return next(st for name, st in _statements(template) if name == role and st.get("Sid") == sid)


def test_only_model_ids_given_are_invocable(template):
    for _name, st in _statements(template):
        if "bedrock:InvokeModel" in st["Action"]:
            for arn in _arns(st["Resource"]):
                assert "foundation-model/${" in arn or "inference-profile/${" in arn, arn


PROFILE_ARN = ("arn:${AWS::Partition}:bedrock:${AWS::Region}:${AWS::AccountId}:"
               "inference-profile/${InferenceProfilePrefix}.${AnalysisModelId}")


@pytest.mark.parametrize(("role", "sid"), [("ProcessingRunRole", "InvokeMoodModel"),
                                           ("BatchJobsRunRole", "ReprocessOnDemand")])
def test_the_mood_model_is_granted_through_its_profile_in_every_routed_region(template, role, sid):
    """Converse is authorised as bedrock:InvokeModel: on the profile and on the model in each routed region."""
    st = _statement(template, role, sid)
    assert st["Action"] == "bedrock:InvokeModel"
    assert _arns(st["Resource"]) == [PROFILE_ARN] + [
        f"arn:${{AWS::Partition}}:bedrock:<{n}>::foundation-model/${{AnalysisModelId}}" for n in range(3)]
    routed = {item["Fn::Sub"][1]["Routed"]["Fn::Select"][1]["Ref"] for item in st["Resource"]
              if isinstance(item, dict) and isinstance(item.get("Fn::Sub"), list)}
    assert routed == {"AnalysisProfileRegions"}
    assert template["Parameters"]["AnalysisProfileRegions"]["Default"].split(",") == [
        "us-east-1", "us-east-2", "us-west-2"]


def test_the_image_model_is_granted_in_its_own_region_and_the_check_can_read_lifecycles(template):
    image = _statement(template, "ProcessingRunRole", "InvokeImageModel")
    assert _arns(image["Resource"]) == [
        "arn:${AWS::Partition}:bedrock:${ImageModelRegion}::foundation-model/${ImageModelId}"]
    check = _statement(template, "ProcessingRunRole", "ModelLifecycle")
    assert sorted(check["Action"]) == ["bedrock:GetFoundationModel", "bedrock:GetInferenceProfile"]
    arns = _arns(check["Resource"])
    assert PROFILE_ARN in arns and any("${ImageModelId}" in a for a in arns)
    batch = _statement(template, "BatchJobsRunRole", "ReprocessInBatch")
    assert PROFILE_ARN in _arns(batch["Resource"])
    metrics_put = _statement(template, "MetricExportRunRole", "PutMetrics")
    assert set(metrics_put["Condition"]["StringEquals"]["cloudwatch:namespace"]) == {
        metrics.NAMESPACE, metrics.COST_NAMESPACE, metrics.UX_NAMESPACE}


def test_what_local_leaves_out_is_documented(template):
    """Every resource omitted with Local=true is one provision.py says why of."""
    left_out = {n for n, r in template["Resources"].items() if r.get("Condition") == "IsAws"}
    assert left_out == set(LEFT_OUT_LOCALLY)


def test_every_s3_lifetime_is_the_one_in_lifetimes(template):
    from vomage_dagster.domain import lifetimes

    rules = template["Resources"]["RecordingsBucket"]["Properties"]["LifecycleConfiguration"]["Rules"]
    by_prefix = {r["Prefix"]: r["ExpirationInDays"] for r in rules
                 if isinstance(r.get("Prefix"), str) and "ExpirationInDays" in r}
    assert by_prefix == lifetimes.S3_PREFIX_DAYS
    logs = next(r for r in rules if r.get("Prefix") == {"Ref": "ComputeLogsPrefix"})
    assert logs["ExpirationInDays"] == lifetimes.COMPUTE_LOG_DAYS
    for name in ("UploadsQueue", "DeadLetterQueue"):
        seconds = template["Resources"][name]["Properties"]["MessageRetentionPeriod"]
        assert seconds == lifetimes.QUEUE_DAYS * lifetimes.DAY


def test_the_bucket_refuses_every_request_not_over_tls(template):
    policy = template["Resources"]["RecordingsBucketPolicy"]
    assert policy["Condition"] == "IsAws" and policy["Properties"]["Bucket"] == {"Ref": "RecordingsBucket"}
    (deny,) = [st for st in policy["Properties"]["PolicyDocument"]["Statement"] if st["Effect"] == "Deny"]
    assert (deny["Effect"], deny["Principal"], deny["Action"]) == ("Deny", "*", "s3:*")
    assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    assert {"Fn::GetAtt": ["RecordingsBucket", "Arn"]} in deny["Resource"]


def test_objects_are_encrypted_with_the_templates_kms_key(template):
    rule = template["Resources"]["RecordingsBucket"]["Properties"]["BucketEncryption"][
        "ServerSideEncryptionConfiguration"][0]
    assert rule["ServerSideEncryptionByDefault"] == {"SSEAlgorithm": "aws:kms",
                                                      "KMSMasterKeyID": {"Fn::GetAtt": ["DataKey", "Arn"]}}
    key = template["Resources"]["DataKey"]["Properties"]
    assert key["EnableKeyRotation"] is True
    use = next(st for st in key["KeyPolicy"]["Statement"] if st["Sid"] == "AccountRolesThroughS3")
    assert "kms:ViaService" in use["Condition"]["StringEquals"]
    # Every role that reads or writes the bucket may use the key, through S3 only.
    touching = {name for name, st in _statements(template)
                if any(a.startswith("s3:") for a in (st["Action"] if isinstance(st["Action"], list)
                                                     else [st["Action"]]))}
    granted = {name for name, st in _statements(template) if st.get("Sid") == "UseDataKey"}
    assert touching <= granted and "kms:ViaService" in str(
        next(st for n, st in _statements(template) if st.get("Sid") == "UseDataKey")["Condition"])


def test_the_daemon_passes_only_the_run_roles_to_ecs_tasks(template):
    (passing,) = [st for name, st in _statements(template) if name == "DaemonRole" and "iam:PassRole" in st["Action"]]
    roles = {r["Fn::GetAtt"][0] for r in passing["Resource"] if "Fn::GetAtt" in r}
    assert roles == {"ProcessingRunRole", "BatchJobsRunRole", "MetricExportRunRole"}
    # ... and the compute stack's execution role, by the name compute.yaml gives it.
    (by_name,) = [r["Fn::Sub"] for r in passing["Resource"] if "Fn::Sub" in r]
    assert by_name.endswith(":role/${AWS::StackName}-task-execution")
    assert passing["Condition"] == {"StringEquals": {"iam:PassedToService": "ecs-tasks.amazonaws.com"}}
    for _name, st in _statements(template):
        if "iam:PassRole" in st["Action"]:
            assert st["Resource"] != "*" and "iam:PassedToService" in st["Condition"]["StringEquals"]


def test_the_network_redis_and_the_execution_role_are_the_compute_stacks(template):
    """They moved to compute.yaml with the VPC: nothing here needs a network any more."""
    types = {r["Type"] for r in template["Resources"].values()}
    assert not {t for t in types if t.startswith(("AWS::ElastiCache::", "AWS::EC2::", "AWS::ECS::"))}
    assert "TaskExecutionRole" not in template["Resources"]
    assert not {"VpcId", "PrivateSubnetIds", "TaskSecurityGroupId", "RedisAuthSecretArn"} & set(template["Parameters"])
    assert "Rules" not in template and "RedisUrl" not in template["Outputs"]
    # Local=true needs none but the alerts' address (the local stack passes a placeholder).
    assert [n for n, p in template["Parameters"].items() if "Default" not in p] == ["AlertEmail"]


def test_outputs_of_resources_left_out_locally_are_left_out_too(template):
    """Moto's DescribeStacks fails for ever on an output naming a resource it skipped."""
    left_out = {n for n, r in template["Resources"].items() if r.get("Condition") == "IsAws"}
    for key, output in template["Outputs"].items():
        if cfn_refs(output["Value"]) & left_out:
            # Either the output has the condition, or (exports: moto ignores their condition)
            # its value does.
            guarded = output.get("Condition") == "IsAws" or output["Value"].get("Fn::If", [None])[0] == "IsAws"
            assert guarded, key


def test_the_images_distribution_serves_only_images_and_only_through_its_origin_access(template):
    res = template["Resources"]
    config = res["ImagesDistribution"]["Properties"]["DistributionConfig"]
    (origin,) = config["Origins"]
    assert origin["OriginAccessControlId"] == {"Fn::GetAtt": ["ImagesOriginAccessControl", "Id"]}
    assert origin["S3OriginConfig"] == {"OriginAccessIdentity": ""}  # OAC, not the legacy identity
    assert res["ImagesOriginAccessControl"]["Properties"]["OriginAccessControlConfig"]["SigningBehavior"] == "always"
    (images,) = config["CacheBehaviors"]
    assert images["PathPattern"] == "processed/*.png" and images["ViewerProtocolPolicy"] == "https-only"
    assert set(images["AllowedMethods"]) == {"GET", "HEAD"}
    # Every other path is refused at the edge.
    default = config["DefaultCacheBehavior"]
    (refuse,) = default["FunctionAssociations"]
    assert refuse["EventType"] == "viewer-request"
    assert refuse["FunctionARN"] == {"Fn::GetAtt": ["ImagesOnlyFunction", "FunctionARN"]}
    assert "statusCode: 403" in res["ImagesOnlyFunction"]["Properties"]["FunctionCode"]
    for name in ("ImagesDistribution", "ImagesOriginAccessControl", "ImagesOnlyFunction"):
        assert res[name]["Condition"] == "IsAws"
    condition, url, local = template["Outputs"]["ImagesBaseUrl"]["Value"]["Fn::If"]
    assert condition == "IsAws" and url["Fn::Sub"].startswith("https://") and local == {"Ref": "AWS::NoValue"}


DISTRIBUTION_ARN = ("arn:${AWS::Partition}:cloudfront::${AWS::AccountId}:distribution/${ImagesDistribution}")


def test_only_the_distribution_reads_images_and_decrypts_them(template):
    res = template["Resources"]
    (read,) = [st for st in res["RecordingsBucketPolicy"]["Properties"]["PolicyDocument"]["Statement"]
               if st["Effect"] == "Allow"]
    assert read["Principal"] == {"Service": "cloudfront.amazonaws.com"} and read["Action"] == "s3:GetObject"
    # processed/ also holds each recording's transcript and mood: only the images are served.
    assert read["Resource"] == {"Fn::Sub": "${RecordingsBucket.Arn}/processed/*.png"}
    assert read["Condition"] == {"StringEquals": {"AWS:SourceArn": {"Fn::Sub": DISTRIBUTION_ARN}}}
    conditional = [st["Fn::If"] for st in res["DataKey"]["Properties"]["KeyPolicy"]["Statement"] if "Fn::If" in st]
    ((condition, decrypt, absent),) = conditional
    assert condition == "IsAws" and absent == {"Ref": "AWS::NoValue"}
    assert decrypt["Principal"] == {"Service": "cloudfront.amazonaws.com"} and decrypt["Action"] == "kms:Decrypt"
    assert decrypt["Condition"] == {"StringEquals": {"AWS:SourceArn": {"Fn::Sub": DISTRIBUTION_ARN}}}


def test_the_apps_streaming_role_may_only_stream_and_only_the_live_view_assumes_it(template):
    role = template["Resources"]["AppStreamingRole"]["Properties"]
    actions = [a for n, st in _statements(template) if n == "AppStreamingRole"
               for a in (st["Action"] if isinstance(st["Action"], list) else [st["Action"]])]
    assert actions == ["transcribe:StartStreamTranscriptionWebSocket"]
    trust = role["AssumeRolePolicyDocument"]["Statement"]
    assert len(trust) == 1 and "LiveViewRole" in str(trust[0]["Condition"])
    live = [st for n, st in _statements(template) if n == "LiveViewRole" and st["Action"] == "sts:AssumeRole"]
    assert len(live) == 1 and "app-streaming" in str(live[0]["Resource"])
    reads = [st for n, st in _statements(template)
             if n == "ProcessingRunRole" and st.get("Sid") == "ReadStreamedTranscripts"]
    assert reads and reads[0]["Action"] == "s3:GetObject"


def test_the_processes_that_make_spans_may_send_them_to_x_ray(template):
    """The live view, the ingest and sensors, and the recording runs trace recordings; no
    other role may write spans."""
    may = {name for name, res in template["Resources"].items() if res["Type"] == "AWS::IAM::Role"
           and any("xray:PutSpans" in (s["Action"] if isinstance(s["Action"], list) else [s["Action"]])
                   for p in res["Properties"].get("Policies", []) for s in p["PolicyDocument"]["Statement"])}
    assert may == {"LiveViewRole", "IngestSensorRole", "ProcessingRunRole"}
