"""Each process of the local stack runs as its own template role, as its ECS task would.

After the stack deploys the template, it assumes every role with its root keys (on AWS,
ECS hands a task its role; the stack's moto lets the account root stand in for ECS) and
keeps the credentials, readable by their owner only, in the state folder. A process then
gets its role's credentials in its environment, so every AWS call it makes is checked
against that role's policies (`local/aws/iam/`): a grant the template lacks fails here
as it would on AWS.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

ROLES_FILE = "roles.json"

# Process (or run-worker queue) → the template's role (logical id), as docs/deploy.md runs them.
PROCESS_ROLES = {
    "ingest": "IngestSensorRole",
    "code-server": "IngestSensorRole",  # sensors are evaluated in the code server
    "daemon": "DaemonRole",
    "webserver": "WebserverRole",
    "live-view": "LiveViewRole",
    "vomage-runs": "ProcessingRunRole",
    "vomage-batch": "BatchJobsRunRole",
    "vomage-metrics": "MetricExportRunRole",
}


def assume_all(cfn: Any, sts: Any, stack_name: str) -> dict[str, dict[str, str]]:
    """Every role the stack outputs (`<LogicalId>Arn`): logical id → its ARN and a
    session's credentials."""
    outputs = cfn.describe_stacks(StackName=stack_name)["Stacks"][0].get("Outputs", [])
    found: dict[str, dict[str, str]] = {}
    for output in outputs:
        if not output["OutputKey"].endswith("RoleArn"):
            continue
        role, arn = output["OutputKey"][:-len("Arn")], output["OutputValue"]
        creds = sts.assume_role(RoleArn=arn, RoleSessionName=f"local-{role}", DurationSeconds=3600)["Credentials"]
        found[role] = {"arn": arn, "AccessKeyId": creds["AccessKeyId"], "SecretAccessKey": creds["SecretAccessKey"],
                       "SessionToken": creds["SessionToken"]}
    return found


def write(state_dir: Path, roles: dict[str, dict[str, str]]) -> Path:
    path = state_dir / ROLES_FILE
    path.unlink(missing_ok=True)
    path.touch(mode=0o600)
    path.write_text(json.dumps(roles, indent=1))
    return path


def read(state_dir: Path) -> dict[str, dict[str, str]]:
    path = Path(state_dir) / ROLES_FILE
    return json.loads(path.read_text()) if path.exists() else {}


def credentials_env(state_dir: Path, role: str) -> dict[str, str]:
    """The environment that makes boto3 act as `role` (a logical id of the template)."""
    found = read(state_dir).get(role)
    if found is None:
        raise KeyError(f"the stack in {state_dir} has no role {role} (is it up?)")
    return credentials_env_of(found)


def credentials_env_of(found: dict[str, str]) -> dict[str, str]:
    """The environment of one assumed role (an entry of `assume_all`)."""
    return {"AWS_ACCESS_KEY_ID": found["AccessKeyId"], "AWS_SECRET_ACCESS_KEY": found["SecretAccessKey"],
            "AWS_SESSION_TOKEN": found["SessionToken"]}


def process_env(state_dir: Path, process: str) -> dict[str, str]:
    """The credentials of the role `process` runs as (see `PROCESS_ROLES`)."""
    return credentials_env(state_dir, PROCESS_ROLES[process])


def without_credentials(env: dict[str, str]) -> dict[str, str]:
    """`env` without any AWS credentials (a child then gets only those it is given)."""
    return {k: v for k, v in env.items() if k not in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
                                                      "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "AWS_PROFILE")}

