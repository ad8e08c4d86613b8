"""deploy/cloudformation/vomage.yaml: cfn-lint clean, and in step with the code it serves.

The template is what production and the local stack both deploy, so the names, the
queue's redrive, the table keys and the alarms are checked against the constants the
code uses, and every IAM statement against the least-privilege rules we hold it to.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from vomage_dagster.local.provision import LEFT_OUT_LOCALLY, TEMPLATE, TTL_ATTRIBUTE
from vomage_dagster.operations import metrics
from vomage_dagster.resources.events import ERROR, SOURCE
from vomage_dagster.resources.records import DAY_INDEX, RECORDING_INDEX
from vomage_dagster.settings import Settings

# Actions IAM grants on "*" only (no resource-level permissions): the only ones allowed
# a "*" resource here.
NO_RESOURCE_LEVEL = {"transcribe:StartTranscriptionJob", "cloudwatch:PutMetricData",
                     "ecs:DescribeTaskDefinition", "ec2:DescribeNetworkInterfaces"}


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
    assert defaults["AnalysisModelId"] == d.analysis_model_id
    assert defaults["ImageModelId"] == d.image_model_id
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
        assert got["Namespace"] == metrics.NAMESPACE
        assert got["Period"] == 300 and got["TreatMissingData"] == "notBreaching"
        for key in ("MetricName", "Statistic", "EvaluationPeriods", "ComparisonOperator"):
            assert got[key] == alarm[key], key
        assert float(got["Threshold"]) == alarm["Threshold"]
        assert got.get("Dimensions", []) == alarm["Dimensions"]


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


def test_only_model_ids_given_are_invocable(template):
    for _name, st in _statements(template):
        if "bedrock:InvokeModel" in st["Action"]:
            for arn in st["Resource"] if isinstance(st["Resource"], list) else [st["Resource"]]:
                assert "foundation-model/${" in arn["Fn::Sub"]


def test_what_local_leaves_out_is_documented(template):
    """Every resource omitted with Local=true is one provision.py says why of."""
    left_out = {n for n, r in template["Resources"].items() if r.get("Condition") == "IsAws"}
    assert left_out == set(LEFT_OUT_LOCALLY)
