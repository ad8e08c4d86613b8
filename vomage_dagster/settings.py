"""Configuration, read in one place.

Everything that differs between the embedded local stack and AWS comes from the
environment here and nowhere else. Endpoints are *not* read here: boto3 reads its
standard `AWS_ENDPOINT_URL` / `AWS_ENDPOINT_URL_<SERVICE>` variables itself, so the
same client code reaches moto, the local model server or AWS.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

from vomage_dagster.domain import models
from vomage_dagster.domain.vocabulary import vocabulary_name

LOCAL = "local"
AWS = "aws"

# The app's languages: Transcribe's IdentifyLanguage options.
LANGUAGE_OPTIONS = ("zh-CN", "en-US", "ja-JP")
# How steady Transcribe streaming keeps partial results (its partial-results-stability).
PARTIAL_RESULTS_STABILITIES = ("high", "medium", "low")


LOCAL_TRANSCRIBE_POLL_S = 0.25
# Dagster's home on the local stack, under the state folder.
LOCAL_HOME_DIR = "dagster_home"


@dataclass(frozen=True)
class Settings:
    """The platform's configuration; build it with `load_settings()`."""

    env: str = LOCAL
    region: str = "us-east-1"
    bucket: str = "vomage-recordings"
    uploads_prefix: str = "uploads/"
    processed_prefix: str = "processed/"
    uploads_queue: str = "vomage-uploads"
    dead_letter_queue: str = "vomage-uploads-dlq"
    status_table: str = "vomage-processing-status"
    records_table: str = "vomage-voice-records"
    # The app's users (one item per user, written at their first sign-in: resources/users.py).
    users_table: str = "vomage-users"
    # The app's Cognito user pool and its public app client: the live view signs users in
    # through them and takes only their tokens (app/auth.py). On AWS the data stack makes
    # both; the local stack makes them in its moto from the same template properties.
    user_pool_id: str = ""
    user_pool_client_id: str = ""
    event_bus: str = "default"
    redis_url: str = "redis://127.0.0.1:6379/0"
    # ElastiCache AUTH token (REDIS_PASSWORD) and, for a private CA, its bundle
    # (VOMAGE_REDIS_CA_FILE); a rediss:// URL verifies the server's certificate.
    redis_password: str = field(default="", repr=False)
    redis_ca_file: str = ""
    transcribe_poll_seconds: float = 1.0  # on AWS; locally 0.25 (see load_settings)
    # How long the ingest's receive of the uploads queue waits for a first message (long
    # poll): a message ends the wait at once; a stop is seen within it.
    sqs_wait_seconds: int = 5
    # Most recordings in one run (micro-batching, ingest/planner.py); 1 runs each alone.
    max_batch: int = 10
    transcribe_timeout_seconds: float = 600.0
    # The custom vocabularies (VomageCustomVocabulary): `<prefix><language>` for each of the
    # app's languages, from vomage_dagster/vocabularies/; empty: none are used.
    vocabulary_prefix: str = "vomage-"
    # Streams ask Transcribe to stabilise partial results at this level; empty: not asked.
    partial_results_stability: str = "high"
    # Where the steps of the asset jobs run: "in_process" (in the run's own process, the
    # default and fastest on one machine) or "celery" (dagster-celery workers fed through
    # the broker below; `vomage cluster up`, and a production option, docs/deploy.md).
    executor: str = "in_process"
    celery_broker: str = ""  # empty: the Redis of redis_url, database 1
    # A step whose worker died is handed to another worker after this long (Redis broker,
    # late acks). It must exceed the longest step, or a slow step runs twice.
    celery_visibility_timeout_s: int = 900
    # The mood model (a foundation model id) and the cross-region inference profile it is
    # called through ("us", "eu", "apac", "jp", "global"; empty: call the model id itself), in
    # `bedrock_region` (empty: `region`). Nova Micro: amazon.nova-micro-v1:0; Claude Haiku
    # 5.5: anthropic.claude-haiku-5-5 (its request rules: `models.adaptive_thinking`).
    analysis_model: str = models.DEFAULT_ANALYSIS_MODEL
    inference_profile_prefix: str = models.DEFAULT_PROFILE_PREFIX
    bedrock_region: str = ""
    # The image model and its region: Stability's models are not served in every region.
    image_model_id: str = models.DEFAULT_IMAGE_MODEL
    image_region: str = models.DEFAULT_IMAGE_REGION
    # Where browsers fetch images (the images CDN, CloudFront over `processed/`): a stable,
    # cacheable link; empty, a presigned link per status read (the local stack).
    images_base_url: str = ""
    # The role Bedrock assumes to run a batch job (the template's BedrockBatchServiceRole).
    bedrock_batch_role_arn: str = ""
    # A run in flight whose recordings' status has not moved for this long is taken for
    # dead (stranded_recordings_sensor): the default launcher cannot see a killed run.
    dead_run_after_s: int = 1800
    stall_after_s: int = 600  # a recording not final, outside any run, this long: queued again
    # Local fault injection (chaos tests): this fraction of DynamoDB calls is throttled
    # before it leaves the process; ignored unless VOMAGE_ENV=local.
    chaos_dynamodb_throttle: float = 0.0
    # Whether the transcript's first words appear in Dagster's metadata (the event log
    # keeps them as long as the run): on locally, off on AWS unless asked for.
    metadata_transcript: bool = True
    # The weather that goes into the image: a provider of current conditions by coordinates
    # (Open-Meteo: no key), its URL and how long a request may take before the weather is
    # recorded unknown.
    weather_provider: str = "open-meteo"
    weather_url: str = "https://api.open-meteo.com/v1/forecast"
    weather_timeout_s: float = 2.0
    # A retryable failure is retried automatically this many times at most (0: never), the
    # first after this many seconds, each next one three times later (domain/retries.py).
    auto_retries: int = 2
    # The ingest asks a streamed recording's mood while its run starts (ingest/early_mood.py).
    early_mood: bool = True
    # How the ingest starts runs: "direct" hands one to the run launcher at once while the
    # run queue is empty and has room, "queue" always queues it (ingest/launcher.py).
    ingest_dispatch: str = "direct"
    # While the runs in flight fill the queue's limit, the ingest leaves new uploads in SQS
    # (up to this many seconds) and then launches what gathered as batches of `max_batch`:
    # one run for many recordings instead of a queued run each (ingest/launcher.py). 0: off.
    ingest_hold_s: float = 10.0
    retry_backoff_s: float = 5.0
    # Traces (telemetry/): where spans go over OTLP/HTTP (empty: tracing off; on AWS by
    # default X-Ray's OTLP endpoint, signed), the share of recordings traced (all locally,
    # 10 % on AWS; failed and slow ones are kept too), what counts as slow, and how long an
    # export may take before its spans are dropped.
    traces_endpoint: str = ""
    trace_sample_ratio: float = 1.0
    trace_slow_s: float = 15.0
    trace_export_timeout_s: float = 2.0
    # How often the live view sends its API response times to CloudWatch, in one batch.
    app_metrics_interval_s: float = 60.0
    # The live view's API, per user and process (app/limits.py): calls a second, and the
    # burst above it, before 429. The page makes a handful of calls when it opens and one
    # now and then; 20/s with bursts of 40 leaves a human's reloads well alone and stops a
    # script's loop within two seconds.
    api_rate_per_s: float = 20.0
    api_burst: int = 40
    state_dir: Path = field(default_factory=lambda: Path(".vomage"))

    @property
    def is_local(self) -> bool:
        return self.env == LOCAL

    @property
    def vocabulary_names(self) -> dict[str, str]:
        """Language → its custom vocabulary's name; empty when vocabularies are off."""
        if not self.vocabulary_prefix:
            return {}
        return {language: vocabulary_name(self.vocabulary_prefix, language) for language in LANGUAGE_OPTIONS}

    @property
    def local_dagster_home(self) -> Path:
        """Dagster's home on the local stack (`vomage ui`, the demo, the tools); it lives as
        long as the stack."""
        return self.state_dir.resolve() / LOCAL_HOME_DIR

    @property
    def traces_signed(self) -> bool:
        """Spans to AWS itself are signed with SigV4 (X-Ray's OTLP endpoint)."""
        host = urlsplit(self.traces_endpoint).hostname
        return host is not None and host.endswith(".amazonaws.com")

    @property
    def analysis_model_id(self) -> str:
        """The mood model as invoked: through its inference profile when one is set."""
        return models.with_profile(self.analysis_model, self.inference_profile_prefix)

    @property
    def analysis_region(self) -> str:
        return self.bedrock_region or self.region

    def configured_models(self) -> list[models.ConfiguredModel]:
        """Every model the platform calls, for the lifecycle check."""
        return [models.ConfiguredModel("analysis", self.analysis_model_id, self.analysis_region),
                models.ConfiguredModel("image", self.image_model_id, self.image_region)]

    @property
    def celery_broker_url(self) -> str:
        """The Celery broker (and result backend): set, or database 1 of the cache's Redis
        (with the AUTH token, which Celery only takes inside the URL)."""
        if self.celery_broker:
            return self.celery_broker
        parts = urlsplit(self.redis_url)._replace(path="/1")
        if self.redis_password and "@" not in parts.netloc:
            parts = parts._replace(netloc=f":{quote(self.redis_password, safe='')}@{parts.netloc}")
        return urlunsplit(parts)


