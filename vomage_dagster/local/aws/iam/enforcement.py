"""The moto hooks: every request moto serves is checked against the caller's policies,
as AWS would; see the package docstring for each patch."""

from __future__ import annotations

import functools
import hmac
import json
import logging
import os
import threading
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

from vomage_dagster.local.aws.iam.policies import ALLOW, DENY, Caller, as_list, evaluate, normalise
from vomage_dagster.local.aws.iam.resolvers import Check, resolve_checks

log = logging.getLogger("vomage.iam")
_applied = False
_lock = threading.Lock()

# --------------------------------------------------------------------------------------
# Authorisation of one request
# --------------------------------------------------------------------------------------


class RootAccessKey:
    """P3: a key of MOTO_IAM_ROOT_KEYS, acting as the account root."""

    def __init__(self, account_id: str, partition: str, access_key_id: str, secret: str):
        self.account_id, self.partition = account_id, partition
        self._access_key_id, self._secret_access_key = access_key_id, secret

    @property
    def arn(self) -> str:
        return f"arn:{self.partition}:iam::{self.account_id}:root"

    def create_credentials(self) -> Any:
        from botocore.credentials import Credentials

        return Credentials(self._access_key_id, self._secret_access_key)

    def collect_policies(self) -> list:
        return []


def _root_keys() -> dict[str, str]:
    raw = os.environ.get("MOTO_IAM_ROOT_KEYS", "")
    return dict(part.split(":", 1) for part in raw.split(",") if ":" in part)


def caller_of(iam_request: Any) -> Caller:
    from moto.iam.access_control import AssumedRoleAccessKey, IAMUserAccessKey

    key = iam_request._access_key
    account = iam_request.account_id
    if isinstance(key, IAMUserAccessKey):
        user = key.backend.get_user(key._owner_user_name)
        return Caller("User", user.arn, user.arn, account, user.id, user.name)
    if isinstance(key, AssumedRoleAccessKey):
        try:
            role = key.backend.get_role(key._owner_role_name)
            role_arn, role_id = role.arn, role.id
        except Exception:  # noqa: BLE001 - role deleted since
            role_arn, role_id = f"arn:{key.partition}:iam::{account}:role/{key._owner_role_name}", ""
        return Caller("AssumedRole", key.arn, role_arn, account, f"{role_id}:{key._session_name}")
    return Caller("Root", key.arn, key.arn, account)


def _documents(policies: list) -> list[dict]:
    from moto.iam.access_control import IAMPolicy

    docs = []
    for policy in policies:
        if isinstance(policy, (str, bytes)) or hasattr(policy, "versions") or isinstance(policy, dict):
            docs.append(IAMPolicy(policy)._policy_json)
    return docs


def base_context(caller: Caller, region: str, secure: bool) -> dict[str, list[str]]:
    ctx = {
        "aws:principalarn": [caller.principal_arn],
        "aws:principalaccount": [caller.account],
        "aws:principaltype": [caller.kind if caller.kind != "Root" else "Account"],
        "aws:requestedregion": [region],
        "aws:securetransport": ["true" if secure else "false"],
    }
    if caller.userid:
        ctx["aws:userid"] = [caller.userid]
    if caller.username:
        ctx["aws:username"] = [caller.username]
    return ctx


@dataclass
class Denial:
    check: Check
    explicit: bool
    caller: Caller

    @property
    def message(self) -> str:
        on = f" on resource: {self.check.resource}" if self.check.resource != "*" else ""
        why = ("with an explicit deny in an identity-based policy" if self.explicit
               else f"because no identity-based policy allows the {self.check.action} action")
        return f"User: {self.caller.arn} is not authorized to perform: {self.check.action}{on} {why}"


def decide(caller: Caller, policies: list, checks: list[Check], base_ctx: dict, backend: Any) -> Denial | None:
    """None when every check is allowed, else the first refusal."""
    if caller.kind == "Root":
        return None
    docs = _documents(policies)
    for check in checks:
        if check.action.lower() == "sts:getcalleridentity":
            continue  # always allowed, even with an explicit Deny (as moto and AWS)
        ctx = {**base_ctx, **check.context}
        identity, _ = evaluate(docs, check.action, check.resource, ctx)
        if identity == DENY:
            return Denial(check, True, caller)
        if check.action.lower() == "sts:assumerole":
            # The role's trust policy must allow the caller too.  Naming the caller (or its
            # role) is enough on its own; naming the account delegates to the caller's
            # identity policy.  Service principals never match IAM credentials.
            try:
                role = backend.get_role_by_arn(check.resource)
                trust_doc = json.loads(role.assume_role_policy_document)
            except Exception:  # noqa: BLE001 - no such role
                return Denial(check, False, caller)
            trust, strength = evaluate([trust_doc], check.action, check.resource, ctx, caller)
            if trust == DENY:
                return Denial(check, True, caller)
            if trust == ALLOW and (strength == 2 or identity == ALLOW):
                continue
            return Denial(check, False, caller)
        if identity != ALLOW:
            return Denial(check, False, caller)
    return None


