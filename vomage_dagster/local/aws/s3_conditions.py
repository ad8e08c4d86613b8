"""moto's CopyObject with `x-amz-copy-source-if-match` checked, as S3 checks it.

moto 5.2.5 honours `x-amz-copy-source-if-none-match` but copies whatever the source is
when `x-amz-copy-source-if-match` names another ETag. The platform copies an upload for
Transcribe only if it is still the file it validated (`assets/stages.py`); on S3 a
replaced upload is refused with 412 PreconditionFailed, and locally it must be too.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, unquote, urlparse

_applied = False


def _source_etag(response: Any) -> str | None:
    source = response.headers.get("x-amz-copy-source")
    if isinstance(source, bytes):
        source = source.decode("utf-8")
    parsed = urlparse(source)
    bucket, key = unquote(parsed.path).lstrip("/").split("/", 1)
    version = parse_qs(parsed.query).get("versionId", [None])[0]
    found = response.backend.get_object(bucket, key, version_id=version)
    return found.etag if found is not None else None


def apply() -> None:
    """Install the check (once; before moto serves a request)."""
    global _applied
    if _applied:
        return
    from moto.s3.exceptions import PreconditionFailed
    from moto.s3.responses import S3Response

    original = S3Response.copy_object

    def copy_object(self: Any) -> Any:
        wanted = self.headers.get("x-amz-copy-source-if-match")
        if wanted is not None:
            etag = _source_etag(self)
            if etag is not None and wanted.strip() not in (etag, etag.strip('"')):
                raise PreconditionFailed(failed_condition="x-amz-copy-source-If-Match")
        return original(self)

    S3Response.copy_object = copy_object
    _applied = True
