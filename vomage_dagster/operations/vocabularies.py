"""Create or update the custom vocabularies (`vomage deploy vocabularies`, `vomage deploy up`,
the local stack), then wait until each is READY.

CloudFormation has no Transcribe vocabulary resource, so this is the deploy step that owns
them. Idempotent: a vocabulary whose entries already match its list is left alone (an
update sends it back to PENDING for minutes; the local Transcribe refuses a job that names
it meanwhile, what AWS does then is unverified); one that differs, or FAILED, is updated;
a missing one is created. GetVocabulary does not return the
entries, so they are compared by reading its `DownloadUri` (a short-lived link to the
vocabulary's file); a file that cannot be read or parsed counts as different.
"""

from __future__ import annotations

import logging
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from vomage_dagster.domain.vocabulary import Vocabulary, parse, phrases_digest

log = logging.getLogger("vomage.vocabularies")

READY, PENDING, FAILED = "READY", "PENDING", "FAILED"


def _missing(exc: Exception) -> bool:
    """GetVocabulary on a name that does not exist: Transcribe answers BadRequestException
    ("The requested vocabulary couldn't be found..."); NotFoundException is in its model too."""
    code = _error_code(exc)
    return code == "NotFoundException" or (code == "BadRequestException" and "found" in str(exc).lower())


class VocabularyFailed(RuntimeError):
    """A vocabulary ended FAILED or did not become READY in time."""


@dataclass(frozen=True)
class Outcome:
    name: str
    language: str
    action: str  # created | updated | unchanged
    state: str


def _error_code(exc: Exception) -> str | None:
    response = getattr(exc, "response", None)
    return response.get("Error", {}).get("Code") if isinstance(response, dict) else None


def describe(transcribe: Any, name: str) -> dict | None:
    """GetVocabulary's answer, or None when there is no vocabulary of that name."""
    try:
        return transcribe.get_vocabulary(VocabularyName=name)
    except Exception as exc:
        if _missing(exc):
            return None
        raise


def deployed_digest(found: dict, fetch: Callable[[str], str]) -> str | None:
    """The digest of a deployed vocabulary's entries, read from its DownloadUri; None if unreadable."""
    uri = found.get("DownloadUri")
    if not uri:
        return None
    try:
        text = fetch(uri)
    except Exception as exc:  # an expired or unreachable link: update rather than guess
        log.info("could not read %s's file (%s): it will be updated", found.get("VocabularyName"),
                 type(exc).__name__)
        return None
    rows = [row.split("\t", 1)[0] for row in parse(text.replace(",", "\n"))]
    if rows and rows[0] == "Phrase":  # a table's header
        rows = rows[1:]
    return phrases_digest(rows)


def _fetch(uri: str) -> str:
    with urllib.request.urlopen(uri, timeout=10) as resp:
        return resp.read().decode("utf-8")


def ensure(transcribe: Any, vocabulary: Vocabulary, fetch: Callable[[str], str] = _fetch,
           timeout_s: float = 900.0, poll_s: float = 5.0) -> str:
    """Create, update or keep one vocabulary; the action taken (it is not waited for)."""
    request = {"VocabularyName": vocabulary.name, "LanguageCode": vocabulary.language,
               "Phrases": list(vocabulary.phrases)}
    found = describe(transcribe, vocabulary.name)
    if found is None:
        try:
            transcribe.create_vocabulary(**request)
            return "created"
        except Exception as exc:
            if _error_code(exc) != "ConflictException":  # created meanwhile by another deploy
                raise
            found = describe(transcribe, vocabulary.name) or {}
    state = found.get("VocabularyState")
    if state == PENDING:
        found = wait_ready(transcribe, vocabulary.name, timeout_s, poll_s, raise_on_failure=False)
        state = found.get("VocabularyState")
    if (state == READY and found.get("LanguageCode") == vocabulary.language
            and deployed_digest(found, fetch) == vocabulary.digest):
        return "unchanged"
    transcribe.update_vocabulary(**request)
    return "updated"


def wait_ready(transcribe: Any, name: str, timeout_s: float = 900.0, poll_s: float = 5.0,
               raise_on_failure: bool = True) -> dict:
    """Poll GetVocabulary until READY (or FAILED); its last answer."""
    deadline = time.monotonic() + timeout_s
    while True:
        found = transcribe.get_vocabulary(VocabularyName=name)
        state = found.get("VocabularyState")
        if state == READY or (state == FAILED and not raise_on_failure):
            return found
        if state == FAILED:
            raise VocabularyFailed(f"{name} FAILED: {found.get('FailureReason', 'no reason given')}")
        if time.monotonic() > deadline:
            raise VocabularyFailed(f"{name} is still {state} after {timeout_s:.0f} s")
        time.sleep(poll_s)


def ensure_all(transcribe: Any, vocabularies: list[Vocabulary], timeout_s: float = 900.0, poll_s: float = 5.0,
               fetch: Callable[[str], str] = _fetch) -> list[Outcome]:
    """Every vocabulary created or updated as needed, then all waited for until READY
    (they process side by side); VocabularyFailed names the first that FAILED."""
    actions = [(v, ensure(transcribe, v, fetch, timeout_s, poll_s)) for v in vocabularies]
    outcomes = []
    for vocabulary, action in actions:
        found = wait_ready(transcribe, vocabulary.name, timeout_s, poll_s)
        outcomes.append(Outcome(vocabulary.name, vocabulary.language, action, found["VocabularyState"]))
    return outcomes