# --------------------------------------------------------------------------------------
# S3 requests without an Authorization header: presigned URLs and browser POST uploads
# --------------------------------------------------------------------------------------


class _SignedBy:
    """What the funnel needs of an IAMRequest, for a presigned request."""

    def __init__(self, access_key: Any, account_id: str, region: str):
        self._access_key, self.account_id, self._region, self._service = access_key, account_id, region, "s3"

    @property
    def backend(self) -> Any:
        from moto.iam.models import iam_backends
        from moto.utilities.utils import get_partition

        return iam_backends[self.account_id][get_partition(self._region)]


def _s3_error(kind: str, message: str | None = None) -> Exception:
    from moto.s3 import exceptions as e

    if kind == "signature":
        return e.S3SignatureDoesNotMatchError()
    if kind == "key":
        return e.S3InvalidAccessKeyIdError()
    err = e.S3AccessDeniedError()
    if message:
        err.message = message
    return err


def _key_for(resp: Any, access_key_id: str, token: str | None) -> Any:
    from moto.iam import access_control
    from moto.utilities.utils import get_partition

    try:
        return access_control.create_access_key(
            account_id=resp.current_account, partition=get_partition(resp.region),
            access_key_id=access_key_id, headers={"X-Amz-Security-Token": token} if token else {})
    except access_control.CreateAccessKeyFailure:
        raise _s3_error("key") from None


def _hmac(key: bytes, msg: str, digest: str = "sha256") -> bytes:
    import hashlib
    import hmac

    return hmac.new(key, msg.encode("utf-8"), getattr(hashlib, digest)).digest()


def _sigv4_key(secret: str, date: str, region: str, service: str) -> bytes:
    k = _hmac(("AWS4" + secret).encode("utf-8"), date)
    for part in (region, service, "aws4_request"):
        k = _hmac(k, part)
    return k


def _check_post_policy(resp: Any, fields: dict[str, str], policy: dict, bucket: str) -> None:
    """The POST policy's expiration and conditions, as S3 checks them."""
    import datetime as dt

    exp = dt.datetime.fromisoformat(policy["expiration"].replace("Z", "+00:00"))
    if exp < dt.datetime.now(dt.UTC):
        raise _s3_error("denied", "Invalid according to Policy: Policy expired.")
    values = {**fields, "bucket": bucket}
    covered = set()
    size = len(resp.body or b"")
    for cond in policy.get("conditions", []):
        if isinstance(cond, dict):
            (name, want), = cond.items()
            op, name = "eq", name.lower()
        elif cond[0] == "content-length-range":
            if not int(cond[1]) <= size <= int(cond[2]):
                raise _s3_error("denied", "Your proposed upload exceeds the maximum allowed size" if size > int(cond[2])
                                else "Your proposed upload is smaller than the minimum allowed size")
            continue
        else:
            op, name, want = cond[0].lower(), cond[1].lstrip("$").lower(), cond[2]
        covered.add(name)
        got = values.get(name, "")
        if (op == "eq" and got != want) or (op == "starts-with" and not got.startswith(want)):
            raise _s3_error("denied", f"Invalid according to Policy: Policy Condition failed: {json.dumps(cond)}")
    extra = [n for n in fields if n not in covered and not n.startswith("x-ignore-")
             and n not in ("policy", "signature", "x-amz-signature", "awsaccesskeyid", "file", "bucket")]
    if extra:
        raise _s3_error("denied", f"Invalid according to Policy: Extra input fields: {', '.join(extra)}")


