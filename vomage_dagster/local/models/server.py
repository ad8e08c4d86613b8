"""The local model server: the slice of Bedrock and Transcribe the platform calls.

It speaks the AWS wire protocols boto3 uses, so the production code path (request
building, polling, parsing, validation) runs unchanged against it:

- Bedrock runtime `Converse` (`POST /model/<id>/converse`) with the forced `record_mood`
  tool → the offline mood model; `InvokeModel` (`POST /model/<id>/invoke`) with a
  Claude or Nova native body → the same model, and with a Stability or Nova Canvas
  body → the procedural painter.
- Bedrock `GetFoundationModel`, `ListFoundationModels`, `GetInferenceProfile`: the
  lifecycle of the models served (`served_models`). Any other model id is refused with
  Bedrock's own `ValidationException` / `ResourceNotFoundException`.
- Transcribe `StartTranscriptionJob` / `GetTranscriptionJob` (JSON 1.1, `X-Amz-Target`):
  the media is read from S3 (moto), Whisper runs in a worker thread, and the transcript
  JSON is written back to the output bucket and key, as Transcribe does. A job naming a
  custom vocabulary (`Settings`, `LanguageIdSettings`) is refused unless it exists and is
  READY.
- Transcribe `CreateVocabulary` / `UpdateVocabulary` / `GetVocabulary` (`vocabularies.py`),
  with `GET /vocabulary-files/<name>` as the vocabulary's DownloadUri.
- Transcribe streaming's WebSocket endpoint (`--streaming-port`, `streaming_server.py`):
  presigned URLs checked, event-stream audio in, partial and final results out.
- Bedrock `CreateModelInvocationJob` / `GetModelInvocationJob` (batch inference): the
  JSONL input is read from S3, every record goes through the same InvokeModel path, and
  `<output>/<job id>/<input name>.out` is written back, errors per record included.
- Open-Meteo's forecast API (`GET /v1/forecast`, `weather_standin.py`): the weather
  provider's stand-in, with faults a test can ask for per place cell.
- Claude Haiku 5.5's request rules and answer shapes (`claude_rules.py`): requests it
  refuses are refused here, its thinking block comes first unless turned off, and its
  classifier's refusal can be asked for (`POST /_stand-in/models/faults`).

With `VOMAGE_SIMULATED_MODELS=1` (capacity runs, `simulated.py`) mood and image calls are
answered from cheap rules and a reused full-size PNG after the latency profile's figure:
a simulation of the models' timing, so the local models spend no CPU per call.

Models load once at start and stay warm. `GET /health` answers when they are loaded;
`GET /stats` counts model calls (the cache tests and benchmarks read it).

Run: `python -m vomage_dagster.local.models.server --port N`.
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import json
import logging
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlparse

from vomage_dagster.domain import image_models, prompts
from vomage_dagster.domain.audio import decode
from vomage_dagster.domain.errors import ProcessingError
from vomage_dagster.domain.models import (
    ANTHROPIC,
    HAIKU_5_5,
    NOVA_TEXT,
    STABILITY,
    adaptive_thinking,
    family,
    foundation_id,
)
from vomage_dagster.local.models import authorization as auth
from vomage_dagster.local.models import claude_rules, simulated, weather_standin
from vomage_dagster.local.models import served_models as served
from vomage_dagster.local.models.authorization import Authorizer
from vomage_dagster.local.models.vocabularies import Vocabularies, VocabularyConflict, VocabularyRefused
from vomage_dagster.resources import latency

log = logging.getLogger("vomage.model_server")


class Models:
    """The warm models and the Transcribe jobs they serve."""

    def __init__(self) -> None:
        from vomage_dagster.local.models.asr import SpeechModel
        from vomage_dagster.local.models.mood_model import MoodModel
        from vomage_dagster.resources.aws import client

        self.speech = SpeechModel(beam_size=int(os.environ.get("VOMAGE_ASR_BEAM_SIZE", "5")))
        # VOMAGE_SIMULATED_MODELS=1 (capacity runs): mood and image from `simulated`, no
        # local model CPU per call; the embedder is not loaded.
        self.simulated = simulated.enabled()
        self.mood = None if self.simulated else MoodModel()
        self.s3 = client("s3", os.environ.get("AWS_DEFAULT_REGION", "us-east-1"))
        self.vocabularies = Vocabularies()
        self.jobs: dict[str, dict] = {}
        self.jobs_lock = threading.Lock()
        self.worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="transcribe")
        self.batch_worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="batch")
        self.batch_jobs: dict[str, dict] = {}
        self.batch_tokens: dict[str, str] = {}
        # "streaming": streams transcribed (`streaming_server`), apart from batch jobs.
        self.calls = {"transcribe": 0, "analysis": 0, "image": 0, "streaming": 0}
        self.weather_requests = 0  # apart from `calls`: the provider is no model
        self.seconds = {"transcribe": 0.0, "analysis": 0.0, "image": 0.0, "streaming": 0.0}

    def count(self, kind: str, seconds: float) -> None:
        self.calls[kind] += 1
        self.seconds[kind] += seconds

    @staticmethod
    def _hold_mood(model_id: str, started: float, usage: dict) -> None:
        """Under a latency profile: the model's first token and its output rate."""
        profile = latency.active()
        if profile is not None:
            latency.hold_until(started, profile.mood_seconds(_latency_figure(model_id), usage["outputTokens"]))

    @staticmethod
    def _hold(figure: str, started: float) -> None:
        profile = latency.active()
        if profile is not None:
            profile.hold(figure, started)

    # --- Bedrock runtime ---------------------------------------------------------------
    def converse(self, model_id: str, body: dict, region: str) -> dict:
        """Converse with record_mood forced → the offline mood model, in Converse's answer shape.

        A model with Haiku 5.5's rules is held to them (`claude_rules`): refused requests,
        a reasoning block first unless thinking is off, the classifier's refusal on request.
        """
        base = served.resolve(model_id, region, served.TEXT)
        strict = adaptive_thinking(base)
        if strict:
            claude_rules.check_converse(body)
        started, held_from = time.perf_counter(), time.monotonic()
        if strict and claude_rules.declines(body):
            return {"output": {"message": {"role": "assistant", "content": [{"text": ""}]}},
                    "stopReason": "content_filtered", "usage": self._usage(body, {}),
                    "metrics": {"latencyMs": int((time.perf_counter() - started) * 1000)}}
        tool_input = self._mood(body)
        usage = self._usage(body, tool_input)
        content: list[dict] = [{"toolUse": {
            "toolUseId": f"tooluse_local_{int(time.time() * 1000)}", "name": prompts.TOOL_NAME,
            "input": tool_input}}]
        if strict and claude_rules.thinks_converse(body):
            content.insert(0, claude_rules.converse_thinking_block())
            usage = self._with_thinking(usage)
        self._hold_mood(model_id, held_from, usage)
        return {
            "output": {"message": {"role": "assistant", "content": content}},
            "stopReason": "tool_use",
            "usage": usage,
            "metrics": {"latencyMs": int((time.perf_counter() - started) * 1000)},
        }

    @staticmethod
    def _with_thinking(usage: dict) -> dict:
        out = usage["outputTokens"] + claude_rules.thinking_tokens()
        return {**usage, "outputTokens": out, "totalTokens": usage["inputTokens"] + out}

    def _mood(self, body: dict) -> dict:
        choice = ((body.get("toolConfig") or {}).get("toolChoice") or {}).get("tool") or \
            body.get("tool_choice") or {}
        if choice.get("name") != prompts.TOOL_NAME:
            raise ValueError(f"the local mood model answers only a forced {prompts.TOOL_NAME} tool call")
        started = time.perf_counter()
        transcript, language = prompts.transcript_from_request(body)
        if self.mood is None:
            tool_input = simulated.analyze(transcript, language)
        else:
            tool_input = self.mood.analyze(transcript, language)
        self.count("analysis", time.perf_counter() - started)
        return tool_input

    @staticmethod
    def _usage(body: dict, tool_input: dict) -> dict:
        # About four characters a token, as Bedrock's tokenisers give for English.
        inp, out = len(json.dumps(body)) // 4, len(json.dumps(tool_input)) // 4
        return {"inputTokens": inp, "outputTokens": out, "totalTokens": inp + out}

    def invoke(self, model_id: str, body: dict, region: str) -> dict:
        """InvokeModel with the native body of the model's family."""
        kind = family(model_id)
        held_from = time.monotonic()
        if kind in (ANTHROPIC, NOVA_TEXT):
            base = served.resolve(model_id, region, served.TEXT)
            strict = adaptive_thinking(base)
            if strict:
                claude_rules.check_native(body)
            message = {"id": f"msg_local_{int(time.time() * 1000)}", "type": "message", "role": "assistant",
                       "model": model_id}
            if strict and claude_rules.declines(body):
                usage = self._usage(body, {})
                return {**message, "content": [], "stop_reason": "refusal",
                        "usage": {"input_tokens": usage["inputTokens"], "output_tokens": usage["outputTokens"]}}
            tool_input = self._mood(body)
            usage = self._usage(body, tool_input)
            content: list[dict] = [{"type": "tool_use", "id": "toolu_local", "name": prompts.TOOL_NAME,
                                    "input": tool_input}]
            if strict and claude_rules.thinks_native(body):
                content.insert(0, claude_rules.native_thinking_block())
                usage = self._with_thinking(usage)
            self._hold_mood(model_id, held_from, usage)
            if kind == NOVA_TEXT:
                return {"output": {"message": {"role": "assistant", "content": [{"toolUse": {
                            "toolUseId": "tooluse_local", "name": prompts.TOOL_NAME,
                            "input": tool_input}}]}},
                        "stopReason": "tool_use", "usage": usage}
            return {**message, "content": content, "stop_reason": "tool_use",
                    "usage": {"input_tokens": usage["inputTokens"], "output_tokens": usage["outputTokens"]}}
        served.resolve(model_id, region, served.IMAGE)
        from vomage_dagster.local.models.painter import paint

        started = time.perf_counter()
        if kind == STABILITY:
            prompt = body.get("prompt")
            if not isinstance(prompt, str) or not prompt.strip():
                raise ValueError("prompt: a non-empty string is required")
            if body.get("aspect_ratio", "1:1") != "1:1" or body.get("output_format", "png") != "png":
                raise ValueError("the local painter paints 1:1 PNG images only")
            png = (simulated.image(prompt, image_models.IMAGE_SIZE) if self.simulated
                   else paint(prompt, image_models.IMAGE_SIZE, _seed(body.get("seed"))))
            self.count("image", time.perf_counter() - started)
            self._hold("image_s", held_from)
            return {"seeds": [int(body.get("seed", 0))], "finish_reasons": [None],
                    "images": [base64.b64encode(png).decode()]}
        if body.get("taskType") != "TEXT_IMAGE":
            raise ValueError(f"taskType {body.get('taskType')!r} is not supported locally")
        cfg = body.get("imageGenerationConfig", {})
        text, width = body["textToImageParams"]["text"], int(cfg.get("width", 1024))
        png = simulated.image(text, width) if self.simulated else paint(text, width, _seed(cfg.get("seed")))
        self.count("image", time.perf_counter() - started)
        self._hold("image_s", held_from)
        return {"images": [base64.b64encode(png).decode()], "error": None}

    # --- Bedrock control plane ------------------------------------------------------------
    def foundation_model(self, model_id: str, region: str) -> dict:
        model_id = unquote(model_id).rsplit("foundation-model/", 1)[-1]
        found = served.foundation_model(model_id, region, served.legacy_ids())
        if found is None:
            raise NotFound(f"The model {model_id} does not exist or is not available in {region}.")
        return {"modelDetails": found}

    def list_models(self, region: str, query: dict) -> dict:
        legacy = served.legacy_ids()
        out = [served.foundation_model(m, region, legacy) for m in served.FOUNDATION_MODELS]
        provider = (query.get("byProvider") or [""])[0].lower()
        modality = (query.get("byOutputModality") or [""])[0]
        out = [m for m in out if m and (not provider or m["providerName"].lower().startswith(provider)
                                        or m["modelId"].startswith(provider))
               and (not modality or modality in m["outputModalities"])]
        return {"modelSummaries": out}

    def inference_profile(self, profile_id: str, region: str) -> dict:
        profile_id = unquote(profile_id).rsplit("inference-profile/", 1)[-1]
        found = served.inference_profile(profile_id, region)
        if found is None:
            raise NotFound(f"The inference profile {profile_id} does not exist in {region}.")
        return found

    # --- Transcribe ----------------------------------------------------------------------
    def start_job(self, req: dict) -> dict:
        name = req["TranscriptionJobName"]
        self._check_vocabularies(req)
        with self.jobs_lock:
            if name in self.jobs:
                raise Conflict(f"The requested job name already exists: {name}")
            job = {
                "TranscriptionJobName": name,
                # Jobs are transcribed one at a time: waiting for the worker, a job is
                # QUEUED, as Transcribe says of a job waiting for a slot.
                "TranscriptionJobStatus": "QUEUED",
                "Media": req["Media"],
                "CreationTime": time.time(),
            }
            if req.get("LanguageCode"):
                job["LanguageCode"] = req["LanguageCode"]
            if req.get("IdentifyLanguage"):
                job["IdentifyLanguage"] = True
                job["LanguageOptions"] = req.get("LanguageOptions", [])
            for key in ("Settings", "LanguageIdSettings"):
                if req.get(key):
                    job[key] = req[key]
            self.jobs[name] = job
        self.worker.submit(self._run_job, name, req)
        return {"TranscriptionJob": dict(job)}

    def _check_vocabularies(self, req: dict) -> None:
        """A job's vocabularies, as Transcribe checks them before it accepts the job."""
        vocabulary = (req.get("Settings") or {}).get("VocabularyName")
        by_language = req.get("LanguageIdSettings") or {}
        if vocabulary and req.get("IdentifyLanguage"):
            raise BadRequest("With IdentifyLanguage, give each language's vocabulary in LanguageIdSettings, "
                             "not Settings.VocabularyName.")
        if by_language:
            if not req.get("IdentifyLanguage"):
                raise BadRequest("LanguageIdSettings needs IdentifyLanguage.")
            unknown = set(by_language) - set(req.get("LanguageOptions") or [])
            if unknown:
                raise BadRequest(f"LanguageIdSettings names {', '.join(sorted(unknown))}, not in LanguageOptions.")
        names = [vocabulary] if vocabulary else []
        names += [s["VocabularyName"] for s in by_language.values() if s.get("VocabularyName")]
        for found in names:
            try:
                self.vocabularies.require(found)
            except VocabularyRefused as exc:
                raise BadRequest(str(exc)) from exc

    def get_job(self, name: str) -> dict:
        with self.jobs_lock:
            if name not in self.jobs:
                raise BadRequest("The requested job couldn't be found. Check the job name and try again.")
            return {"TranscriptionJob": dict(self.jobs[name])}

    def _run_job(self, name: str, req: dict) -> None:
        started, held_from = time.perf_counter(), time.monotonic()
        with self.jobs_lock:
            self.jobs[name].update(TranscriptionJobStatus="IN_PROGRESS", StartTime=time.time())
        update: dict = {}
        try:
            uri = urlparse(req["Media"]["MediaFileUri"])
            data = self.s3.get_object(Bucket=uri.netloc, Key=uri.path.lstrip("/"))["Body"].read()
            audio = decode(data)
            results = self.speech.transcribe(audio.samples, req.get("LanguageCode"))
            bucket, key = req["OutputBucketName"], req.get("OutputKey", f"{name}.json")
            doc = {"jobName": name, "accountId": "000000000000", "status": "COMPLETED",
                   "results": results}
            self.s3.put_object(Bucket=bucket, Key=key, Body=json.dumps(doc, ensure_ascii=False),
                               ContentType="application/json")
            update = {
                "TranscriptionJobStatus": "COMPLETED",
                "LanguageCode": results["language_code"],
                "IdentifiedLanguageScore": float(results["language_identification"][0]["score"]),
                "Transcript": {"TranscriptFileUri": f"https://s3.amazonaws.com/{bucket}/{key}"},
            }
        except ProcessingError as exc:
            update = {"TranscriptionJobStatus": "FAILED", "FailureReason": exc.message}
        except Exception as exc:  # a job must end FAILED, never stay IN_PROGRESS
            log.exception("transcription job %s failed", name)
            update = {"TranscriptionJobStatus": "FAILED",
                      "FailureReason": f"internal error ({type(exc).__name__})"}
        self.count("transcribe", time.perf_counter() - started)

        def finish() -> None:
            with self.jobs_lock:
                self.jobs[name].update(update, CompletionTime=time.time())

        profile = latency.active()
        left = (profile.seconds("transcribe_batch_s") or 0.0) - (time.monotonic() - held_from) if profile else 0.0
        if left > 0:  # Transcribe runs jobs side by side: the worker moves on, the job ends later
            threading.Timer(left, finish).start()
        else:
            finish()


    # --- Bedrock batch inference ------------------------------------------------------
    def create_batch(self, req: dict, region: str) -> dict:
        if req.get("modelInvocationType", "InvokeModel") != "InvokeModel":
            raise ValueError("the local batch jobs take InvokeModel records (Bedrock refuses toolConfig "
                             "in Converse-type batch records)")
        served.resolve(req["modelId"], region, served.TEXT)
        token = req.get("clientRequestToken")
        with self.jobs_lock:
            if token and token in self.batch_tokens:
                return {"jobArn": self.batch_tokens[token]}
            job_id = f"{len(self.batch_jobs) + 1:04d}{int(time.time() * 1000) % 10**8:08d}"
            arn = f"arn:aws:bedrock:us-east-1:000000000000:model-invocation-job/{job_id}"
            now = dt.datetime.now(dt.UTC).isoformat()
            self.batch_jobs[arn] = {
                "jobArn": arn, "jobName": req["jobName"], "modelId": req["modelId"],
                "roleArn": req["roleArn"], "status": "Submitted", "submitTime": now,
                "lastModifiedTime": now, "inputDataConfig": req["inputDataConfig"],
                "outputDataConfig": req["outputDataConfig"], "region": region,
                **({"clientRequestToken": token} if token else {}),
            }
            if token:
                self.batch_tokens[token] = arn
        self.batch_worker.submit(self._run_batch, arn)
        return {"jobArn": arn}

    def get_batch(self, identifier: str) -> dict:
        with self.jobs_lock:
            job = self.batch_jobs.get(identifier) or next(
                (j for a, j in self.batch_jobs.items() if a.endswith("/" + identifier)), None)
            if job is None:
                raise NotFound(f"model invocation job {identifier} not found")
            return {k: v for k, v in job.items() if k != "region"}

    def _set_batch(self, arn: str, **fields: object) -> None:
        with self.jobs_lock:
            self.batch_jobs[arn].update(fields, lastModifiedTime=dt.datetime.now(dt.UTC).isoformat())

    def _run_batch(self, arn: str) -> None:
        job = {**self.get_batch(arn), "region": self.batch_jobs[arn]["region"]}
        self._set_batch(arn, status="InProgress")
        try:
            src = urlparse(job["inputDataConfig"]["s3InputDataConfig"]["s3Uri"])
            dst = urlparse(job["outputDataConfig"]["s3OutputDataConfig"]["s3Uri"])
            lines = self.s3.get_object(Bucket=src.netloc, Key=src.path.lstrip("/"))["Body"].read()
            out, errors, total = [], 0, 0
            for line in lines.decode("utf-8").splitlines():
                if not line.strip():
                    continue
                total += 1
                row = json.loads(line)
                try:
                    out.append({**row, "modelOutput": self.invoke(job["modelId"], row["modelInput"],
                                                                  job["region"])})
                except (ValueError, KeyError, LookupError, StopIteration) as exc:
                    errors += 1
                    out.append({**row, "error": {"errorCode": 400, "errorMessage": str(exc)}})
            job_id = arn.rsplit("/", 1)[1]
            key = f"{dst.path.strip('/')}/{job_id}/{src.path.rsplit('/', 1)[-1]}.out".lstrip("/")
            body = "\n".join(json.dumps(r, ensure_ascii=False) for r in out) + "\n"
            self.s3.put_object(Bucket=dst.netloc, Key=key, Body=body.encode("utf-8"))
            status = "Completed" if errors == 0 else "PartiallyCompleted" if errors < total else "Failed"
            self._set_batch(arn, status=status, endTime=dt.datetime.now(dt.UTC).isoformat(),
                            totalRecordCount=total, processedRecordCount=total,
                            successRecordCount=total - errors, errorRecordCount=errors)
        except Exception as exc:  # a job must end, never stay InProgress
            log.exception("batch job %s failed", arn)
            self._set_batch(arn, status="Failed", message=str(exc)[:500],
                            endTime=dt.datetime.now(dt.UTC).isoformat())


