"""Deploying production (`vomage deploy up`): the data stack, then the compute stack
that imports its outputs, each through a CloudFormation change set.

Every parameter either template declares without a default must be given: the whole set
is checked before the first call, so a deploy that lacks one fails having created
nothing, naming it (CloudFormation itself would only say so stack by stack, after the
first stack was already deployed). The compute template is larger than the 51,200 bytes
CloudFormation accepts inline, so it goes to S3 first: by default the data stack's bucket
(`deploy/templates/`, kept: it is the record of what was deployed).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

INLINE_LIMIT = 51_200  # bytes of TemplateBody CloudFormation accepts
TEMPLATES_PREFIX = "deploy/templates/"
DATA, COMPUTE = "data", "compute"
FILLED_BY_THE_TOOL = {"DataStackName"}  # the compute stack imports the data stack by name


class _TagsAsData(yaml.SafeLoader):
    """Reads a template's YAML with CloudFormation's short-form tags (!Ref, !Sub, …) kept as
    plain values: only the Parameters section is read here."""


_TagsAsData.add_multi_constructor("!", lambda loader, suffix, node: None)


@dataclass(frozen=True)
class Template:
    role: str  # DATA or COMPUTE
    path: Path

    @property
    def body(self) -> str:
        return self.path.read_text()

    def parameters(self) -> dict[str, dict]:
        return (yaml.load(self.body, Loader=_TagsAsData) or {}).get("Parameters", {}) or {}

    def required(self) -> list[str]:
        return [name for name, spec in self.parameters().items()
                if "Default" not in spec and name not in FILLED_BY_THE_TOOL]


def templates(root: Path) -> list[Template]:
    folder = root / "deploy" / "cloudformation"
    return [Template(DATA, folder / "vomage.yaml"), Template(COMPUTE, folder / "compute.yaml")]


class MissingParameters(Exception):
    def __init__(self, missing: dict[str, list[str]]):
        self.missing = missing
        names = sorted({n for found in missing.values() for n in found})
        where = "; ".join(f"{role} stack: " + ", ".join(found) for role, found in missing.items())
        super().__init__(f"missing required parameter{'s' if len(names) > 1 else ''} {', '.join(names)} "
                         f"({where}); nothing was deployed")


class UnknownParameters(Exception):
    pass


def plan(given: Mapping[str, str], found: list[Template], data_stack: str) -> dict[str, dict[str, str]]:
    """Each template's parameters from `given` (a parameter both declare goes to both);
    raises before anything is deployed if one is missing or unknown to both."""
    declared = {t.role: t.parameters() for t in found}
    unknown = sorted(set(given) - {n for params in declared.values() for n in params})
    if unknown:
        raise UnknownParameters(f"no template declares {', '.join(unknown)}; nothing was deployed")
    missing = {t.role: [n for n in t.required() if not str(given.get(n, "")).strip()] for t in found}
    missing = {role: names for role, names in missing.items() if names}
    if missing:
        raise MissingParameters(missing)
    out = {t.role: {n: v for n, v in given.items() if n in declared[t.role]} for t in found}
    if "DataStackName" in declared.get(COMPUTE, {}):
        out[COMPUTE]["DataStackName"] = data_stack
    # What the two stacks must agree on, said once: the bucket's CORS origin is the live
    # view's domain, and the daemon role is scoped to the cluster the compute stack makes.
    if given.get("AppDomainName") and "AppOrigin" in declared.get(DATA, {}) and "AppOrigin" not in given:
        out[DATA]["AppOrigin"] = f"https://{given['AppDomainName']}"
    cluster = given.get("ClusterName") or given.get("EcsClusterName")
    for role, name in ((COMPUTE, "ClusterName"), (DATA, "EcsClusterName")):
        if cluster and name in declared.get(role, {}):
            out[role][name] = cluster
    return out


def _status(cfn: Any, stack: str) -> str | None:
    try:
        return cfn.describe_stacks(StackName=stack)["Stacks"][0]["StackStatus"]
    except cfn.exceptions.ClientError as exc:
        if "does not exist" in str(exc):
            return None
        raise


def deploy(cfn: Any, stack: str, template: Template, parameters: dict[str, str], *,
           template_url: str | None = None, timeout_s: float = 3600, log: Any = print) -> str:
    """Create or update `stack` through a change set and wait for it; its final status."""
    existing = _status(cfn, stack)
    if existing == "ROLLBACK_COMPLETE":
        raise RuntimeError(f"{stack} failed to create and cannot be updated: delete it, then deploy again")
    kind = "CREATE" if existing in (None, "REVIEW_IN_PROGRESS") else "UPDATE"
    name = f"vomage-{int(time.time())}"
    source = {"TemplateURL": template_url} if template_url else {"TemplateBody": template.body}
    cfn.create_change_set(StackName=stack, ChangeSetName=name, ChangeSetType=kind, **source,
                          Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in parameters.items()],
                          Capabilities=["CAPABILITY_NAMED_IAM", "CAPABILITY_AUTO_EXPAND"])
    deadline = time.monotonic() + timeout_s
    while True:
        found = cfn.describe_change_set(StackName=stack, ChangeSetName=name)
        if found["Status"] in ("CREATE_COMPLETE", "FAILED"):
            break
        if time.monotonic() > deadline:
            raise TimeoutError(f"change set {name} of {stack} still {found['Status']}")
        time.sleep(2)
    if found["Status"] == "FAILED":
        if "didn't contain changes" in found.get("StatusReason", "") or "No updates" in found.get("StatusReason", ""):
            log(f"{stack}: no changes")
            return existing or "UNCHANGED"
        raise RuntimeError(f"{stack}: change set failed: {found.get('StatusReason')}")
    log(f"{stack}: {kind.lower()} ({len(found.get('Changes', []))} changes)")
    cfn.execute_change_set(StackName=stack, ChangeSetName=name)
    while (status := _status(cfn, stack) or "").endswith("_IN_PROGRESS"):
        if time.monotonic() > deadline:
            raise TimeoutError(f"{stack} still {status}")
        time.sleep(5)
    if status not in ("CREATE_COMPLETE", "UPDATE_COMPLETE"):
        raise RuntimeError(f"{stack} ended {status}: see its events (aws cloudformation describe-stack-events)")
    return status


def stage_template(s3: Any, bucket: str, template: Template) -> str:
    """Put a template too large to pass inline where CloudFormation reads it; its URL."""
    body = template.body.encode()
    key = f"{TEMPLATES_PREFIX}{template.path.stem}-{hashlib.sha256(body).hexdigest()[:16]}.yaml"
    s3.put_object(Bucket=bucket, Key=key, Body=body, ContentType="text/yaml")
    region = s3.meta.region_name
    return f"https://{bucket}.s3.{region}.amazonaws.com/{key}"


def outputs(cfn: Any, stack: str) -> dict[str, str]:
    described = cfn.describe_stacks(StackName=stack)["Stacks"][0]
    return {o["OutputKey"]: o["OutputValue"] for o in described.get("Outputs", [])}


def deploy_all(cfn: Any, s3: Any, root: Path, given: Mapping[str, str], data_stack: str, compute_stack: str,
               artifacts_bucket: str | None = None, log: Any = print) -> dict[str, str]:
    """Both stacks in order; the compute stack's outputs."""
    found = templates(root)
    params = plan(given, found, data_stack)
    by_role = {t.role: t for t in found}
    if len(by_role[DATA].body.encode()) > INLINE_LIMIT and not artifacts_bucket and _status(cfn, data_stack) is None:
        raise ValueError(f"the data template is over {INLINE_LIMIT} bytes and {data_stack} does not exist yet: "
                         "give --artifacts-bucket (a bucket CloudFormation can read); nothing was deployed")
    for role, stack in ((DATA, data_stack), (COMPUTE, compute_stack)):
        template = by_role[role]
        url = None
        if len(template.body.encode()) > INLINE_LIMIT:
            url = stage_template(s3, artifacts_bucket or outputs(cfn, data_stack)["BucketName"], template)
        deploy(cfn, stack, template, params[role], template_url=url, log=log)
    return outputs(cfn, compute_stack)