def s3_presigned_caller(resp: Any, bucket: str) -> _SignedBy:
    """Verify a presigned URL (SigV2 or SigV4 query) or a POST policy upload; the key that
    signed it.  Raises S3's own errors (SignatureDoesNotMatch, InvalidAccessKeyId,
    AccessDenied: expired, policy condition failed, anonymous)."""
    import base64
    import datetime as dt
    import time as _time

    from botocore.auth import HmacV1Auth, S3SigV4QueryAuth
    from botocore.awsrequest import AWSRequest

    qs = {k: v[0] for k, v in resp.querystring.items() if isinstance(v, list) and v}
    raw_query = urlparse(resp.uri).query
    lower = {k.lower(): v for k, v in qs.items()}
    if "X-Amz-Credential" in qs and "X-Amz-Signature" in qs:  # SigV4 query
        akid, date, region, service, _ = qs["X-Amz-Credential"].split("/")
        key = _key_for(resp, akid, qs.get("X-Amz-Security-Token"))
        signed = dt.datetime.strptime(qs["X-Amz-Date"], "%Y%m%dT%H%M%SZ").replace(tzinfo=dt.UTC)
        if signed.timestamp() + int(qs.get("X-Amz-Expires", "3600")) < _time.time():
            raise _s3_error("denied", "Request has expired")
        query = "&".join(p for p in raw_query.split("&") if not p.startswith("X-Amz-Signature="))
        names = qs["X-Amz-SignedHeaders"].split(";")
        headers = {n: resp.headers.get(n, "") for n in names}
        req = AWSRequest(method=resp.method, url=f"http://{resp.headers.get('Host')}{resp.raw_path}?{query}",
                         headers=headers)
        req.context["timestamp"] = qs["X-Amz-Date"]
        auth = S3SigV4QueryAuth(key.create_credentials(), service, region)
        calc = auth.signature(auth.string_to_sign(req, auth.canonical_request(req)), req)
        if calc != qs["X-Amz-Signature"]:
            raise _s3_error("signature")
    elif "AWSAccessKeyId" in qs and "Signature" in qs and "Expires" in qs:  # SigV2 query
        key = _key_for(resp, qs["AWSAccessKeyId"], qs.get("x-amz-security-token"))
        if int(qs["Expires"]) < _time.time():
            raise _s3_error("denied", "Request has expired")
        amz = {k.lower(): v for k, v in resp.headers.items() if k.lower().startswith("x-amz-")}
        if qs.get("x-amz-security-token"):
            amz["x-amz-security-token"] = qs["x-amz-security-token"]
        text = "\n".join([resp.method, resp.headers.get("Content-MD5", ""), resp.headers.get("Content-Type", ""),
                          qs["Expires"]]) + "\n"
        text += "".join(f"{k}:{amz[k]}\n" for k in sorted(amz))
        text += HmacV1Auth(None).canonical_resource(urlparse(f"{resp.raw_path}?{raw_query}"))
        calc = base64.b64encode(_hmac(key.create_credentials().secret_key.encode("utf-8"), text, "sha1")).decode()
        if calc != qs["Signature"]:
            raise _s3_error("signature")
    elif resp.method == "POST" and "policy" in lower:  # browser upload with a POST policy
        policy_b64 = lower["policy"]
        if "x-amz-credential" in lower:
            akid, date, region, service, _ = lower["x-amz-credential"].split("/")
            key = _key_for(resp, akid, lower.get("x-amz-security-token"))
            k = _sigv4_key(key.create_credentials().secret_key, date, region, service)
            calc, given = _hmac(k, policy_b64).hex(), lower.get("x-amz-signature", "")
        elif "awsaccesskeyid" in lower:
            key = _key_for(resp, lower["awsaccesskeyid"], lower.get("x-amz-security-token"))
            secret = key.create_credentials().secret_key.encode("utf-8")
            calc = base64.b64encode(_hmac(secret, policy_b64, "sha1")).decode()
            given = lower.get("signature", "")
        else:
            raise _s3_error("denied")
        if calc != given:
            raise _s3_error("signature")
        _check_post_policy(resp, lower, json.loads(base64.b64decode(policy_b64)), bucket)
    else:
        raise _s3_error("denied")  # anonymous: no bucket policy is evaluated here
    return _SignedBy(key, resp.current_account, resp.region)


