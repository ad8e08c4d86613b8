"""The model server asks the stack's IAM whether a caller may make the call it makes.

The model server stands in for Bedrock and Transcribe, which moto does not serve, so moto's
IAM checks (`local/aws/iam/`) never see those calls. Each one is sent to moto's
`POST /moto-api/iam/authorize` with the caller's access key, the IAM action and the
resources AWS would check (a model and the foundation models a profile routes to, a job's
ARN), and refused with Bedrock's or Transcribe's own `AccessDeniedException` when IAM would
refuse it. The streaming endpoint's presigned URLs go the same way, with their signature
checked there too (the secret stays in moto).

Without a moto endpoint (the model server on its own, in unit tests) nothing is checked.
The SigV4 signature of the ordinary HTTP calls is not verified here: the key and its
session token must exist and be allowed; moto verifies the signatures of the calls it serves.
"""

from __future__ import annotations

import json
import os
import urllib.request
from dataclasses import dataclass
from typing import Any

from vomage_dagster.local.aws.iam.resolvers import model_arns

ACCOUNT = "123456789012"  # moto's default account: every ARN the stack uses names it


@dataclass(frozen=True)
class Denied:
    status: int
    code: str
    message: str


def _credential(headers: Any) -> tuple[str, str] | None:
    """(access key id, region) from a SigV4 Authorization header."""
    auth = headers.get("Authorization", "") or ""
    if "Credential=" not in auth:
        return None
    scope = auth.split("Credential=", 1)[1].split(",", 1)[0].split("/")
    return (scope[0], scope[2]) if len(scope) >= 3 else None


class Authorizer:
    def __init__(self, moto_url: str | None):
        self.moto_url = (moto_url or "").rstrip("/")

    @classmethod
    def from_env(cls) -> Authorizer:
        """The stack starts the model server with `AWS_ENDPOINT_URL` pointing at its moto."""
        return cls(os.environ.get("AWS_ENDPOINT_URL"))

    def ask(self, access_key: str, token: str | None, region: str, action: str, resources: list[str],
            context: dict | None = None, signature: dict | None = None) -> Denied | None:
        if not self.moto_url:
            return None
        body = {"access_key_id": access_key, "session_token": token, "region": region, "action": action,
                "resources": resources, "context": context or {}, **({"signature": signature} if signature else {})}
        request = urllib.request.Request(f"{self.moto_url}/moto-api/iam/authorize", data=json.dumps(body).encode(),
                                         headers={"Content-Type": "application/json"}, method="POST")
        with urllib.request.urlopen(request, timeout=10) as resp:
            answer = json.loads(resp.read())
        if answer.get("decision") == "Allow":
            return None
        return Denied(403, answer.get("code") or "AccessDeniedException", answer.get("message") or "access denied")

    def http_call(self, headers: Any, action: str, resources: list[str],
                  context: dict | None = None) -> Denied | None:
        """An ordinary signed call: the key from its Authorization header."""
        if not self.moto_url:
            return None
        found = _credential(headers)
        if found is None:
            return Denied(403, "MissingAuthenticationTokenException", "the request is not signed")
        return self.ask(found[0], headers.get("X-Amz-Security-Token"), found[1], action, resources, context)


def invoke_resources(model_id: str, region: str) -> list[str]:
    return model_arns(model_id, region, ACCOUNT)


def foundation_model_arn(model_id: str, region: str) -> str:
    return model_id if model_id.startswith("arn:") else f"arn:aws:bedrock:{region}::foundation-model/{model_id}"


def inference_profile_arn(profile_id: str, region: str) -> str:
    return (profile_id if profile_id.startswith("arn:")
            else f"arn:aws:bedrock:{region}:{ACCOUNT}:inference-profile/{profile_id}")


def batch_job_arn(identifier: str, region: str) -> str:
    return (identifier if identifier.startswith("arn:")
            else f"arn:aws:bedrock:{region}:{ACCOUNT}:model-invocation-job/{identifier}")


def transcription_job_arn(name: str, region: str) -> str:
    return f"arn:aws:transcribe:{region}:{ACCOUNT}:transcription-job/{name}"


def vocabulary_arn(name: str, region: str) -> str:
    return f"arn:aws:transcribe:{region}:{ACCOUNT}:vocabulary/{name}"
