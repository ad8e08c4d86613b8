"""Amazon Transcribe: batch jobs with language identification.

The job name is derived from the audio hash, so asking twice for the same audio joins
the job already running instead of paying for a second one. Polling is every
`poll_seconds` (1–2 s): the boto3 waiter's 10 s would add up to 10 s of latency. A
QUEUED job (waiting for a slot, not yet on its audio) is asked `QUEUED_POLL_FACTOR` times
less often: in a burst most jobs wait there, and each ask costs the run's CPU.

Each job uses the language's custom vocabulary (`vocabulary_prefix`, created by `vomage
deploy vocabularies`): `Settings.VocabularyName` when the language is known,
`LanguageIdSettings` (one vocabulary per language option) when Transcribe identifies it,
since a job with IdentifyLanguage takes no `Settings.VocabularyName`.
"""

from __future__ import annotations

import time
from typing import Any

from dagster import ConfigurableResource

from vomage_dagster.domain.errors import TRANSCRIPTION_FAILED, ProcessingError
from vomage_dagster.domain.transcript import Transcript, parse_transcribe_output
from vomage_dagster.domain.vocabulary import vocabulary_name
from vomage_dagster.resources.aws import client
from vomage_dagster.resources.store import ObjectStore
from vomage_dagster.settings import LANGUAGE_OPTIONS

QUEUED_POLL_FACTOR = 4

MAX_RESTARTS = 2


def job_name(audio_sha256: str, language: str | None) -> str:
    return f"vomage-{audio_sha256[:32]}-{(language or 'auto').lower()}"


class SpeechToText(ConfigurableResource):
    store: ObjectStore
    region_name: str = "us-east-1"
    endpoint_url: str | None = None
    poll_seconds: float = 1.0
    timeout_seconds: float = 600.0
    output_prefix: str = "transcribe-output/"
    vocabulary_prefix: str = ""  # empty: no custom vocabulary

    @property
    def transcribe_client(self) -> Any:
        return client("transcribe", self.region_name, self.endpoint_url)

    def start(self, media_key: str, name: str, language: str | None) -> str:
        """Start the job; an existing job of that name is joined, not restarted. The name used.

        A job of that name that FAILED is not joined (a transient failure would otherwise
        fail that audio for good), nor one that COMPLETED but whose output is gone (expired
        or erased): the next of a few numbered names is tried instead, so concurrent
        attempts still meet on one job.
        """
        for n in range(MAX_RESTARTS + 1):
            candidate = name if n == 0 else f"{name}-r{n}"
            if self._start_or_join(media_key, candidate, language):
                return candidate
        raise ProcessingError(TRANSCRIPTION_FAILED, f"transcription failed {MAX_RESTARTS + 1} times for this audio",
                              retryable=False)

    def _start_or_join(self, media_key: str, name: str, language: str | None) -> bool:
        """True when the job `name` is new or joinable; False when it exists and FAILED."""
        params: dict[str, Any] = {
            "TranscriptionJobName": name,
            "Media": {"MediaFileUri": self.store.uri(media_key)},
            "OutputBucketName": self.store.bucket,
            "OutputKey": self._output_key(name),
        }
        params.update(self.language_params(language))
        try:
            self.transcribe_client.start_transcription_job(**params)
        except self.transcribe_client.exceptions.ConflictException:
            job = self.transcribe_client.get_transcription_job(TranscriptionJobName=name)["TranscriptionJob"]
            if job["TranscriptionJobStatus"] == "FAILED":
                return False
            # A finished job whose output expired (lifecycle rule) or was erased cannot be reused.
            return job["TranscriptionJobStatus"] != "COMPLETED" or self.store.exists(self._output_key(name))
        return True

    def language_params(self, language: str | None) -> dict[str, Any]:
        """The job's language part: the language and its vocabulary, or identification
        among the app's languages with each one's vocabulary."""
        if language:
            params: dict[str, Any] = {"LanguageCode": language}
            if self.vocabulary_prefix:
                params["Settings"] = {"VocabularyName": vocabulary_name(self.vocabulary_prefix, language)}
            return params
        params = {"IdentifyLanguage": True, "LanguageOptions": list(LANGUAGE_OPTIONS)}
        if self.vocabulary_prefix:
            params["LanguageIdSettings"] = {
                option: {"VocabularyName": vocabulary_name(self.vocabulary_prefix, option)}
                for option in LANGUAGE_OPTIONS}
        return params

    def _output_key(self, name: str) -> str:
        return f"{self.output_prefix}{name}.json"

    def wait(self, name: str) -> dict:
        """Poll until the job ends; return the job description."""
        deadline = time.monotonic() + self.timeout_seconds
        while True:
            job = self.transcribe_client.get_transcription_job(TranscriptionJobName=name)[
                "TranscriptionJob"
            ]
            status = job["TranscriptionJobStatus"]
            if status == "COMPLETED":
                return job
            if status == "FAILED":
                raise ProcessingError(
                    TRANSCRIPTION_FAILED, job.get("FailureReason", "transcription failed")
                )
            if time.monotonic() > deadline:
                raise ProcessingError(TRANSCRIPTION_FAILED, f"job {name} timed out", retryable=True)
            time.sleep(self.poll_seconds * (QUEUED_POLL_FACTOR if status == "QUEUED" else 1))

    def transcribe(self, media_key: str, audio_sha256: str, language: str | None) -> Transcript:
        name = self.start(media_key, job_name(audio_sha256, language), language)
        job = self.wait(name)
        doc = self.store.get_json(self._output_key(name))
        transcript = parse_transcribe_output(doc)
        if not transcript.language:
            transcript = Transcript(transcript.text, job.get("LanguageCode") or language or "",
                                    transcript.confidence, transcript.segments)
        return transcript