# --------------------------------------------------------------------------------------
# Answers in the service's wire format
# --------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=1)
def _auth_error_class() -> type:
    from werkzeug.exceptions import HTTPException

    class AuthError(HTTPException):
        def __init__(self, status: int, body: str, content_type: str):
            super().__init__()
            self.code, self.description, self.content_type = status, body, content_type

        def get_body(self, *args: Any, **kwargs: Any) -> str:
            return self.description

        def get_headers(self, *args: Any, **kwargs: Any) -> list[tuple[str, str]]:
            return [("Content-Type", self.content_type)]

    return AuthError


_JSON_CODE = {"AccessDenied": "AccessDeniedException", "InvalidClientTokenId": "UnrecognizedClientException",
              "SignatureDoesNotMatch": "InvalidSignatureException"}


def shape_error(resp: Any, code: str, message: str, status: int = 403) -> Exception:
    """The error as the service's protocol carries it, so botocore reports the same code
    it would on AWS: JSON body with __type for json/rest-json (plus x-amzn-query-error
    for services that were query services), XML <ErrorResponse> otherwise."""
    from moto.core.exceptions import _RESTError
    from moto.core.request import determine_request_protocol
    from moto.core.utils import get_service_model

    try:
        model = get_service_model(resp.boto3_service_name)
        protocol = determine_request_protocol(model, resp.headers.get("Content-Type"))
        query_compatible = model.metadata.get("awsQueryCompatible") is not None
    except Exception:  # noqa: BLE001
        protocol, query_compatible = "query", False
    if protocol in ("json", "rest-json"):
        json_code = _JSON_CODE.get(code, code)
        if query_compatible:  # SQS, CloudWatch: botocore reports the old query code
            resp.response_headers["x-amzn-query-error"] = f"{code};Sender"
        ctype = "application/x-amz-json-1.0" if protocol == "json" else "application/json"
        resp.response_headers["Content-Type"] = ctype
        resp.response_headers["x-amzn-ErrorType"] = json_code
        try:  # the status the service model gives the error, else 400 (AWS JSON services)
            status = model.shape_for(json_code).metadata["error"]["httpStatusCode"]
        except Exception:  # noqa: BLE001 - not modelled
            status = 403 if query_compatible else 400
        return _auth_error_class()(status, json.dumps({"__type": json_code, "message": message}), ctype)
    if resp.service_name == "sns" and code == "AccessDenied":
        code = "AuthorizationError"  # SNS's name for it

    class _Err(_RESTError):
        pass

    err = _Err(code, message)
    err.code = status
    return err


# --------------------------------------------------------------------------------------
# The patches
# --------------------------------------------------------------------------------------

def _patched_authenticate_and_authorize_action(self: Any, iam_request_cls: type, resource: str = "*") -> None:
    """P1: moto's funnel, with resource/condition-aware evaluation."""
    from moto import settings
    from moto.core.authorization import ActionAuthenticatorMixin
    from moto.iam.access_control import S3IAMRequest
    from werkzeug.exceptions import HTTPException

    if ActionAuthenticatorMixin.request_count < settings.INITIAL_NO_AUTH_ACTION_COUNT:
        ActionAuthenticatorMixin.request_count += 1
        return
    if self.headers.get("X-Amz-Target") in ActionAuthenticatorMixin.PUBLIC_OPERATIONS:
        return
    is_s3 = iam_request_cls is S3IAMRequest
    parsed_url = urlparse(self.uri)
    if "Authorization" not in self.headers:
        # moto answers these with a KeyError (HTTP 500).  S3: verify presigned URLs and
        # POST-policy uploads; everything else unsigned is refused.
        if not is_s3:
            raise shape_error(self, "MissingAuthenticationToken", "Request is missing Authentication Token")
        iam_request = s3_presigned_caller(self, resource.split(":::", 1)[-1].split("/", 1)[0])
    else:
        path = self.raw_path + ("?" + parsed_url.query if parsed_url.query else "")
        try:
            iam_request = iam_request_cls(
                account_id=self.current_account, method=self.method, path=path, data=self.data,
                body=self.raw_body, headers=self.headers, action=self._get_action(),
            )
            iam_request.check_signature()
        except HTTPException as err:
            if is_s3:
                raise
            raise shape_error(self, getattr(err, "error_type", "AccessDenied"),
                              getattr(err, "message", str(err)), err.code or 403) from None
    checks = resolve_checks(self, iam_request, resource)
    caller = caller_of(iam_request)
    denial = decide(caller, iam_request._access_key.collect_policies(), checks,
                    base_context(caller, self.region, parsed_url.scheme == "https"), iam_request.backend)
    if denial is None:
        return
    log.info("IAM: DENY %s %s (%s)", denial.check.action, denial.check.resource, caller.arn)
    if is_s3:  # S3 names the caller, action and policy type too (same-account requests)
        raise _s3_error("denied", denial.message)
    raise shape_error(self, "AccessDenied", denial.message)


