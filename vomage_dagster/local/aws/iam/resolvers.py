"""What IAM action, resource ARNs and condition keys each AWS request is checked as, per
service: moto knows resources only for S3, SQS and IAM; AWS checks every call against the
resource it names."""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, urlparse

from vomage_dagster.local.aws.iam.policies import as_list, normalise

# --------------------------------------------------------------------------------------
# What a request asks for: IAM action, resource ARN(s), condition keys
# --------------------------------------------------------------------------------------


@dataclass
class Check:
    action: str
    resource: str = "*"
    context: dict[str, list[str]] = field(default_factory=dict)


# The signing name in the credential scope is not always IAM's service prefix.
IAM_PREFIX = {"monitoring": "cloudwatch", "email": "ses", "bedrock-runtime": "bedrock"}

@dataclass
class Req:
    response: Any  # the moto BaseResponse handling the request
    service: str  # moto's service name (sqs, dynamodb, bedrock-runtime, ...)
    op: str  # API operation (SendMessage, ...)
    params: dict
    region: str
    account: str
    partition: str
    prefix: str  # IAM service prefix

    def arn(self, service: str, resource: str, region: str | None = None, account: str | None = None) -> str:
        region = self.region if region is None else region
        account = self.account if account is None else account
        return f"arn:{self.partition}:{service}:{region}:{account}:{resource}"

    def check(self, resource: str = "*", action: str | None = None, **context: Any) -> Check:
        ctx = {k.lower(): [normalise(x) for x in as_list(v)] for k, v in context.items() if v not in (None, [])}
        return Check(f"{self.prefix}:{action or self.op}", resource, ctx)