def load_settings(environ: dict[str, str] | None = None) -> Settings:
    """Read the settings from the environment (or a given mapping, for tests)."""
    e = os.environ if environ is None else environ
    env = e.get("VOMAGE_ENV", LOCAL).strip().lower()
    if env not in (LOCAL, AWS):
        raise ValueError(f"VOMAGE_ENV must be '{LOCAL}' or '{AWS}', not {env!r}")
    d = Settings()
    executor = e.get("VOMAGE_EXECUTOR", d.executor).strip().lower()
    if executor not in ("in_process", "celery"):
        raise ValueError(f"VOMAGE_EXECUTOR must be 'in_process' or 'celery', not {executor!r}")
    return Settings(
        env=env,
        region=e.get("AWS_DEFAULT_REGION") or e.get("AWS_REGION") or d.region,
        bucket=e.get("VOMAGE_BUCKET", d.bucket),
        uploads_queue=e.get("VOMAGE_UPLOADS_QUEUE", d.uploads_queue),
        dead_letter_queue=e.get("VOMAGE_DEAD_LETTER_QUEUE", d.dead_letter_queue),
        status_table=e.get("VOMAGE_STATUS_TABLE", d.status_table),
        records_table=e.get("VOMAGE_RECORDS_TABLE", d.records_table),
        users_table=e.get("VOMAGE_USERS_TABLE", d.users_table),
        user_pool_id=e.get("VOMAGE_USER_POOL_ID", "").strip(),
        user_pool_client_id=e.get("VOMAGE_USER_POOL_CLIENT_ID", "").strip(),
        event_bus=e.get("VOMAGE_EVENT_BUS", d.event_bus),
        redis_url=e.get("REDIS_URL", d.redis_url),
        redis_password=e.get("REDIS_PASSWORD", ""),
        redis_ca_file=e.get("VOMAGE_REDIS_CA_FILE", ""),
        # GetTranscriptionJob has a request quota on AWS; the local server answers in ms.
        vocabulary_prefix=_vocabulary_prefix(e.get("VOMAGE_VOCABULARY_PREFIX"), d.vocabulary_prefix),
        partial_results_stability=_stability(e.get("VOMAGE_PARTIAL_RESULTS_STABILITY"), d.partial_results_stability),
        transcribe_poll_seconds=float(e.get(
            "VOMAGE_TRANSCRIBE_POLL_SECONDS",
            LOCAL_TRANSCRIBE_POLL_S if env == LOCAL else d.transcribe_poll_seconds)),
        sqs_wait_seconds=int(e.get("VOMAGE_SQS_WAIT_SECONDS", d.sqs_wait_seconds)),
        max_batch=max(1, int(e.get("VOMAGE_MAX_BATCH", d.max_batch))),
        executor=executor,
        celery_broker=e.get("VOMAGE_CELERY_BROKER", d.celery_broker),
        celery_visibility_timeout_s=int(e.get("VOMAGE_CELERY_VISIBILITY_TIMEOUT",
                                              d.celery_visibility_timeout_s)),
        analysis_model=e.get("VOMAGE_ANALYSIS_MODEL_ID", d.analysis_model).strip(),
        inference_profile_prefix=e.get("VOMAGE_INFERENCE_PROFILE", d.inference_profile_prefix).strip(),
        bedrock_region=e.get("VOMAGE_BEDROCK_REGION", d.bedrock_region).strip(),
        image_model_id=e.get("VOMAGE_IMAGE_MODEL_ID", d.image_model_id).strip(),
        image_region=e.get("VOMAGE_IMAGE_REGION", d.image_region).strip(),
        bedrock_batch_role_arn=e.get("VOMAGE_BEDROCK_BATCH_ROLE_ARN", "").strip(),
        images_base_url=e.get("VOMAGE_IMAGES_BASE_URL", "").strip(),
        dead_run_after_s=int(e.get("VOMAGE_DEAD_RUN_AFTER_S", d.dead_run_after_s)),
        stall_after_s=int(e.get("VOMAGE_STALL_AFTER_S", d.stall_after_s)),
        auto_retries=max(0, int(e.get("VOMAGE_AUTO_RETRIES", d.auto_retries))),
        early_mood=_on_off(e.get("VOMAGE_EARLY_MOOD"), default=d.early_mood, name="VOMAGE_EARLY_MOOD"),
        ingest_dispatch=_choice(e.get("VOMAGE_INGEST_DISPATCH"), d.ingest_dispatch, ("direct", "queue"),
                                "VOMAGE_INGEST_DISPATCH"),
        ingest_hold_s=max(0.0, float(e.get("VOMAGE_INGEST_HOLD_S", d.ingest_hold_s))),
        retry_backoff_s=max(1.0, float(e.get("VOMAGE_RETRY_BACKOFF_S", d.retry_backoff_s))),
        chaos_dynamodb_throttle=float(e.get("VOMAGE_CHAOS_DYNAMODB_THROTTLE", 0) or 0) if env == LOCAL else 0.0,
        metadata_transcript=_on_off(e.get("VOMAGE_METADATA_TRANSCRIPT"), default=env == LOCAL,
                                    name="VOMAGE_METADATA_TRANSCRIPT"),
        traces_endpoint=_traces_endpoint(e.get("VOMAGE_TRACES_ENDPOINT"), env,
                                         e.get("AWS_DEFAULT_REGION") or e.get("AWS_REGION") or d.region),
        trace_sample_ratio=min(1.0, max(0.0, float(e.get("VOMAGE_TRACE_SAMPLE_RATIO")
                                                   or (1.0 if env == LOCAL else 0.1)))),
        trace_slow_s=float(e.get("VOMAGE_TRACE_SLOW_S") or d.trace_slow_s),
        trace_export_timeout_s=float(e.get("VOMAGE_TRACE_EXPORT_TIMEOUT_S") or d.trace_export_timeout_s),
        app_metrics_interval_s=float(e.get("VOMAGE_APP_METRICS_INTERVAL_S") or d.app_metrics_interval_s),
        api_rate_per_s=_positive(e.get("VOMAGE_API_RATE_PER_S"), d.api_rate_per_s, "VOMAGE_API_RATE_PER_S"),
        api_burst=int(_positive(e.get("VOMAGE_API_BURST"), d.api_burst, "VOMAGE_API_BURST")),
        state_dir=Path(e.get("VOMAGE_STATE_DIR", str(d.state_dir))),
        **_weather(e, env, d),
    )