def _patched_create_aws_request(self: Any) -> Any:
    """P2: sign over the raw body; the parsed querystring only for form posts."""
    from botocore.awsrequest import AWSRequest

    signed = self._get_string_between("SignedHeaders=", ",", self._headers["Authorization"]).split(";")
    headers = self._create_headers_for_aws_request(signed, self._headers)
    body = self._body
    content_type = self._headers.get("Content-Type", "") or ""
    if not body and content_type.startswith("application/x-www-form-urlencoded"):
        body = self._data  # werkzeug consumed the form: moto's original fallback
    request = AWSRequest(method=self._method, url=self._path, data=body or b"", headers=headers)
    request.context["timestamp"] = headers["X-Amz-Date"]
    return request


def _patch_create_access_key(access_control: Any) -> None:
    """P3: MOTO_IAM_ROOT_KEYS act as the account root."""
    original = access_control.create_access_key

    def create_access_key(account_id: str, partition: str, access_key_id: str, headers: Any) -> Any:
        secret = _root_keys().get(access_key_id)
        if secret is not None:
            return RootAccessKey(account_id, partition, access_key_id, secret)
        return original(account_id=account_id, partition=partition, access_key_id=access_key_id, headers=headers)

    access_control.create_access_key = create_access_key


def _json_text(doc: Any) -> Any:
    return json.dumps(doc) if isinstance(doc, dict) else doc


def _aws_managed_policy(backend: Any, arn: str) -> Any:
    """An AWS-managed policy from moto's bundled copy, registered on first use."""
    from moto.iam.aws_managed_policies import aws_managed_policies_data
    from moto.iam.models import AWSManagedPolicy

    if arn in backend.managed_policies:
        return backend.managed_policies[arn]
    data = _aws_managed_data(aws_managed_policies_data)
    name = arn.rsplit("/", 1)[-1]
    if ":iam::aws:policy/" not in arn or name not in data:
        return None
    policy = AWSManagedPolicy.from_data(name, backend.account_id, backend.region_name, data[name])
    backend.managed_policies[policy.arn] = policy
    return policy


@functools.lru_cache(maxsize=1)
def _aws_managed_data(raw: str) -> dict:
    return json.loads(raw)


def _patch_cloudformation_iam(models: Any) -> None:
    """P4: CloudFormation IAM documents stored as JSON text; ManagedPolicyArns attached."""
    from moto.utilities.utils import get_partition

    for cls in (models.Role, models.User, models.Group):
        original_put = cls.put_policy

        def put_policy(self: Any, policy_name: str, policy_json: Any, _orig=original_put) -> None:
            _orig(self, policy_name, _json_text(policy_json))

        cls.put_policy = put_policy

    role_create = models.Role.create_from_cloudformation_json.__func__

    def role_from_cfn(cls: Any, resource_name: str, cloudformation_json: dict, account_id: str,
                      region_name: str, **kwargs: Any) -> Any:
        role = role_create(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs)
        backend = models.iam_backends[account_id][get_partition(region_name)]
        for arn in cloudformation_json.get("Properties", {}).get("ManagedPolicyArns", []) or []:
            if arn not in backend.managed_policies and _aws_managed_policy(backend, arn) is None:
                raise ValueError(f"ManagedPolicyArns: policy {arn} does not exist")
            backend.attach_role_policy(arn, role.name)
        return role

    models.Role.create_from_cloudformation_json = classmethod(role_from_cfn)

    inline_create = models.InlinePolicy.create_from_cloudformation_json.__func__

    def inline_from_cfn(cls: Any, resource_name: str, cloudformation_json: dict, *args: Any, **kwargs: Any) -> Any:
        props = cloudformation_json.get("Properties", {})
        if isinstance(props.get("PolicyDocument"), dict):
            cloudformation_json = {**cloudformation_json,
                                   "Properties": {**props, "PolicyDocument": json.dumps(props["PolicyDocument"])}}
        return inline_create(cls, resource_name, cloudformation_json, *args, **kwargs)

    models.InlinePolicy.create_from_cloudformation_json = classmethod(inline_from_cfn)

    # Same bug in AWS::KMS::Key: KeyPolicy kept as a dict, and moto's key-policy check in
    # DescribeKey/Encrypt/Decrypt/GenerateDataKey... then dies on json.loads (HTTP 500).
    from moto.kms.models import Key

    key_create = Key.create_from_cloudformation_json.__func__

    def key_from_cfn(cls: Any, resource_name: str, cloudformation_json: dict, *args: Any, **kwargs: Any) -> Any:
        props = cloudformation_json.get("Properties", {})
        if isinstance(props.get("KeyPolicy"), dict):
            cloudformation_json = {**cloudformation_json,
                                   "Properties": {**props, "KeyPolicy": json.dumps(props["KeyPolicy"])}}
        return key_create(cls, resource_name, cloudformation_json, *args, **kwargs)

    Key.create_from_cloudformation_json = classmethod(key_from_cfn)


