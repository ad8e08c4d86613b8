"""How long every stored thing lives: the one table, which the template, the writers
and the retention job follow (tests hold each of them to it).

| where | what | lifetime | enforced by |
|---|---|---|---|
| S3 `uploads/` | the recordings as uploaded (exact client metadata) | 30 days | bucket lifecycle rule |
| S3 `media/` | the validated copy Transcribe reads | 2 days | bucket lifecycle rule |
| S3 `transcripts/` | streamed transcripts (sidecars), also audio-less ones | 2 days | bucket lifecycle rule |
| S3 `transcribe-output/` | Transcribe's JSON | 7 days | bucket lifecycle rule |
| S3 `processed/` | each stage's output, the image and thumbnail | 90 days | bucket lifecycle rule |
| S3 `batch/`, `reprocessed/` | batch inference inputs, outputs, results | 30 / 90 days | bucket lifecycle rules |
| S3 `tables/`, `reports/` | the daily Parquet tables and reports | 400 days | bucket lifecycle rules |
| S3 `ingest-errors/` | refused messages (as long as SQS keeps the dead letters) | 14 days | bucket lifecycle rule |
| S3 `metrics/exported/` | export markers | 7 days | bucket lifecycle rule |
| S3 compute logs | run logs | 30 days | bucket lifecycle rule |
| DynamoDB status items | stage, progress, error | 30 days after creation | TTL on `expires_at` |
| DynamoDB VoiceRecords | the published post | 365 days after recording | TTL on `expires_at` |
| Redis | cache, live status | `transcribe:` `analysis:` 24 h, `image:` 7 d, `context:` 30 min, `status:` 1 h | TTLs |
| SQS | uploads queue, dead letters | 14 days each | queue retention |
| Dagster `recordings` partitions | one per recording | `PARTITION_HOURS` once tabled or failed | retention job |
"""

from __future__ import annotations

import datetime as dt

DAY = 86_400
# The attribute DynamoDB expires items by (the template's TimeToLiveSpecification).
TTL_ATTRIBUTE = "expires_at"

S3_PREFIX_DAYS: dict[str, int] = {
    "uploads/": 30,
    "media/": 2,
    "transcripts/": 2,
    "transcribe-output/": 7,
    "processed/": 90,
    "batch/": 30,
    "reprocessed/": 90,
    "tables/": 400,
    "reports/": 400,
    "ingest-errors/": 14,
    "metrics/exported/": 7,
}
REDIS_TTL_SECONDS = {"transcribe": 24 * 3600, "analysis": 24 * 3600, "image": 7 * 24 * 3600,
                     "context": 30 * 60, "status": 3600,
                     # the ingest's early mood call in flight (ingest/early_mood.py): a run waits for it
                     "analysis-pending": 15}
COMPUTE_LOG_DAYS = 30
STATUS_DAYS = 30
RECORD_DAYS = 365
# Dagster recommends at most 100,000 partitions per asset. The window is sized from the
# volume docs/deploy.md §5 plans for (1,000 concurrent users ≈ 36,000 recordings a day),
# with a fifth kept free; a recording's row stays in the daily table after its partition goes.
MAX_PARTITIONS = 100_000
PLANNED_RECORDINGS_PER_DAY = 36_000
HOUR = 3_600


def partition_days(recordings_per_day: int, limit: int = MAX_PARTITIONS, headroom: float = 0.8) -> int:
    """The longest whole number of days of partitions that stays within `limit`."""
    return max(1, int(limit * headroom) // max(1, recordings_per_day))


def partition_window_hours(recordings_per_s: float, limit: int = MAX_PARTITIONS, headroom: float = 0.8) -> int:
    """The longest whole number of hours of partitions that stays within `limit` at a steady
    `recordings_per_s`: window = limit × headroom / rate (at least an hour)."""
    return max(1, int(limit * headroom / max(recordings_per_s, 1e-9) / HOUR))


PARTITION_DAYS = partition_days(PLANNED_RECORDINGS_PER_DAY)
# The highest steady rate one deployment sustains, measured (benchmarks/capacity.py on the
# idle 2-core benchmark machine with Postgres, the production storage; SQLite: 4/s;
# docs/performance.md, "Capacity"). A
# deployment cannot publish more than it processes, so a window sized from the higher of
# this and the planned volume keeps the count under the ceiling even when it runs flat out.
MEASURED_RECORDINGS_PER_S = 5.0
RETENTION_RECORDINGS_PER_S = max(PLANNED_RECORDINGS_PER_DAY / DAY, MEASURED_RECORDINGS_PER_S)
PARTITION_HOURS = partition_window_hours(RETENTION_RECORDINGS_PER_S)
# A window of two days or more is pruned daily; a shorter one every hour (pruning lags the
# window by up to the interval, which the fifth kept free absorbs).
RETENTION_CRON = "0 4 * * *" if PARTITION_HOURS >= 48 else "20 * * * *"
QUEUE_DAYS = 14  # the uploads queue and its dead-letter queue


def expires_at(start: dt.datetime, days: int) -> int:
    """DynamoDB TTL value: epoch seconds `days` after `start`."""
    return int(start.timestamp()) + days * DAY
