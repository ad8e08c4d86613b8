"""Spans to AWS X-Ray over OTLP/HTTP, signed with the task's own credentials.

X-Ray takes OTLP at `https://xray.<region>.amazonaws.com/v1/traces` (with Transaction
Search on in the account), signed with SigV4 for the service `xray`. Signing in the
process keeps each task one container: no collector sidecar to run, size and watch. The
signature covers the body as sent (compressed or not): requests applies the session's
auth after the body is prepared.
"""

from __future__ import annotations

from typing import Any

import requests


class SigV4(requests.auth.AuthBase):
    """Signs each request with the credentials boto3's chain finds (the ECS task role,
    refreshed as it rotates)."""

    def __init__(self, region: str, service: str = "xray"):
        import botocore.session

        self.region, self.service = region, service
        self.credentials = botocore.session.get_session().get_credentials()

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        from botocore.auth import SigV4Auth
        from botocore.awsrequest import AWSRequest

        signed = AWSRequest(method=request.method, url=request.url, data=request.body,
                            headers={k: v for k, v in request.headers.items() if k.lower() != "connection"})
        SigV4Auth(self.credentials.get_frozen_credentials(), self.service, self.region).add_auth(signed)
        request.headers.update(dict(signed.headers.items()))
        return request


def signed_session(region: str) -> Any:
    session = requests.Session()
    session.auth = SigV4(region)
    return session


def xray_endpoint(region: str) -> str:
    return f"https://xray.{region}.amazonaws.com/v1/traces"