def authorize_endpoint(request: Any, full_url: str, headers: Any) -> Any:
    """P5: POST /moto-api/iam/authorize
    {"access_key_id", "session_token"?, "action", "resources": [...], "context": {...},
     "region"?, "account"?, "signature"?} -> {"decision": "Allow"|"Deny", "code", "message"}.

    For the local processes that serve an AWS API themselves (the model server's Bedrock
    and Transcribe). With `signature` = {"string_to_sign", "signature", "date", "service"},
    a SigV4 signature is checked against the key's secret first, which stays here: the
    streaming endpoint verifies its presigned URLs so."""
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.iam.access_control import CreateAccessKeyFailure
    from moto.iam.models import get_account_id_from, iam_backends
    from moto.utilities.utils import get_partition

    body = json.loads(request.data or b"{}")
    region = body.get("region", "us-east-1")
    key_id = body["access_key_id"]
    account = body.get("account") or get_account_id_from(key_id) or DEFAULT_ACCOUNT_ID
    hdrs = {"X-Amz-Security-Token": body["session_token"]} if body.get("session_token") else {}
    try:
        from moto.iam import access_control

        key = access_control.create_access_key(account_id=account, partition=get_partition(region),
                                               access_key_id=key_id, headers=hdrs)
    except CreateAccessKeyFailure as exc:
        return 200, {"Content-Type": "application/json"}, json.dumps(
            {"decision": "Deny", "code": "UnrecognizedClientException", "message": exc.reason})

    signed = body.get("signature")
    if signed:
        secret = key.create_credentials().secret_key
        expected = _hmac(_sigv4_key(secret, signed["date"], region, signed["service"]),
                         signed["string_to_sign"]).hex()
        if not hmac.compare_digest(expected, str(signed["signature"])):
            return 200, {"Content-Type": "application/json"}, json.dumps(
                {"decision": "Deny", "code": "InvalidSignatureException",
                 "message": "the request signature we calculated does not match the signature you provided"})

    class _Req:  # what caller_of needs
        _access_key, account_id = key, account

    caller = caller_of(_Req)
    ctx = {k.lower(): [normalise(x) for x in as_list(v)] for k, v in (body.get("context") or {}).items()}
    checks = [Check(body["action"], r, ctx) for r in body.get("resources") or ["*"]]
    denial = decide(caller, key.collect_policies(), checks, base_context(caller, region, False),
                    iam_backends[account][get_partition(region)])
    result = {"decision": "Allow"} if denial is None else {
        "decision": "Deny", "code": "AccessDeniedException", "message": denial.message}
    return 200, {"Content-Type": "application/json"}, json.dumps(result)


def _patch_moto_api() -> None:
    from moto.moto_api._internal import urls

    urls.url_paths["{0}/moto-api/iam/authorize"] = authorize_endpoint


def apply() -> None:
    """Install the hooks (once; before moto builds its app)."""
    global _applied
    with _lock:
        if _applied:
            return
        import moto

        if moto.__version__ != "5.2.5":
            log.warning("the IAM patches were written for moto 5.2.5, not %s", moto.__version__)
        from moto.core.authorization import ActionAuthenticatorMixin
        from moto.iam import access_control, models

        ActionAuthenticatorMixin._authenticate_and_authorize_action = _patched_authenticate_and_authorize_action
        access_control.IAMRequestBase._create_aws_request = _patched_create_aws_request
        _patch_create_access_key(access_control)
        _patch_cloudformation_iam(models)
        _patch_moto_api()
        _applied = True
