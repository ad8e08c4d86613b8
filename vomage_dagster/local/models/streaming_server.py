"""Transcribe streaming's WebSocket endpoint, served by the local model server.

`GET /stream-transcription-websocket?<SigV4-presigned query>` is checked as Transcribe
checks it (shape, expiry, signature against the stack's credentials); then AudioEvent
frames of 16 kHz PCM come in and TranscriptEvent frames go out: partial results while
audio arrives, final ones as segments settle, and the rest once the empty frame ends the
stream. Whisper runs incrementally on the part not yet final, so after the last frame
only the tail (a few seconds) is left to transcribe. A malformed frame, a wrong rate or
encoding, silence for 15 s or a stream over the length limit end in an exception frame
and a close, as on AWS.

A custom vocabulary the URL names (`vocabulary-name`, or `vocabulary-names` with
`identify-language`) must exist and be READY, else the handshake is refused with
BadRequestException, as on AWS. With `enable-partial-results-stabilization=true` the items
of partial results carry `Stable`: an item is stable once two passes agree on it and it
ends at least the level's margin before the audio received (`STABLE_MARGIN_S`: high marks
items stable soonest), and later partial results keep a stable item as it was sent. The
final result is the final pass's own (AWS keeps stable items in it too; here a final pass
may still differ from them).
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
import uuid
from typing import Any

import numpy as np

from vomage_dagster.domain import audio
from vomage_dagster.domain.transcript import join_text
from vomage_dagster.local.models.authorization import Authorizer
from vomage_dagster.local.models.vocabularies import Vocabularies, VocabularyRefused
from vomage_dagster.resources import latency
from vomage_dagster.settings import LANGUAGE_OPTIONS, PARTIAL_RESULTS_STABILITIES
from vomage_dagster.streaming import event_stream, presign

log = logging.getLogger("vomage.streaming")

STEP_S = 1.0  # a new partial pass once this much more audio arrived
COMMIT_AFTER_S = 6.0  # past this much pending audio, all but the last segment become final
IDENTIFY_AFTER_S = 3.0  # identify the language once, on the first pass with this much audio
IDLE_TIMEOUT_S = 15.0  # Transcribe closes a stream that sends nothing for 15 s
# How far before the end of the audio received an item must end to be marked stable, per
# partial-results-stability: higher stability settles sooner (AWS: faster, a little less accurate).
STABLE_MARGIN_S = {"high": 0.5, "medium": 1.0, "low": 1.5}


def _json_error(status: int, code: str, message: str) -> tuple[int, str]:
    return status, json.dumps({"code": code, "message": message})


def verify(found: presign.Presigned, secrets: dict[str, str], authorizer: Authorizer | None) -> None:
    """The signature, and IAM's leave to stream: through the stack's IAM when there is one
    (the secret stays there), else against the keys given."""
    if authorizer is None or not authorizer.moto_url:
        presign.check_signature(found, secrets)
        return
    denied = authorizer.ask(found.access_key, found.token, found.region, "transcribe:StartStreamTranscriptionWebSocket",
                            ["*"], signature={"string_to_sign": found.string_to_sign, "signature": found.signature,
                                              "date": found.date, "service": presign.SERVICE})
    if denied is not None:
        raise presign.Refused(denied.status, denied.code, denied.message)


def check_request(path: str, host: str, secrets: dict[str, str],
                  authorizer: Authorizer | None = None, vocabularies: Vocabularies | None = None) -> dict[str, str]:
    """The operation parameters of an acceptable request, or presign.Refused."""
    found = presign.read(f"http://{host}{path}", host)
    verify(found, secrets, authorizer)
    params = found.params
    if path.split("?", 1)[0] != presign.PATH:
        raise presign.Refused(404, "NotFound", path.split("?", 1)[0])
    if params.get("media-encoding") != "pcm":
        raise presign.Refused(400, "BadRequestException", "media-encoding: the local endpoint takes pcm")
    if params.get("sample-rate") != str(presign.SAMPLE_RATE):
        raise presign.Refused(400, "BadRequestException",
                              f"sample-rate {params.get('sample-rate')!r}: the app streams "
                              f"{presign.SAMPLE_RATE} Hz PCM")
    language = params.get("language-code")
    if language is not None and language not in LANGUAGE_OPTIONS:
        raise presign.Refused(400, "BadRequestException", f"language-code {language!r} is not one the app uses")
    if language is None:
        options = params.get("language-options", "").split(",")
        if params.get("identify-language") != "true" or len(options) < 2 or \
                not set(options) <= set(LANGUAGE_OPTIONS):
            raise presign.Refused(400, "BadRequestException",
                                  "give language-code, or identify-language=true with 2+ language-options")
    _check_vocabularies(params, vocabularies)
    _check_stabilization(params)
    return params


def _check_vocabularies(params: dict[str, str], vocabularies: Vocabularies | None) -> None:
    one, several = params.get("vocabulary-name"), params.get("vocabulary-names")
    identify = params.get("identify-language") == "true"
    if one is not None and identify:
        raise presign.Refused(400, "BadRequestException",
                              "with identify-language, name the vocabularies in vocabulary-names")
    if several is not None and not identify:
        raise presign.Refused(400, "BadRequestException", "vocabulary-names needs identify-language")
    names = [one] if one is not None else several.split(",") if several is not None else []
    if vocabularies is None:
        return
    for name in names:
        try:
            vocabularies.require(name)
        except VocabularyRefused as exc:
            raise presign.Refused(400, "BadRequestException", str(exc)) from exc


def _check_stabilization(params: dict[str, str]) -> None:
    enabled = params.get("enable-partial-results-stabilization")
    if enabled not in (None, "true", "false"):
        raise presign.Refused(400, "BadRequestException", "enable-partial-results-stabilization must be true or false")
    stability = params.get("partial-results-stability")
    if stability is not None and stability not in PARTIAL_RESULTS_STABILITIES:
        raise presign.Refused(400, "BadRequestException",
                              f"partial-results-stability must be one of {', '.join(PARTIAL_RESULTS_STABILITIES)}")


def stability_of(params: dict[str, str]) -> str | None:
    """The stability a stream asked for (high when enabled without a level), or None."""
    if params.get("enable-partial-results-stabilization") != "true":
        return None
    return params.get("partial-results-stability", "high")


class Session:
    """One stream: audio in, Whisper passes on the part not final yet, results out."""

    def __init__(self, speech: Any, params: dict[str, str], send: Any):
        self.speech, self.send = speech, send
        self.language = params.get("language-code")
        self.stability = stability_of(params)
        # Items of the pending result already sent as stable, frozen, and the last pass's items.
        self.stable: list[dict] = []
        self.previous: list[dict] = []
        # Audio so far, in a buffer that doubles when full (appending 100 ms frames to an
        # array by concatenation would copy the whole stream on every frame).
        self._buffer = np.zeros(10 * audio.SAMPLE_RATE, dtype=np.float32)
        self._length = 0
        self.committed = 0  # samples before this index are final
        self.passed = 0  # samples covered by the last pass
        self.result_id = str(uuid.uuid4())
        self.last: tuple[int, list[dict], str, float] | None = None  # the last pass's answer
        self.done = False
        self.cond = threading.Condition()
        self.worker = threading.Thread(target=self._partials, daemon=True)
        self.worker.start()

    def add(self, pcm: bytes) -> None:
        chunk = np.frombuffer(pcm, dtype="<i2").astype(np.float32) / 32768.0
        with self.cond:
            if self._length + len(chunk) > len(self._buffer):
                grown = np.zeros(max(2 * len(self._buffer), self._length + len(chunk)), dtype=np.float32)
                grown[:self._length] = self._buffer[:self._length]
                self._buffer = grown
            self._buffer[self._length:self._length + len(chunk)] = chunk
            self._length += len(chunk)
            self.cond.notify()

    @property
    def samples(self) -> np.ndarray:
        """The audio so far (a view: windows taken from it stay valid when the buffer grows)."""
        return self._buffer[:self._length]

    @property
    def seconds(self) -> float:
        return len(self.samples) / audio.SAMPLE_RATE

    def _partials(self) -> None:
        step = int(STEP_S * audio.SAMPLE_RATE)
        while True:
            with self.cond:
                while not self.done and len(self.samples) - self.passed < step:
                    self.cond.wait()
                if self.done:
                    return
                end = len(self.samples)
            self._pass(end, final=False)

    def _pass(self, end: int, final: bool) -> bytes | None:
        """One Whisper pass over samples [committed, end): partial results are sent, the
        final pass's frame is returned (the caller may hold it, see `latency`)."""
        window = self.samples[self.committed:end]
        offset = self.committed / audio.SAMPLE_RATE
        if _silent(window):
            self.passed = end  # silence or too little: nothing to say yet
            if not final:
                return None
            segments, language, score = [], self.language or LANGUAGE_OPTIONS[1], 0.0
        else:
            started = time.perf_counter()
            results = self.speech.transcribe(window, self.language, streaming=True)
            log.debug("pass over %.1f s of audio took %.2f s", len(window) / audio.SAMPLE_RATE,
                      time.perf_counter() - started)
            language = results["language_code"]
            score = float(results["language_identification"][0]["score"])
            if self.language is None and (len(window) >= IDENTIFY_AFTER_S * audio.SAMPLE_RATE or final):
                self.language = language
            segments = self._segments(results, offset)
            self.passed = end
        self.last = (end, segments, language, score)
        return self._emit(end, segments, language, score, final)

    def _emit(self, end: int, segments: list[dict], language: str, score: float, final: bool) -> bytes | None:
        pending_s = (end - self.committed) / audio.SAMPLE_RATE
        settle = segments if final else segments[:-1] if pending_s > COMMIT_AFTER_S else []
        out = [self._result(s, language, score, partial=False) for s in settle]
        if settle:
            self.committed = min(end, int(settle[-1]["end"] * audio.SAMPLE_RATE))
            self.result_id = str(uuid.uuid4())
            self.stable, self.previous = [], []
        rest = segments[len(settle):]
        if rest:
            pending = {"start": rest[0]["start"], "end": rest[-1]["end"],
                       "text": join_text(language, [s["text"] for s in rest]),
                       "items": [i for s in rest for i in s["items"]]}
            if self.stability is not None and not final:
                pending = self._stabilised(pending, language, end / audio.SAMPLE_RATE)
            out.append(self._result(pending, language, score, partial=True))
        frame = event_stream.transcript_event(out) if out else None
        if frame is not None and not final:
            self.send(frame)
        return frame

    def _stabilised(self, pending: dict, language: str, audio_end_s: float) -> dict:
        """The pending result with its items marked `Stable`; items sent stable before are
        kept as sent, whatever this pass made of that audio."""
        frozen_until = self.stable[-1]["EndTime"] if self.stable else None
        fresh = [dict(i) for i in pending["items"] if frozen_until is None or i["StartTime"] >= frozen_until - 0.01]
        margin = STABLE_MARGIN_S[self.stability or "high"]
        newly: list[dict] = []
        for item in fresh:  # only a run from the start of the fresh items can settle
            agreed = any(p["Content"] == item["Content"] and abs(p["StartTime"] - item["StartTime"]) < 0.15
                         for p in self.previous)
            if not agreed or item["EndTime"] > audio_end_s - margin:
                break
            newly.append(item)
        self.previous = fresh
        self.stable = self.stable + [{**i, "Stable": True} for i in newly]
        items = self.stable + [{**i, "Stable": False} for i in fresh[len(newly):]]
        if not self.stable:
            return {**pending, "items": items}
        text = join_text(language, [i["Content"] for i in items])
        return {**pending, "start": min(pending["start"], items[0]["StartTime"]), "text": text, "items": items}

    @staticmethod
    def _segments(results: dict, offset: float) -> list[dict]:
        items = [{"Content": i["alternatives"][0]["content"], "Type": "pronunciation",
                  "StartTime": round(float(i["start_time"]) + offset, 3),
                  "EndTime": round(float(i["end_time"]) + offset, 3),
                  "Confidence": float(i["alternatives"][0]["confidence"])} for i in results["items"]]
        out = []
        for seg in results["audio_segments"]:
            start, end = float(seg["start_time"]) + offset, float(seg["end_time"]) + offset
            out.append({"start": start, "end": end, "text": seg["transcript"],
                        "items": [i for i in items if start - 0.01 <= i["StartTime"] < end + 0.01]})
        return [s for s in out if s["text"]]

    def _result(self, seg: dict, language: str, score: float, partial: bool) -> dict:
        rid = self.result_id if partial else str(uuid.uuid4())
        return {"ResultId": rid, "StartTime": round(seg["start"], 3), "EndTime": round(seg["end"], 3),
                "IsPartial": partial, "ChannelId": "ch_0", "LanguageCode": language,
                "LanguageIdentification": [{"LanguageCode": language, "Score": round(score, 4)}],
                "Alternatives": [{"Transcript": seg["text"], "Items": seg["items"]}]}

    def stop(self) -> None:
        with self.cond:
            self.done = True
            self.cond.notify()

    def finish(self) -> bytes | None:
        """The stream ended: what is not final yet becomes final. When the audio after the
        last partial pass is silence (the pause before the user stops), that pass's
        segments are the answer and no further pass is needed."""
        self.stop()
        self.worker.join()
        if self.last is not None:
            end, segments, language, score = self.last
            if end >= self.committed and _silent(self.samples[end:], any_length=True):
                return self._emit(len(self.samples), segments, language, score, final=True)
        return self._pass(len(self.samples), final=True)


