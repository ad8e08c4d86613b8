"""Transcribe's custom vocabularies, as the local model server keeps them.

CreateVocabulary / UpdateVocabulary / GetVocabulary behave as Transcribe's: a new or updated
vocabulary is PENDING for `processing_s`, then READY, or FAILED with a reason when an entry
breaks the language's rules (`domain/vocabulary.py`); a name that exists cannot be created
again (ConflictException); an unknown name is a BadRequestException. Batch jobs and streams
that name a vocabulary are refused unless it exists and is READY, as Transcribe refuses
them. A vocabulary in another language than the audio is not refused: Transcribe documents
that it is then silently not applied. Whisper is not biased by the entries: without audio of
the listed words here, no gain could be measured, and a prompt of hint words risks Whisper
writing them into silence.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

from vomage_dagster.domain.vocabulary import NAME_RE, problems

PROCESSING_S = 0.5  # AWS takes minutes; long enough here for a caller that forgets to wait to fail
NOT_FOUND = "The requested vocabulary couldn't be found. Check the vocabulary name and try again."


class VocabularyConflict(Exception):
    code = "ConflictException"


class VocabularyRefused(Exception):
    code = "BadRequestException"


@dataclass
class _Stored:
    name: str
    language: str
    phrases: list[str]
    modified: float
    failure: str = ""
    ready_at: float = field(default=0.0)

    def state(self, now: float) -> str:
        if now < self.ready_at:
            return "PENDING"
        return "FAILED" if self.failure else "READY"


class Vocabularies:
    def __init__(self, processing_s: float = PROCESSING_S):
        self.processing_s = processing_s
        self._stored: dict[str, _Stored] = {}
        self._lock = threading.Lock()

    def _checked(self, req: dict) -> _Stored:
        name, language = req.get("VocabularyName", ""), req.get("LanguageCode", "")
        if not NAME_RE.match(name):
            raise VocabularyRefused(f"VocabularyName {name[:40]!r} must be 1-200 of 0-9a-zA-Z._-")
        if "VocabularyFileUri" in req:
            raise VocabularyRefused("the local model server takes Phrases, not VocabularyFileUri")
        phrases = req.get("Phrases")
        if not isinstance(phrases, list) or not all(isinstance(p, str) for p in phrases):
            raise VocabularyRefused("Phrases must be a list of strings")
        now = time.time()
        found = problems(language, phrases)
        failure = ("The vocabulary has entries Transcribe does not accept: " + "; ".join(found[:5])) if found else ""
        return _Stored(name, language, list(phrases), now, failure, now + self.processing_s)

    def create(self, req: dict) -> dict:
        made = self._checked(req)
        with self._lock:
            if made.name in self._stored:
                raise VocabularyConflict("The requested vocabulary name already exists. Use a different name "
                                         "and try again.")
            self._stored[made.name] = made
        return self._summary(made)

    def update(self, req: dict) -> dict:
        made = self._checked(req)
        with self._lock:
            if made.name not in self._stored:
                raise VocabularyRefused(NOT_FOUND)
            self._stored[made.name] = made
        return self._summary(made)

    def get(self, name: str, download_base: str) -> dict:
        found = self._find(name)
        answer = {**self._summary(found), "DownloadUri": f"{download_base.rstrip('/')}/vocabulary-files/{name}"}
        if found.failure and answer["VocabularyState"] == "FAILED":
            answer["FailureReason"] = found.failure
        return answer

    def file(self, name: str) -> str:
        """The vocabulary's entries, one a line (what its DownloadUri serves)."""
        return "\n".join(self._find(name).phrases) + "\n"

    def phrases(self, name: str) -> list[str]:
        return list(self._find(name).phrases)

    def _find(self, name: str) -> _Stored:
        with self._lock:
            found = self._stored.get(name)
        if found is None:
            raise VocabularyRefused(NOT_FOUND)
        return found

    def _summary(self, stored: _Stored) -> dict:
        return {"VocabularyName": stored.name, "LanguageCode": stored.language,
                "VocabularyState": stored.state(time.time()), "LastModifiedTime": stored.modified}

    def require(self, name: str) -> _Stored:
        """The vocabulary a request names, READY; else VocabularyRefused."""
        found = self._find(name)
        state = found.state(time.time())
        if state != "READY":
            raise VocabularyRefused(f"The vocabulary {name} is in the {state} state: it can be used once READY.")
        return found