def _plain(obj: Any) -> Any:
    if hasattr(obj, "original_dict"):
        obj = obj.original_dict()
    if isinstance(obj, dict):
        return {k: _plain(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_plain(v) for v in obj]
    return obj


def _params(resp: Any) -> dict:
    if getattr(resp, "automated_parameter_parsing", False) and getattr(resp, "params", None) is not None:
        out = dict(_plain(resp.params))
    else:
        out = {}
        body = resp.body
        if isinstance(body, bytes):
            body = body.decode("utf-8", "replace")
        if isinstance(body, str) and body.lstrip().startswith("{"):
            try:
                out.update(json.loads(body))
            except ValueError:
                pass
        elif "Action" in resp.querystring:
            out.update(resp._get_params())
    for k, v in (resp.uri_match or {}).items():
        out.setdefault(k, unquote(v) if isinstance(v, str) else v)
    return out


# ---- S3 (moto derives bucket/key ARNs itself; added: condition keys, POST uploads, SSE-KMS) ----


def _s3_kms_key_arn(resp: Any, key_id: str) -> str:
    if key_id.startswith("arn:") and ":key/" in key_id:
        return key_id
    from moto.kms.models import kms_backends

    try:
        raw = kms_backends[resp.current_account][resp.region].any_id_to_key_id(key_id)
    except Exception:  # noqa: BLE001
        raw = key_id
    from moto.utilities.utils import get_partition

    return f"arn:{get_partition(resp.region)}:kms:{resp.region}:{resp.current_account}:key/{raw}"


def _s3(resp: Any, op: str, resource: str) -> list[Check]:
    qs = resp.querystring
    ctx = {}
    for key in ("prefix", "delimiter", "max-keys"):
        if key in qs:
            ctx[f"s3:{key}"] = [qs[key][0]]
    bucket, _, key = resource.split(":::", 1)[-1].partition("/")
    if op == "PutObject" and not key and resp.method == "POST" and "key" in qs:
        # A browser (presigned POST) upload: moto authorises it on the bucket; AWS on the key.
        key = qs["key"][0]
        if "${filename}" in key and getattr(resp.normalized_request, "files", None):
            upload = next(iter(resp.normalized_request.files.values()), None)
            key = key.replace("${filename}", os.path.basename(getattr(upload, "filename", "") or ""))
        resource = f"{resource.split('/', 1)[0]}/{key}"
    checks = [Check(f"s3:{op}", resource, ctx)]
    # SSE-KMS: S3 uses the key on the caller's behalf, so the caller needs kms:GenerateDataKey
    # (write) / kms:Decrypt (read) on it, with kms:ViaService = s3.<region>.amazonaws.com.
    if key and op in ("PutObject", "GetObject") and bucket and bucket != "*":
        try:
            kms_key = None
            if op == "PutObject":
                if resp.headers.get("x-amz-server-side-encryption") == "aws:kms":
                    kms_key = resp.headers.get("x-amz-server-side-encryption-aws-kms-key-id")
                if kms_key is None:
                    rule = (resp.backend.get_bucket(bucket).encryption or {}).get("Rule", {})
                    default = rule.get("ApplyServerSideEncryptionByDefault", {})
                    if default.get("SSEAlgorithm") == "aws:kms":
                        kms_key = default.get("KMSMasterKeyID")
            else:
                obj = resp.backend.get_bucket(bucket).keys.get(key)
                if obj is not None and getattr(obj, "encryption", None) == "aws:kms":
                    kms_key = obj.kms_key_id
            if kms_key:
                kms_ctx = {"kms:viaservice": [f"s3.{resp.region}.amazonaws.com"],
                           "kms:calleraccount": [resp.current_account]}
                action = "kms:GenerateDataKey" if op == "PutObject" else "kms:Decrypt"
                checks.append(Check(action, _s3_kms_key_arn(resp, kms_key), kms_ctx))
        except Exception:  # noqa: BLE001 - no such bucket/object: S3 answers that itself
            pass
    return checks


# ---- DynamoDB ----


def _ddb_value(av: Any) -> str | None:
    if isinstance(av, dict) and av:
        (kind, value), = list(av.items())[:1]
        return value if kind in ("S", "N", "B") else None
    return None


def _ddb_hash_key(req: Req, table: str) -> str | None:
    from moto.dynamodb.models import dynamodb_backends

    try:
        name = table.split(":table/")[-1] if table.startswith("arn:") else table
        return dynamodb_backends[req.account][req.region].get_table(name).hash_key_attr
    except Exception:  # noqa: BLE001 - no such table: the key is simply absent
        return None


def _ddb_leading(req: Req, table: str, items: list[dict]) -> list[str]:
    hash_key = _ddb_hash_key(req, table)
    out = []
    for item in items:
        v = _ddb_value((item or {}).get(hash_key)) if hash_key else None
        if v is not None:
            out.append(v)
    return out


def _ddb_query_leading(req: Req, table: str, p: dict) -> list[str]:
    hash_key = _ddb_hash_key(req, table)
    if not hash_key:
        return []
    if "KeyConditions" in p:  # legacy form
        cond = p["KeyConditions"].get(hash_key) or {}
        values = cond.get("AttributeValueList") or []
        return [v for v in (_ddb_value(x) for x in values[:1]) if v is not None]
    expr = p.get("KeyConditionExpression") or ""
    names = p.get("ExpressionAttributeNames") or {}
    values = p.get("ExpressionAttributeValues") or {}
    for left, right in re.findall(r"(#?[\w.]+)\s*=\s*(:\w+)", expr):
        if names.get(left, left) == hash_key:
            v = _ddb_value(values.get(right))
            return [v] if v is not None else []
    return []


def _dynamodb(req: Req) -> list[Check]:
    p, op = req.params, req.op

    def table_arn(name: str) -> str:
        return name if name.startswith("arn:") else req.arn("dynamodb", f"table/{name}")

    if op in ("BatchGetItem", "BatchWriteItem"):
        checks = []
        for table, spec in (p.get("RequestItems") or {}).items():
            if op == "BatchGetItem":
                keys = spec.get("Keys") or []
            else:
                keys = [(w.get("PutRequest") or {}).get("Item") or (w.get("DeleteRequest") or {}).get("Key")
                        for w in spec]
            checks.append(req.check(table_arn(table), **{"dynamodb:LeadingKeys": _ddb_leading(req, table, keys)}))
        return checks or [req.check()]
    if op in ("TransactGetItems", "TransactWriteItems"):
        per_item = {"Get": "GetItem", "Put": "PutItem", "Update": "UpdateItem",
                    "Delete": "DeleteItem", "ConditionCheck": "ConditionCheckItem"}
        checks = []
        for entry in p.get("TransactItems") or []:
            for kind, spec in entry.items():
                table = spec.get("TableName", "")
                key = spec.get("Key") or spec.get("Item")
                checks.append(req.check(table_arn(table), action=per_item.get(kind, kind),
                                        **{"dynamodb:LeadingKeys": _ddb_leading(req, table, [key])}))
        return checks or [req.check()]
    if p.get("TableName"):
        table = p["TableName"]
        resource = table_arn(table)
        if p.get("IndexName"):
            resource += f"/index/{p['IndexName']}"
        leading: list[str] = []
        if op in ("GetItem", "DeleteItem", "UpdateItem"):
            leading = _ddb_leading(req, table, [p.get("Key")])
        elif op == "PutItem":
            leading = _ddb_leading(req, table, [p.get("Item")])
        elif op == "Query" and not p.get("IndexName"):
            leading = _ddb_query_leading(req, table, p)
        return [req.check(resource, **{"dynamodb:LeadingKeys": leading})]
    for key in ("ResourceArn", "StreamArn", "TableArn"):
        if p.get(key):
            return [req.check(p[key])]
    return [req.check()]


# ---- EventBridge ----


def _events(req: Req) -> list[Check]:
    p, op = req.params, req.op

    def bus_arn(name: str | None) -> str:
        name = name or "default"
        return name if name.startswith("arn:") else req.arn("events", f"event-bus/{name}")

    def rule_arn(name: str, bus: str | None) -> str:
        if name.startswith("arn:"):
            return name
        bus = (bus or "default").split("/")[-1]
        return req.arn("events", f"rule/{name}" if bus == "default" else f"rule/{bus}/{name}")

    if op == "PutEvents":
        # One check per entry (events:source / events:detail-type are per entry);
        # one refused entry refuses the call.
        return [req.check(bus_arn(e.get("EventBusName")), **{"events:source": e.get("Source"),
                                                            "events:detail-type": e.get("DetailType")})
                for e in p.get("Entries") or []] or [req.check()]
    if op in ("PutRule", "DeleteRule", "DescribeRule", "EnableRule", "DisableRule") and p.get("Name"):
        return [req.check(rule_arn(p["Name"], p.get("EventBusName")))]
    if op in ("PutTargets", "RemoveTargets", "ListTargetsByRule") and p.get("Rule"):
        checks = [req.check(rule_arn(p["Rule"], p.get("EventBusName")))]
        for target in p.get("Targets") or []:  # handing a role to EventBridge
            if target.get("RoleArn"):
                checks.append(Check("iam:PassRole", target["RoleArn"],
                                    {"iam:passedtoservice": ["events.amazonaws.com"]}))
        return checks
    if op in ("CreateEventBus", "DeleteEventBus", "DescribeEventBus") and (p.get("Name") or op == "DescribeEventBus"):
        return [req.check(bus_arn(p.get("Name")))]
    if op == "ListRules":
        return [req.check(req.arn("events", "rule/*"))]
    return [req.check(p["ResourceARN"]) if p.get("ResourceARN") else req.check()]


# ---- SQS ----

_SQS_ACTION = {"SendMessageBatch": "SendMessage", "DeleteMessageBatch": "DeleteMessage",
               "ChangeMessageVisibilityBatch": "ChangeMessageVisibility"}


def _sqs(req: Req) -> list[Check]:
    p = req.params
    action = _SQS_ACTION.get(req.op, req.op)
    account, name = req.account, None
    url = p.get("QueueUrl")
    if url:
        parts = [s for s in urlparse(url).path.split("/") if s] if "://" in url else [url]
        name = parts[-1] if parts else None
        if len(parts) >= 2 and parts[-2].isdigit():
            account = parts[-2]
    elif p.get("QueueName"):
        name = p["QueueName"]
        account = p.get("QueueOwnerAWSAccountId") or account
    if not name:
        return [req.check(action=action)]
    return [req.check(req.arn("sqs", name, account=account), action=action)]


# ---- SNS ----


def _sns(req: Req) -> list[Check]:
    p = req.params
    arn = p.get("TopicArn") or p.get("TargetArn") or p.get("ResourceArn")
    if not arn and p.get("SubscriptionArn"):
        arn = p["SubscriptionArn"].rsplit(":", 1)[0]
    if not arn and req.op == "CreateTopic" and p.get("Name"):
        arn = req.arn("sns", p["Name"])
    return [req.check(arn or "*")]


# ---- CloudWatch (signing name "monitoring") ----


def _cloudwatch(req: Req) -> list[Check]:
    p, op = req.params, req.op
    if op == "PutMetricData":  # no resource-level permissions; the namespace is a condition key
        return [req.check("*", **{"cloudwatch:namespace": p.get("Namespace")})]
    names = p.get("AlarmNames") or ([p["AlarmName"]] if p.get("AlarmName") else [])
    if names and op in ("PutMetricAlarm", "DeleteAlarms", "DescribeAlarms", "SetAlarmState",
                        "DescribeAlarmHistory", "EnableAlarmActions", "DisableAlarmActions"):
        return [req.check(req.arn("cloudwatch", f"alarm:{n}")) for n in names]
    return [req.check(p.get("ResourceARN") or "*")]


# ---- CloudWatch Logs ----

_LOG_STREAM_ACTIONS = {"PutLogEvents", "GetLogEvents"}


def _logs(req: Req) -> list[Check]:
    p, op = req.params, req.op
    group = p.get("logGroupName")
    ident = p.get("logGroupIdentifier")
    if not group and ident:
        group = ident.split(":log-group:")[-1].removesuffix(":*") if ident.startswith("arn:") else ident
    if group and p.get("logStreamName") and op in _LOG_STREAM_ACTIONS:
        return [req.check(req.arn("logs", f"log-group:{group}:log-stream:{p['logStreamName']}"))]
    if group:
        return [req.check(req.arn("logs", f"log-group:{group}:*"))]
    if op == "DescribeLogGroups":
        return [req.check(req.arn("logs", "log-group:*"))]
    return [req.check(p.get("resourceArn") or "*")]


# ---- Transcribe ----


def _transcribe(req: Req) -> list[Check]:
    p, op = req.params, req.op
    job = p.get("TranscriptionJobName")
    if job and op != "StartTranscriptionJob":  # Start has no resource-level permissions
        return [req.check(req.arn("transcribe", f"transcription-job/{job}"))]
    if p.get("VocabularyName"):
        return [req.check(req.arn("transcribe", f"vocabulary/{p['VocabularyName']}"))]
    checks = [req.check()]
    role = ((p.get("JobExecutionSettings") or {}).get("DataAccessRoleArn"))
    if role:
        checks.append(Check("iam:PassRole", role, {"iam:passedtoservice": ["transcribe.amazonaws.com"]}))
    return checks


# ---- Bedrock (runtime and control plane) ----


def _profile_regions() -> dict[str, list[str]]:
    """Inference-profile prefix → the regions it may route to (the foundation model must be
    granted in each: AWS checks only the region it picked, which a test cannot predict)."""
    from vomage_dagster.local.models.served_models import PROFILE_REGIONS

    raw = os.environ.get("MOTO_IAM_PROFILE_REGIONS")
    return json.loads(raw) if raw else {k: list(v) for k, v in PROFILE_REGIONS.items()}


def model_arns(model_id: str, region: str, account: str, partition: str = "aws") -> list[str]:
    """The ARNs InvokeModel/Converse is authorised on: a foundation model in `region`; or
    an inference profile plus its foundation model in every region it routes to."""
    model_id = unquote(model_id)
    if model_id.startswith("arn:"):
        if ":inference-profile/" not in model_id:
            return [model_id]  # foundation-model, provisioned, custom, application profile
        profile, base = model_id, model_id.split(":inference-profile/")[1]
    else:
        prefix = model_id.split(".", 1)[0]
        if prefix not in _profile_regions() or "." not in model_id:
            return [f"arn:{partition}:bedrock:{region}::foundation-model/{model_id}"]
        profile, base = f"arn:{partition}:bedrock:{region}:{account}:inference-profile/{model_id}", model_id
    prefix, _, foundation = base.partition(".")
    regions = _profile_regions().get(prefix, [region])
    return [profile] + [f"arn:{partition}:bedrock:{r}::foundation-model/{foundation}" for r in regions]


def bedrock_model_resources(req: Req, model_id: str) -> list[str]:
    return model_arns(model_id, req.region, req.account, req.partition)


_BEDROCK_RUNTIME_ACTION = {"Converse": "InvokeModel", "ConverseStream": "InvokeModelWithResponseStream"}


def _bedrock_runtime(req: Req) -> list[Check]:
    action = _BEDROCK_RUNTIME_ACTION.get(req.op, req.op)
    model_id = req.params.get("modelId")
    if not model_id:
        return [req.check(action=action)]
    return [req.check(arn, action=action) for arn in bedrock_model_resources(req, model_id)]


def _bedrock(req: Req) -> list[Check]:
    p, op = req.params, req.op
    if op == "GetFoundationModel" and p.get("modelIdentifier"):
        m = p["modelIdentifier"]
        return [req.check(m if m.startswith("arn:") else req.arn("bedrock", f"foundation-model/{m}", account=""))]
    if op == "GetInferenceProfile" and p.get("inferenceProfileIdentifier"):
        i = p["inferenceProfileIdentifier"]
        return [req.check(i if i.startswith("arn:") else req.arn("bedrock", f"inference-profile/{i}"))]
    if op in ("GetModelInvocationJob", "StopModelInvocationJob") and p.get("jobIdentifier"):
        j = p["jobIdentifier"]
        return [req.check(j if j.startswith("arn:") else req.arn("bedrock", f"model-invocation-job/{j}"))]
    if op == "CreateModelInvocationJob":
        checks = [req.check(req.arn("bedrock", "model-invocation-job/*"))]
        if p.get("modelId"):
            checks += [req.check(arn) for arn in bedrock_model_resources(req, p["modelId"])]
        if p.get("roleArn"):
            checks.append(Check("iam:PassRole", p["roleArn"], {"iam:passedtoservice": ["bedrock.amazonaws.com"]}))
        return checks
    return [req.check(p.get("resourceARN") or "*")]


# ---- KMS ----


def _kms(req: Req) -> list[Check]:
    key = req.params.get("KeyId")
    if not key:
        return [req.check()]
    try:
        from moto.kms.models import kms_backends

        key_id = kms_backends[req.account][req.region].any_id_to_key_id(key)
        resource = req.arn("kms", f"key/{key_id}")
    except Exception:  # noqa: BLE001
        resource = key if key.startswith("arn:") else req.arn("kms", f"key/{key}")
    return [req.check(resource, **{"kms:CallerAccount": req.account})]


# ---- STS / IAM / ECS ----


def _sts(req: Req) -> list[Check]:
    p = req.params
    if req.op == "AssumeRole":
        return [req.check(p.get("RoleArn") or "*", **{"sts:RoleSessionName": p.get("RoleSessionName"),
                                                      "sts:ExternalId": p.get("ExternalId")})]
    return [req.check()]


def _iam(req: Req) -> list[Check]:
    p = req.params
    for key, kind in (("RoleName", "role"), ("UserName", "user"), ("GroupName", "group")):
        if p.get(key):
            return [req.check(req.arn("iam", f"{kind}/{p[key]}", region=""))]
    return [req.check(p.get("PolicyArn") or "*")]


def _ecs(req: Req) -> list[Check]:
    p = req.params
    checks = [req.check()]
    if req.op == "RegisterTaskDefinition":
        checks = [req.check(req.arn("ecs", f"task-definition/{p.get('family', '*')}:*"))]
        for key in ("taskRoleArn", "executionRoleArn"):
            if p.get(key):
                checks.append(Check("iam:PassRole", p[key], {"iam:passedtoservice": ["ecs-tasks.amazonaws.com"]}))
    return checks


RESOLVERS = {
    "dynamodb": _dynamodb, "events": _events, "sqs": _sqs, "sns": _sns,
    "cloudwatch": _cloudwatch, "logs": _logs, "transcribe": _transcribe,
    "bedrock-runtime": _bedrock_runtime, "bedrock": _bedrock, "kms": _kms,
    "sts": _sts, "iam": _iam, "ecs": _ecs,
}


def resolve_checks(resp: Any, iam_request: Any, moto_resource: str) -> list[Check]:
    op = resp._get_action()
    op = op[0] if isinstance(op, list) else op
    signing = iam_request._service
    service = resp.service_name or signing
    prefix = IAM_PREFIX.get(signing, signing)
    if service == "s3" or signing == "s3":
        return _s3(resp, op, moto_resource)
    resolver = RESOLVERS.get(service)
    if resolver is None:
        return [Check(f"{prefix}:{op}", moto_resource)]
    from moto.utilities.utils import get_partition

    req = Req(resp, service, op, _params(resp), resp.region, resp.current_account,
              get_partition(resp.region), prefix)
    return resolver(req)