def _silent(samples: np.ndarray, any_length: bool = False) -> bool:
    """Too little audio to transcribe (under 0.25 s, unless `any_length`) or no sound in it."""
    if len(samples) == 0:
        return True
    if not any_length and len(samples) < audio.SAMPLE_RATE // 4:
        return True
    frames = audio.frame_rms(samples) if len(samples) >= 480 else np.array([np.sqrt(np.mean(samples ** 2))])
    return float(frames.max()) < audio.SOUND_RMS  # the decoder's own measure of sound


def serve(speech: Any, host: str, port: int, count: Any = None, authorizer: Authorizer | None = None,
          vocabularies: Vocabularies | None = None) -> Any:
    """Start the endpoint in a thread; the websockets server (its `shutdown()` stops it)."""
    from websockets.sync.server import serve as ws_serve

    secrets = {os.environ.get("AWS_ACCESS_KEY_ID", "testing"): os.environ.get("AWS_SECRET_ACCESS_KEY", "testing")}

    def process_request(connection: Any, request: Any) -> Any:
        try:
            connection.vomage_params = check_request(request.path, request.headers.get("Host", ""), secrets,
                                                     authorizer, vocabularies)
        except presign.Refused as exc:
            status, body = _json_error(exc.status, exc.code, exc.message)
            return connection.respond(status, body)
        return None

    def handler(connection: Any) -> None:
        def send(frame: bytes) -> None:
            connection.send(frame)

        def fail(kind: str, message: str) -> None:
            log.info("stream refused: %s", kind)
            try:
                send(event_stream.exception_event(kind, message))
            finally:
                connection.close()

        started = time.perf_counter()
        session = Session(speech, connection.vomage_params, send)
        ended = False
        while True:
            try:
                raw = connection.recv(timeout=IDLE_TIMEOUT_S)
            except TimeoutError:
                fail("BadRequestException", f"no audio for {IDLE_TIMEOUT_S:.0f} s")
                break
            except Exception:  # the client went away: a stream cut mid-way ends here
                break
            if isinstance(raw, str):
                fail("BadRequestException", "frames must be binary event-stream messages")
                break
            try:
                msg = event_stream.decode(raw)
            except event_stream.FrameError as exc:
                fail("BadRequestException", str(exc))
                break
            if msg.message_type != "event" or msg.event_type != "AudioEvent":
                fail("BadRequestException", "expected an AudioEvent")
                break
            if len(msg.payload) > event_stream.MAX_AUDIO_FRAME or len(msg.payload) % 2:
                fail("BadRequestException", "an audio frame is whole 16-bit samples, at most 32 KiB")
                break
            if not msg.payload:
                ended = True
                break
            session.add(msg.payload)
            if session.seconds > audio.MAX_SECONDS:
                fail("BadRequestException", f"the stream is longer than {audio.MAX_SECONDS:.0f} s")
                break
        end_of_audio = time.monotonic()
        if not ended:
            session.stop()
            return
        frame = session.finish()
        profile = latency.active()
        if profile is not None:
            profile.hold("transcribe_streaming_final_s", end_of_audio)
        if frame is not None:
            send(frame)
        if count is not None:
            count("streaming", time.perf_counter() - started)
        connection.close()

    server = ws_serve(handler, host, port, process_request=process_request, compression=None,
                      max_size=2**16, ping_interval=None)
    threading.Thread(target=server.serve_forever, daemon=True, name="streaming").start()
    return server
