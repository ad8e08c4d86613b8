"""The mood asked for while the run starts: the streamed transcript's analysis, begun by
the ingest the moment it has decided to launch a recording's run, before the launch.

A recording whose app streamed its audio (`x-amz-meta-transcript: streaming`) has its
words in S3 (the sidecar, `domain/streamed.py`) about when its upload lands. The run
would ask the mood model only after the run queue's dequeue, the run's start, the
decode, the audio checks and the media copy, all of which are on the user's path. Here
the ingest asks at once, in the background, and puts the answer in the analysis cache
under the key the run's `mood` stage reads (`prompts.analysis_cache_key`): the stage then
finds it instead of calling the model.

Nothing is published early: the cache entry is only an answer waiting. The run still
validates the audio and the sidecar against the decoded audio; a recording that fails
them never shows a mood, and a sidecar refused there sends the run to the batch job, whose
different words have another key. The entry names the recording it was asked for
(`prefetched_for`), so that recording's cost counts the call as its own, not as a saving.
While the call is in flight a short-lived marker (`analysis-pending:<key>`) tells the
`mood` stage to wait for it rather than call the model a second time.

Asked once per upload: while its run waits for a slot (`consumer.gather`), or else as its
run is launched. Bounded: at most `MAX_IN_FLIGHT` recordings at once (more, in a burst,
are left to their runs), one sidecar wait of `SIDECAR_WAIT_S`, and any failure only means
the run calls the model itself.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor

from vomage_dagster.domain import client_metadata, prompts, streamed
from vomage_dagster.domain.keys import UploadKey
from vomage_dagster.resources.analyzer import MoodAnalyzer
from vomage_dagster.resources.cache import Cache
from vomage_dagster.resources.store import ObjectStore
from vomage_dagster.telemetry import tracing

log = logging.getLogger(__name__)

MAX_IN_FLIGHT = 16
# Recordings already asked for, remembered so that asking again (the pass that launches a
# recording whose mood was asked while it was held) costs no S3 calls.
REMEMBERED = 4096
SIDECAR_WAIT_S = 5.0
SIDECAR_POLL_S = 0.05
PENDING = "analysis-pending"


class EarlyMood:
    def __init__(self, store: ObjectStore, cache: Cache, analyzer: MoodAnalyzer, workers: int = 8):
        self.store, self.cache, self.analyzer = store, cache, analyzer
        # Threads that mostly wait (S3, the model): one per call in flight at 5 recordings a second.
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="early-mood")
        self._lock = threading.Lock()
        self._in_flight: set[str] = set()
        self._started: OrderedDict[str, None] = OrderedDict()
        self.asked = 0  # model calls made here (tests, the benchmark)

    def start(self, uploads: list[UploadKey]) -> None:
        """Begin the analysis of every upload in `uploads` that may have a streamed transcript."""
        for upload in uploads:
            with self._lock:
                if (upload.recording_id in self._in_flight or upload.key in self._started
                        or len(self._in_flight) >= MAX_IN_FLIGHT):
                    continue
                self._in_flight.add(upload.recording_id)
                self._started[upload.key] = None
                while len(self._started) > REMEMBERED:
                    self._started.popitem(last=False)
            self._pool.submit(self._guarded, upload)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    def _guarded(self, upload: UploadKey) -> None:
        try:
            self.run_one(upload)
        except Exception as exc:  # the run asks the model itself; never the ingest's failure
            log.info("early mood for %s not made (%s)", upload.recording_id, type(exc).__name__)
        finally:
            with self._lock:
                self._in_flight.discard(upload.recording_id)

    def run_one(self, upload: UploadKey) -> str:
        """Ask for one recording's mood; what happened (for the tests and the logs)."""
        rid = upload.recording_id
        meta = client_metadata.read(self.store.head(upload.key).get("Metadata", {}), dt.datetime.now(dt.UTC))
        if not meta.streamed:
            return "no streamed transcript promised"
        deadline = time.monotonic() + SIDECAR_WAIT_S
        key = streamed.sidecar_key(upload.user_id, rid)
        while (raw := self.store.get_bytes_or_none(key)) is None:
            if time.monotonic() > deadline:
                return "no sidecar in time"
            time.sleep(SIDECAR_POLL_S)
        try:
            words = streamed.validate(raw, rid, None, meta.language_hint)
        except streamed.Rejected as exc:
            return f"sidecar refused: {exc}"
        cache_key = prompts.analysis_cache_key(words.text, words.language, self.analyzer.model_id)
        if self.cache.get_json("analysis", cache_key) is not None:
            return "already known"
        self.cache.set_json(PENDING, cache_key, rid)
        try:
            with tracing.recording_span("ingest: early mood", rid):
                found, usage = self.analyzer.analyze(words.text, words.language)
            self.asked += 1
            self.cache.set_json("analysis", cache_key, {**found.as_dict(), "usage": usage, "prefetched_for": rid})
        finally:
            self.cache.delete(PENDING, cache_key)
        return "asked"
