"""`vomage deploy up`: every required parameter of both templates is checked before the
first call (a deploy that lacks one creates nothing and names it), and a stack goes in
through a change set (here into the local stack's moto)."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import boto3
import pytest
from helpers import delete_stack_quietly

from vomage_dagster.operations import stacks

ROOT = Path(__file__).resolve().parents[1]


def test_each_template_declares_what_it_requires():
    data, compute = stacks.templates(ROOT)
    assert data.role == stacks.DATA and compute.role == stacks.COMPUTE
    assert "ImageUri" in compute.required()
    assert "DataStackName" not in compute.required()  # the tool fills it
    for template in (data, compute):
        for name in template.required():
            assert "Default" not in template.parameters()[name]


def test_a_plan_names_every_missing_parameter_and_fills_the_data_stack_name():
    found = stacks.templates(ROOT)
    required = {n for t in found for n in t.required()}
    with pytest.raises(stacks.MissingParameters) as caught:
        stacks.plan({}, found, "vomage")
    assert {n for names in caught.value.missing.values() for n in names} == required
    assert "nothing was deployed" in str(caught.value)
    given = {n: "x" for n in required}
    planned = stacks.plan(given, found, "vomage-blue")
    assert planned[stacks.COMPUTE]["DataStackName"] == "vomage-blue"
    for template in found:
        assert set(template.required()) <= set(planned[template.role])
    # Said once, given to both: the live view's domain is the bucket's CORS origin, the
    # cluster the daemon role is scoped to is the one the compute stack makes, a model
    # parameter both declare goes to both.
    planned = stacks.plan({**given, "AppDomainName": "app.example.com", "ClusterName": "blue",
                           "ImageModelRegion": "eu-west-1"}, found, "vomage")
    assert planned[stacks.DATA]["AppOrigin"] == "https://app.example.com"
    assert planned[stacks.DATA]["EcsClusterName"] == planned[stacks.COMPUTE]["ClusterName"] == "blue"
    assert planned[stacks.DATA]["ImageModelRegion"] == planned[stacks.COMPUTE]["ImageModelRegion"] == "eu-west-1"
    with pytest.raises(stacks.UnknownParameters, match="NoSuchParameter"):
        stacks.plan({**given, "NoSuchParameter": "1"}, found, "vomage")


def test_deploy_up_without_its_parameters_creates_nothing_and_names_them(local_stack):
    cfn = boto3.client("cloudformation", region_name="us-east-1")
    before = {s["StackName"] for s in cfn.list_stacks()["StackSummaries"]}
    done = subprocess.run([str(Path(sys.executable).parent / "vomage"), "deploy", "up", "--stack", "vomage-none",
                           "--compute-stack", "vomage-none-compute", "--parameter-overrides", "Local=true"],
                          capture_output=True, text=True, timeout=120, env=dict(os.environ))
    assert done.returncode == 2, done.stderr
    assert "ImageUri" in done.stderr and "nothing was deployed" in done.stderr and "Traceback" not in done.stderr
    assert {s["StackName"] for s in cfn.list_stacks()["StackSummaries"]} == before


def test_a_stack_goes_in_through_a_change_set(settings, local_stack):
    """The data template's local branch, as a stack of its own, by the deploy's own path."""
    import dataclasses

    from vomage_dagster.local.aws import provision

    name = f"vomage-cs-{uuid.uuid4().hex[:8]}"
    mine = dataclasses.replace(settings, bucket=name, uploads_queue=f"{name}-uploads", dead_letter_queue=f"{name}-dlq",
                               status_table=f"{name}-status", records_table=f"{name}-records",
                               users_table=f"{name}-users")
    params = {p["ParameterKey"]: p["ParameterValue"] for p in provision.stack_parameters(mine)}
    cfn = boto3.client("cloudformation", region_name=settings.region)
    data = stacks.templates(ROOT)[0]
    try:
        assert stacks.deploy(cfn, name, data, params, log=lambda _: None) == "CREATE_COMPLETE"
        # (moto keeps no outputs for a stack made from a change set: ask the table itself)
        table = boto3.client("dynamodb", region_name=settings.region).describe_table(TableName=f"{name}-status")
        assert table["Table"]["KeySchema"] == [{"AttributeName": "recording_id", "KeyType": "HASH"}]
    finally:
        delete_stack_quietly(cfn, name)