def _positive(given: str | None, default: float, name: str) -> float:
    if given is None or not given.strip():
        return default
    value = float(given)
    if value <= 0:
        raise ValueError(f"{name} must be above 0, not {given!r}")
    return value


def _weather(e: Mapping[str, str], env: str, d: Settings) -> dict:
    """The weather provider's settings; locally its URL defaults to the model server's stand-in."""
    provider = e.get("VOMAGE_WEATHER_PROVIDER", d.weather_provider).strip().lower()
    if provider not in ("open-meteo", "derived-offline"):
        raise ValueError(f"VOMAGE_WEATHER_PROVIDER must be 'open-meteo' or 'derived-offline', not {provider!r}")
    if provider == "derived-offline" and env != LOCAL:
        raise ValueError("VOMAGE_WEATHER_PROVIDER=derived-offline invents the weather: local stacks only")
    models_url = e.get("VOMAGE_MODEL_SERVER_URL", "").strip().rstrip("/")
    default_url = f"{models_url}/v1/forecast" if env == LOCAL and models_url else d.weather_url
    return {"weather_provider": provider,
            "weather_url": e.get("VOMAGE_WEATHER_URL", "").strip() or default_url,
            "weather_timeout_s": float(e.get("VOMAGE_WEATHER_TIMEOUT_S") or d.weather_timeout_s)}


