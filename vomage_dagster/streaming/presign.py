"""The SigV4-presigned WebSocket URL of Transcribe streaming, and its check.

The app opens `wss://transcribestreaming.<region>.amazonaws.com:8443/stream-transcription-websocket`
with the query signed (service `transcribe`, the `host` header only, the hash of an empty
body as payload). Signing and checking
share `_signature`, which takes the time as an argument: botocore's `add_auth` reads the
clock itself, and a checker must recompute with the time the client signed at.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import uuid
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from botocore.auth import SIGV4_TIMESTAMP, SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

PATH = "/stream-transcription-websocket"
SERVICE = "transcribe"
MAX_EXPIRES_S = 300  # Transcribe refuses a presigned URL valid for longer
SAMPLE_RATE = 16_000
AUTH_PARAMS = ("X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Date", "X-Amz-Expires",
               "X-Amz-SignedHeaders", "X-Amz-Security-Token", "X-Amz-Signature")


def aws_endpoint(region: str) -> str:
    return f"wss://transcribestreaming.{region}.amazonaws.com:8443{PATH}"


def stream_params(language: str | None, languages: tuple[str, ...], session_id: str | None = None,
                  vocabularies: dict[str, str] | None = None, stability: str = "") -> dict[str, str]:
    """The operation's query: 16 kHz PCM, one language or identification among `languages`.

    `vocabularies` (language → custom vocabulary name): one language streams with its
    `vocabulary-name`; identification takes `vocabulary-names`, the vocabularies of the
    options (Transcribe refuses `vocabulary-name` with `identify-language`). `stability`
    (high, medium, low) asks for stabilised partial results: items marked `Stable` no
    longer change, so the app can show them at once.
    """
    params = {"media-encoding": "pcm", "sample-rate": str(SAMPLE_RATE),
              "session-id": session_id or str(uuid.uuid4())}
    vocabularies = vocabularies or {}
    if language:
        params["language-code"] = language
        if language in vocabularies:
            params["vocabulary-name"] = vocabularies[language]
    else:
        params["identify-language"] = "true"
        params["language-options"] = ",".join(languages)
        names = [vocabularies[option] for option in languages if option in vocabularies]
        if names:
            params["vocabulary-names"] = ",".join(names)
    if stability:
        params["enable-partial-results-stabilization"] = "true"
        params["partial-results-stability"] = stability
    return params


def _http(url: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(scheme={"wss": "https", "ws": "http"}.get(parts.scheme, parts.scheme)))


def _string_to_sign(http_url: str, params: dict[str, str], access_key: str, token: str | None, region: str,
                    timestamp: str, expires: int) -> tuple[str, str]:
    """(the query with the auth parameters but the signature, the string SigV4 signs)."""
    request = AWSRequest(method="GET", url=f"{http_url}?{urlencode(params)}" if params else http_url)
    request.context["timestamp"] = timestamp
    auth = SigV4QueryAuth(Credentials(access_key, "", token), SERVICE, region, expires=expires)
    auth._modify_request_before_signing(request)  # adds the X-Amz-* parameters for this timestamp
    return urlsplit(request.url).query, auth.string_to_sign(request, auth.canonical_request(request))


def sign(string_to_sign: str, secret: str, date: str, region: str) -> str:
    """SigV4's signature of `string_to_sign` (`date` YYYYMMDD, the credential scope's)."""
    key = f"AWS4{secret}".encode()
    for part in (date, region, SERVICE, "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return hmac.new(key, string_to_sign.encode(), hashlib.sha256).hexdigest()


def _signature(http_url: str, params: dict[str, str], credentials: Credentials, region: str,
               timestamp: str, expires: int) -> tuple[str, str]:
    """(the query with the auth parameters but the signature, the signature)."""
    query, string_to_sign = _string_to_sign(http_url, params, credentials.access_key, credentials.token,
                                            region, timestamp, expires)
    return query, sign(string_to_sign, credentials.secret_key, timestamp[:8], region)


def presign(endpoint: str, params: dict[str, str], credentials: Credentials, region: str,
            expires: int = MAX_EXPIRES_S, now: dt.datetime | None = None) -> str:
    """The URL to open: `endpoint` (ws:// or wss://) with the query signed."""
    if not 1 <= expires <= MAX_EXPIRES_S:
        raise ValueError(f"expires must be 1–{MAX_EXPIRES_S} s")
    when = (now or dt.datetime.now(dt.UTC)).strftime(SIGV4_TIMESTAMP)
    query, signature = _signature(_http(endpoint), params, credentials, region, when, expires)
    return urlunsplit(urlsplit(endpoint)._replace(query=f"{query}&X-Amz-Signature={signature}"))


@dataclass(frozen=True)
class Checked:
    """A presigned request that passed: its operation parameters and the key id it used."""

    params: dict[str, str]
    access_key: str
    region: str


class Refused(Exception):
    """The URL was refused; `status` is the HTTP status Transcribe answers with."""

    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


@dataclass(frozen=True)
class Presigned:
    """A presigned request read and within its validity; its signature not checked yet."""

    params: dict[str, str]
    access_key: str
    token: str | None
    region: str
    date: str  # YYYYMMDD, the credential scope's
    string_to_sign: str
    signature: str


def read(url: str, host: str, now: dt.datetime | None = None) -> Presigned:
    """Read a presigned URL as Transcribe does: shape and expiry (the signature is the
    caller's to check, `check` with known secrets or the stack's IAM endpoint). `host` is
    the Host header the client sent (it is what was signed)."""
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    missing = [p for p in AUTH_PARAMS if p != "X-Amz-Security-Token" and p not in query]
    if missing:
        raise Refused(403, "AccessDeniedException", f"missing authentication parameters: {', '.join(missing)}")
    if query["X-Amz-Algorithm"] != "AWS4-HMAC-SHA256" or query["X-Amz-SignedHeaders"] != "host":
        raise Refused(403, "AccessDeniedException", "only AWS4-HMAC-SHA256 over the host header is accepted")
    scope = query["X-Amz-Credential"].split("/")
    if len(scope) != 5 or scope[3] != SERVICE or scope[4] != "aws4_request":
        raise Refused(403, "AccessDeniedException", "malformed credential scope")
    access_key, region = scope[0], scope[2]
    try:
        signed_at = dt.datetime.strptime(query["X-Amz-Date"], SIGV4_TIMESTAMP).replace(tzinfo=dt.UTC)
        expires = int(query["X-Amz-Expires"])
    except ValueError as exc:
        raise Refused(403, "AccessDeniedException", "malformed X-Amz-Date or X-Amz-Expires") from exc
    if scope[1] != query["X-Amz-Date"][:8]:
        raise Refused(403, "AccessDeniedException", "the credential scope's date is not the signing date")
    if not 1 <= expires <= MAX_EXPIRES_S:
        raise Refused(403, "AccessDeniedException", f"X-Amz-Expires must be 1–{MAX_EXPIRES_S}")
    now = now or dt.datetime.now(dt.UTC)
    if now > signed_at + dt.timedelta(seconds=expires):
        raise Refused(403, "AccessDeniedException", "the presigned URL has expired")
    if signed_at > now + dt.timedelta(minutes=5):
        raise Refused(403, "AccessDeniedException", "the signing time is in the future")
    params = {k: v for k, v in query.items() if k not in AUTH_PARAMS}
    token = query.get("X-Amz-Security-Token")
    http_url = urlunsplit(("http", host, parts.path, "", ""))
    _query, string_to_sign = _string_to_sign(http_url, params, access_key, token, region,
                                             query["X-Amz-Date"], expires)
    return Presigned(params, access_key, token, region, scope[1], string_to_sign, query["X-Amz-Signature"])


def check(url: str, host: str, secrets: dict[str, str], now: dt.datetime | None = None) -> Checked:
    """Check a presigned URL as Transcribe does: shape, expiry, then signature, with the
    secret keys given (`secrets`: access key id → secret)."""
    found = read(url, host, now)
    check_signature(found, secrets)
    return Checked(found.params, found.access_key, found.region)


def check_signature(found: Presigned, secrets: dict[str, str]) -> None:
    """`Refused` unless the presigned request is signed by one of the keys given."""
    secret = secrets.get(found.access_key)
    if secret is None:
        raise Refused(403, "UnrecognizedClientException", "the security token included in the request is invalid")
    if not hmac.compare_digest(sign(found.string_to_sign, secret, found.date, found.region), found.signature):
        raise Refused(403, "InvalidSignatureException",
                      "the request signature we calculated does not match the signature you provided")
