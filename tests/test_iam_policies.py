"""The local stack's IAM policy engine (`local/aws/iam/policies.py`), without a server: each
case states the decision AWS documents for it; the last group is where the engine
deliberately differs (operators it does not evaluate never grant)."""

import pytest

from vomage_dagster.local.aws.iam.policies import ALLOW, DENY, Caller, arn_match, conditions_hold, evaluate, wild_match

A = "123456789012"
ROLE = f"arn:aws:iam::{A}:role/app"
SESSION = f"arn:aws:sts::{A}:assumed-role/app/s1"
TABLE = f"arn:aws:dynamodb:us-east-1:{A}:table/status"


def ctx(**kv):
    return {k.replace("__", ":").lower(): (v if isinstance(v, list) else [v]) for k, v in kv.items()}


def st(effect="Allow", action="dynamodb:GetItem", resource=TABLE, condition=None, **extra):
    s = {"Effect": effect, "Action": action, "Resource": resource, **extra}
    if condition:
        s["Condition"] = condition
    return s


def decision(statements, action="dynamodb:GetItem", resource=TABLE, context=None, caller=None):
    return evaluate([{"Statement": statements}], action, resource, context or {}, caller)[0]


CASES = [
    # wildcards and matching
    ("action case-insensitive, wildcard", decision([st(action="DynamoDB:Get*")]), ALLOW),
    ("'?' is one character", wild_match("vomage-?", "vomage-1") and not wild_match("vomage-?", "vomage-12"), True),
    ("'.' is literal (moto: regex any)", wild_match("a.b", "axb"), False),
    ("ArnLike per segment", arn_match("arn:aws:dynamodb:*:*:table/status", TABLE), True),
    ("Resource * vs resource-less action", decision([st(resource="*")], resource="*"), ALLOW),
    ("table ARN grant does not cover '*'", decision([st()], resource="*"), None),
    ("index ARN not covered by table ARN", decision([st()], resource=TABLE + "/index/i"), None),
    ("NotAction", decision([{"Effect": "Allow", "NotAction": "s3:*", "Resource": "*"}]), ALLOW),
    ("NotResource", decision([{"Effect": "Allow", "Action": "*", "NotResource": TABLE}]), None),
    ("explicit Deny wins", decision([st(), st(effect="Deny", action="dynamodb:*", resource="*")]), DENY),
    ("policy variable ${aws:username}",
     decision([st(resource=f"arn:aws:dynamodb:us-east-1:{A}:table/${{aws:username}}")],
              context=ctx(aws__username="status")), ALLOW),
    # conditions (AWS semantics)
    ("StringEquals met", conditions_hold({"StringEquals": {"events:source": ["a", "b"]}}, ctx(events__source="b")), True),
    ("StringEquals, key absent -> false", conditions_hold({"StringEquals": {"events:source": "a"}}, {}), False),
    ("StringNotEquals, key absent -> true", conditions_hold({"StringNotEquals": {"events:source": "a"}}, {}), True),
    ("StringLike", conditions_hold({"StringLike": {"s3:prefix": "uploads/*"}}, ctx(s3__prefix="uploads/u1/")), True),
    ("StringEqualsIfExists, absent -> true", conditions_hold({"StringEqualsIfExists": {"k:x": "a"}}, {}), True),
    ("ArnEquals aws:PrincipalArn", conditions_hold({"ArnEquals": {"aws:PrincipalArn": ROLE}}, ctx(aws__PrincipalArn=ROLE)), True),
    ("ForAllValues LeadingKeys all in set", conditions_hold(
        {"ForAllValues:StringEquals": {"dynamodb:LeadingKeys": ["u1"]}}, ctx(dynamodb__LeadingKeys=["u1", "u1"])), True),
    ("ForAllValues LeadingKeys one outside", conditions_hold(
        {"ForAllValues:StringEquals": {"dynamodb:LeadingKeys": ["u1"]}}, ctx(dynamodb__LeadingKeys=["u1", "u2"])), False),
    ("ForAllValues, key absent -> true (AWS!)", conditions_hold(
        {"ForAllValues:StringEquals": {"dynamodb:LeadingKeys": ["u1"]}}, {}), True),
    ("ForAnyValue, key absent -> false", conditions_hold({"ForAnyValue:StringEquals": {"k:x": ["a"]}}, {}), False),
    ("Null true when absent", conditions_hold({"Null": {"k:x": "true"}}, {}), True),
    ("Bool", conditions_hold({"Bool": {"aws:SecureTransport": False}}, ctx(aws__SecureTransport="false")), True),
    ("Numeric", conditions_hold({"NumericLessThanEquals": {"s3:max-keys": "10"}}, {"s3:max-keys": ["5"]}), True),
    ("Numeric over", conditions_hold({"NumericLessThanEquals": {"s3:max-keys": "10"}}, {"s3:max-keys": ["50"]}), False),
    ("condition keys are case-insensitive", conditions_hold({"StringEquals": {"Events:Source": "a"}}, ctx(events__source="a")), True),
    ("Allow with unmet condition grants nothing", decision([st(condition={"StringEquals": {"k:x": "a"}})]), None),
    ("Deny with unmet condition denies nothing", decision([st(), st(effect="Deny", condition={"StringEquals": {"k:x": "a"}})]), ALLOW),
    # trust policies
    ("trust: role ARN names its sessions", decision(
        [{"Effect": "Allow", "Principal": {"AWS": ROLE}, "Action": "sts:AssumeRole"}], "sts:AssumeRole", ROLE, {},
        Caller("AssumedRole", SESSION, ROLE, A)), ALLOW),
    ("trust: Service principal never matches IAM credentials", decision(
        [{"Effect": "Allow", "Principal": {"Service": "ecs-tasks.amazonaws.com"}, "Action": "sts:AssumeRole"}],
        "sts:AssumeRole", ROLE, {}, Caller("AssumedRole", SESSION, ROLE, A)), None),
    ("trust: account root matches (strength 1)", evaluate(
        [{"Statement": [{"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{A}:root"}, "Action": "sts:AssumeRole"}]}],
        "sts:AssumeRole", ROLE, {}, Caller("User", f"arn:aws:iam::{A}:user/u", f"arn:aws:iam::{A}:user/u", A)), (ALLOW, 1)),
    # deliberate difference: operators not evaluated never grant, always deny
    ("unsupported DateGreaterThan: Allow does not apply", decision(
        [st(condition={"DateGreaterThan": {"aws:CurrentTime": "2020-01-01T00:00:00Z"}})]), None),
    ("unsupported IpAddress: Deny applies", decision(
        [st(), st(effect="Deny", condition={"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}})]), DENY),
]




@pytest.mark.parametrize("name, got, want", CASES, ids=[c[0] for c in CASES])
def test_the_engine_decides_as_aws_documents(name, got, want):
    assert got == want