def _vocabulary_prefix(value: str | None, default: str) -> str:
    """Unset: the default; `off` (or empty): no custom vocabularies. A prefix that makes no
    valid vocabulary name fails here, at start, not at the first transcription."""
    if value is None:
        return default
    prefix = "" if value.strip().lower() in ("", "off", "none") else value.strip()
    if prefix:
        vocabulary_name(prefix, LANGUAGE_OPTIONS[0])
    return prefix


def _stability(value: str | None, default: str) -> str:
    if value is None:
        return default
    found = value.strip().lower()
    if found in ("", "off", "none"):
        return ""
    if found not in PARTIAL_RESULTS_STABILITIES:
        raise ValueError(f"VOMAGE_PARTIAL_RESULTS_STABILITY must be one of {', '.join(PARTIAL_RESULTS_STABILITIES)} "
                         f"or off, not {value!r}")
    return found


def _traces_endpoint(value: str | None, env: str, region: str) -> str:
    """Unset: X-Ray's OTLP endpoint on AWS, off locally (the stack sets its receiver's);
    `off`: off anywhere."""
    if value is None:
        return f"https://xray.{region}.amazonaws.com/v1/traces" if env == AWS else ""
    return "" if value.strip().lower() in ("", "off", "none") else value.strip()


def _choice(value: str | None, default: str, allowed: tuple[str, ...], name: str) -> str:
    found = (value or "").strip().lower() or default
    if found not in allowed:
        raise ValueError(f"{name} must be one of {', '.join(allowed)}, not {value!r}")
    return found


def _on_off(value: str | None, default: bool, name: str) -> bool:
    if value is None or not value.strip():
        return default
    if value.strip().lower() in ("on", "true", "1", "yes"):
        return True
    if value.strip().lower() in ("off", "false", "0", "no"):
        return False
    raise ValueError(f"{name} must be 'on' or 'off', not {value!r}")