def _latency_figure(model_id: str) -> str:
    """The latency profile's figure prefix for a mood model (Claude Haiku 4.5's for any other Claude)."""
    if family(model_id) == NOVA_TEXT:
        return "nova_micro"
    return "claude_haiku_5_5" if foundation_id(model_id) == HAIKU_5_5 else "claude_haiku_4_5"


class NotFound(Exception):
    code = "ResourceNotFoundException"


class Conflict(Exception):
    code = "ConflictException"


class BadRequest(Exception):
    code = "BadRequestException"


def _seed(value: object) -> int | None:
    """The request's seed as the image model checks it: an integer in range, or none."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= image_models.MAX_SEED:
        raise ValueError(f"seed: an integer 0–{image_models.MAX_SEED} is required")
    return value


VOCABULARY_OPS = {"CreateVocabulary": "create", "UpdateVocabulary": "update", "GetVocabulary": "get"}


def make_handler(models: Models, authorizer: Authorizer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, fmt: str, *args: object) -> None:
            log.debug(fmt, *args)

        def _send(self, status: int, payload: dict, error_type: str | None = None) -> None:
            body = json.dumps(payload, ensure_ascii=False).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            if error_type:
                self.send_header("x-amzn-ErrorType", error_type)
            self.end_headers()
            self.wfile.write(body)

        def _error(self, status: int, code: str, message: str) -> None:
            self._send(status, {"__type": code, "message": message, "Message": message}, code)

        def _region(self) -> str:
            """The region the client signed for (SigV4 credential scope), as Bedrock would serve."""
            auth = self.headers.get("Authorization", "")
            scope = auth.split("Credential=", 1)[1].split(",", 1)[0].split("/") if "Credential=" in auth else []
            return scope[2] if len(scope) > 2 else os.environ.get("AWS_DEFAULT_REGION", "us-east-1")

        def _allowed(self, action: str, resources: list[str], context: dict | None = None) -> bool:
            """Whether IAM lets the caller do `action` on `resources` (else answered 403)."""
            denied = authorizer.http_call(self.headers, action, resources, context)
            if denied is not None:
                self._error(denied.status, denied.code, denied.message)
            return denied is None

        def _forecast(self, query: str) -> None:
            """Open-Meteo's stand-in: no AWS signature, as the real service needs no key."""
            models.weather_requests += 1
            status, payload, delay = weather_standin.forecast(query)
            if delay:
                time.sleep(delay)
            body = (json.dumps(payload) if isinstance(payload, dict) else payload).encode()
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json" if isinstance(payload, dict) else "text/plain")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            except OSError:  # the client gave up waiting (the timeout fault)
                self.close_connection = True

        def do_GET(self) -> None:  # noqa: N802
            url = urlparse(self.path)
            if url.path == "/v1/forecast":
                self._forecast(url.query)
                return
            region = self._region()
            try:
                if url.path == "/foundation-models":
                    if self._allowed("bedrock:ListFoundationModels", ["*"]):
                        self._send(200, models.list_models(region, parse_qs(url.query)))
                    return
                if url.path.startswith("/foundation-models/"):
                    model_id = unquote(url.path.split("/", 2)[2])
                    if self._allowed("bedrock:GetFoundationModel", [auth.foundation_model_arn(model_id, region)]):
                        self._send(200, models.foundation_model(model_id, region))
                    return
                if url.path.startswith("/inference-profiles/"):
                    profile = unquote(url.path.split("/", 2)[2])
                    if self._allowed("bedrock:GetInferenceProfile", [auth.inference_profile_arn(profile, region)]):
                        self._send(200, models.inference_profile(profile, region))
                    return
            except NotFound as exc:
                self._error(404, exc.code, str(exc))
                return
            if url.path.startswith("/vocabulary-files/"):
                # DownloadUri: a presigned S3 link on AWS, readable without signing.
                try:
                    body = models.vocabularies.file(unquote(url.path.split("/", 2)[2])).encode()
                except VocabularyRefused as exc:
                    self._error(404, "NoSuchKey", str(exc))
                    return
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                return
            if self.path == "/health":
                self._send(200, {"ok": True, "time": dt.datetime.now(dt.UTC).isoformat()})
            elif self.path == "/stats":
                self._send(200, {"calls": models.calls, "seconds": models.seconds,
                                 "weather_requests": models.weather_requests})
            elif self.path.startswith("/model-invocation-job/"):
                job = unquote(self.path.split("/", 2)[2])
                if not self._allowed("bedrock:GetModelInvocationJob", [auth.batch_job_arn(job, region)]):
                    return
                try:
                    self._send(200, models.get_batch(job))
                except NotFound as exc:
                    self._error(404, exc.code, str(exc))
            else:
                self._error(404, "NotFound", self.path)

        def do_POST(self) -> None:  # noqa: N802
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            try:
                body = json.loads(raw or b"{}")
            except json.JSONDecodeError:
                self._error(400, "ValidationException", "body is not JSON")
                return
            target = self.headers.get("X-Amz-Target", "")
            region = self._region()
            try:
                if self.path == "/_stand-in/weather/faults":
                    weather_standin.fault_request(raw)
                    self._send(200, {"ok": True})
                elif self.path == "/_stand-in/models/faults":
                    claude_rules.fault_request(raw)
                    self._send(200, {"ok": True})
                elif target.startswith("Transcribe."):
                    op = target.split(".", 1)[1]
                    if op == "StartTranscriptionJob":
                        if self._allowed("transcribe:StartTranscriptionJob", ["*"]):
                            self._send(200, models.start_job(body))
                    elif op == "GetTranscriptionJob":
                        name = body["TranscriptionJobName"]
                        if self._allowed("transcribe:GetTranscriptionJob", [auth.transcription_job_arn(name, region)]):
                            self._send(200, models.get_job(name))
                    elif op in VOCABULARY_OPS:
                        name = str(body.get("VocabularyName", ""))
                        if self._allowed(f"transcribe:{op}", [auth.vocabulary_arn(name, region)]):
                            if op == "GetVocabulary":
                                host = self.headers.get("Host", "127.0.0.1")
                                self._send(200, models.vocabularies.get(name, f"http://{host}"))
                            else:
                                self._send(200, getattr(models.vocabularies, VOCABULARY_OPS[op])(body))
                    else:
                        self._error(400, "BadRequestException", f"{op} is not served locally")
                elif self.path == "/model-invocation-job":
                    resources = [auth.batch_job_arn("*", region), *auth.invoke_resources(body["modelId"], region)]
                    if (self._allowed("bedrock:CreateModelInvocationJob", resources)
                            and self._allowed("iam:PassRole", [body["roleArn"]],
                                              {"iam:PassedToService": "bedrock.amazonaws.com"})):
                        self._send(200, models.create_batch(body, region))
                elif self.path.startswith("/model/") and self.path.endswith("/invoke"):
                    model_id = unquote(self.path[len("/model/"):-len("/invoke")])
                    if self._allowed("bedrock:InvokeModel", auth.invoke_resources(model_id, region)):
                        self._send(200, models.invoke(model_id, body, region))
                elif self.path.startswith("/model/") and self.path.endswith("/converse"):
                    model_id = unquote(self.path[len("/model/"):-len("/converse")])
                    if self._allowed("bedrock:InvokeModel", auth.invoke_resources(model_id, region)):
                        self._send(200, models.converse(model_id, body, region))
                else:
                    self._error(404, "UnknownOperationException", self.path)
            except (Conflict, BadRequest, VocabularyConflict, VocabularyRefused, claude_rules.RequestRefused) as exc:
                self._error(400, exc.code, str(exc))
            except LookupError as exc:  # an unknown model id: Bedrock's own answer
                self._error(400, "ValidationException", str(exc).strip("'\""))
            except (ValueError, KeyError, StopIteration) as exc:
                self._error(400, "ValidationException", f"{type(exc).__name__}: {exc}")
            except Exception as exc:
                log.exception("model server error")
                self._error(500, "InternalServerException", str(exc))

    return Handler


def serve(host: str, port: int, streaming_port: int | None = None) -> None:
    started = time.perf_counter()
    models = Models()
    authorizer = Authorizer.from_env()
    log.info("models loaded in %.1f s; IAM checked %s", time.perf_counter() - started,
             f"by {authorizer.moto_url}" if authorizer.moto_url else "by nobody")
    if streaming_port:
        from vomage_dagster.local.models.streaming_server import serve as serve_streaming

        serve_streaming(models.speech, host, streaming_port, models.count, authorizer, models.vocabularies)
        log.info("Transcribe streaming on ws://%s:%d", host, streaming_port)
    server = ThreadingHTTPServer((host, port), make_handler(models, authorizer))
    server.daemon_threads = True
    log.info("model server on http://%s:%d", host, port)
    server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--streaming-port", type=int, default=None,
                        help="serve Transcribe streaming's WebSocket endpoint on this port")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    serve(args.host, args.port, args.streaming_port)


if __name__ == "__main__":
    main()
