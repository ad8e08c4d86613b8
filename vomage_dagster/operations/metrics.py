"""CloudWatch metric export: one five-minute window at a time, each window sent once.

`Vomage/Performance` carries what users wait for: `UploadToPublished` per recording (from
the upload's arrival in S3 to its record: the 15 s alarm watches its p90), and, where the
app streamed the words, `SpeechEndToMood` (from the upload, which the app makes at the end
of speech, to the mood on screen); the error rate and `Errors` by `ErrorCode`; the stages'
`VoiceProcessingDuration` by `ProcessingStage`; and `ExportHeartbeat`, one per export, so
an export that stops raises an alarm instead of silence. `Vomage/UX` carries
`UserSatisfactionScore` (the live view's thumbs: 1 up, 0 down; its average is the share
of satisfied ratings), `Vomage/Cost` the estimated cost by `Stage`. Never a recording or
user id in a dimension. Durations go as raw values (CloudWatch then answers p50/p90/p99);
a marker object per window in S3 makes a second export of the same window a no-op.

The ingest service sends `IngestBacklogAge` itself, every minute (`telemetry/minutely.py`),
and the live view `APIResponseTime` per route.
"""

from __future__ import annotations

import datetime as dt
import re
from collections import Counter
from typing import Any

from vomage_dagster.domain import costs
from vomage_dagster.resources.queue import UploadQueue
from vomage_dagster.resources.records import RecordsTable
from vomage_dagster.resources.status_table import StatusTable
from vomage_dagster.resources.store import ObjectStore
from vomage_dagster.telemetry.minutely import PERFORMANCE

NAMESPACE = PERFORMANCE
UX_NAMESPACE = "Vomage/UX"
# Estimated cost per stage (dimension `Stage`) and what the cache saved, in USD.
COST_NAMESPACE = "Vomage/Cost"
COST_STAGES = {"transcript": "transcription", "mood": "analysis", "mood_image": "generation"}
WINDOW = dt.timedelta(minutes=5)
MAX_PER_CALL = 1000
MAX_VALUES = 150  # PutMetricData: at most 150 distinct values per datum
MAX_ERROR_CODES = 20  # distinct `ErrorCode` values a window sends; the rest count as "other"
_CODE = re.compile(r"[a-z][a-z_]{0,39}")
STAGE_NAMES = {"raw_recording": "decode", "transcript": "transcription", "recording_context": "context",
               "mood": "analysis", "mood_image": "generation", "published_record": "publish"}
TARGET_S = 15.0  # the product plan: a recording published within 15 s of its upload

# The alarms on the platform's own metrics (the template has these and the queue alarms;
# locally the export puts these). Health alarms treat missing data as breaching: a metric
# that stops coming is trouble, not calm. Traffic alarms do not (no uploads, no wait),
# and the heartbeat catches an export that stopped.
ALARMS = [
    {"AlarmName": "vomage-upload-to-published-p90", "Namespace": NAMESPACE, "MetricName": "UploadToPublished",
     "Dimensions": [], "ExtendedStatistic": "p90", "Period": 300, "EvaluationPeriods": 2, "DatapointsToAlarm": 2,
     "Threshold": TARGET_S, "ComparisonOperator": "GreaterThanThreshold", "TreatMissingData": "notBreaching",
     "AlarmDescription": "Users wait more than 15 s (p90) from the upload to their post."},
    {"AlarmName": "vomage-error-rate-high", "Namespace": NAMESPACE, "MetricName": "ErrorRate", "Dimensions": [],
     "Statistic": "Average", "Period": 300, "EvaluationPeriods": 3, "DatapointsToAlarm": 2, "Threshold": 5.0,
     "ComparisonOperator": "GreaterThanThreshold", "TreatMissingData": "notBreaching",
     "AlarmDescription": "More than 5 % of recordings fail (Errors by ErrorCode says which)."},
    {"AlarmName": "vomage-metric-export-stopped", "Namespace": NAMESPACE, "MetricName": "ExportHeartbeat",
     "Dimensions": [], "Statistic": "Sum", "Period": 300, "EvaluationPeriods": 3, "DatapointsToAlarm": 3,
     "Threshold": 1.0, "ComparisonOperator": "LessThanThreshold", "TreatMissingData": "breaching",
     "AlarmDescription": "No metric export for 15 minutes: every other alarm on these metrics is blind."},
    {"AlarmName": "vomage-ingest-backlog-old", "Namespace": NAMESPACE, "MetricName": "IngestBacklogAge",
     "Dimensions": [], "Statistic": "Maximum", "Period": 60, "EvaluationPeriods": 2, "DatapointsToAlarm": 2,
     "Threshold": 60.0, "ComparisonOperator": "GreaterThanThreshold", "TreatMissingData": "breaching",
     "AlarmDescription": "Uploads wait more than a minute for the ingest, or the ingest stopped reporting."},
]


def window_start(when: dt.datetime) -> dt.datetime:
    """The start of the five-minute window holding `when`."""
    when = when.astimezone(dt.UTC)
    return when.replace(minute=when.minute - when.minute % 5, second=0, microsecond=0)


def last_complete_window(now: dt.datetime | None = None) -> dt.datetime:
    return window_start(now or dt.datetime.now(dt.UTC)) - WINDOW


def _in_window(iso: str | None, start: dt.datetime) -> bool:
    if not iso:
        return False
    t = dt.datetime.fromisoformat(iso).astimezone(dt.UTC)
    return start <= t < start + WINDOW


def _datum(name: str, unit: str, start: dt.datetime, values: list[float], stage: str | None = None,
           dimension: str = "ProcessingStage") -> dict:
    d: dict[str, Any] = {"MetricName": name, "Unit": unit, "Timestamp": start}
    if stage:
        d["Dimensions"] = [{"Name": dimension, "Value": stage}]
    if len(set(values)) <= MAX_VALUES:
        distinct = sorted(set(values))
        d["Values"] = distinct
        d["Counts"] = [float(values.count(v)) for v in distinct]
    else:
        d["StatisticValues"] = {"SampleCount": float(len(values)), "Sum": float(sum(values)),
                                "Minimum": float(min(values)), "Maximum": float(max(values))}
    return d


def published_in(records: RecordsTable, start: dt.datetime) -> list[dict]:
    return [r for r in records.for_day(start.date().isoformat()) if _in_window(r.get("published_at"), start)]


def collect_cost(published: list[dict], start: dt.datetime) -> list[dict]:
    """`Vomage/Cost`: each record's estimated cost per `Stage` and in total, and the cache's saving."""
    if not published:
        return []
    found = [costs.record_cost(r) for r in published]
    data = [_datum("EstimatedCost", "None", start, [round(float(c["stages"].get(stage, 0)), 6) for c in found],
                   name, dimension="Stage") for stage, name in COST_STAGES.items()]
    data.append(_datum("EstimatedCost", "None", start, [round(float(c["total"]), 6) for c in found], "total",
                       dimension="Stage"))
    data.append(_datum("CacheSavings", "None", start, [round(float(c["saved"]), 6) for c in found]))
    return data


def error_code(item: dict) -> str:
    """The `ErrorCode` dimension of a failed item: the platform's own codes only."""
    code = str(((item.get("error") or {}).get("code")) or "unknown")
    return code if _CODE.fullmatch(code) else "other"


def collect_waits(published: list[dict], failed: list[dict], start: dt.datetime) -> list[dict]:
    """What users waited for, and why recordings failed."""
    data: list[dict] = []
    waits = [round(float(r["upload_to_published_s"]), 3) for r in published if "upload_to_published_s" in r]
    if waits:
        data.append(_datum("UploadToPublished", "Seconds", start, waits))
    streamed = [round(float(r["upload_to_mood_s"]), 3) for r in published
                if r.get("transcript_source") == "streaming" and "upload_to_mood_s" in r]
    if streamed:
        data.append(_datum("SpeechEndToMood", "Seconds", start, streamed))
    codes = Counter(error_code(i) for i in failed)
    top = dict(codes.most_common(MAX_ERROR_CODES))
    if len(codes) > MAX_ERROR_CODES:
        top["other"] = top.get("other", 0) + sum(n for c, n in codes.items() if c not in top)
    data += [_datum("Errors", "Count", start, [float(n)], code, dimension="ErrorCode") for code, n in top.items()]
    return data


def rated_in(records: RecordsTable, start: dt.datetime) -> list[dict]:
    """Records rated in the window (a rating follows its post by minutes, hours at most:
    the window's day and the day before)."""
    days = {start.date().isoformat(), (start - dt.timedelta(days=1)).date().isoformat()}
    return [r for day in sorted(days) for r in records.for_day(day)
            if r.get("rating") in ("up", "down") and _in_window(r.get("rated_at"), start)]


def collect_ux(rated: list[dict], start: dt.datetime) -> list[dict]:
    if not rated:
        return []
    return [_datum("UserSatisfactionScore", "None", start, [1.0 if r["rating"] == "up" else 0.0 for r in rated])]


def collect(records: RecordsTable, status: StatusTable, queue: UploadQueue,
            start: dt.datetime, published: list[dict] | None = None) -> list[dict]:
    """The `Vomage/Performance` data of the window beginning at `start`."""
    published = published_in(records, start) if published is None else published
    failed = [i for i in status.failed_between(start, start + WINDOW)]
    data: list[dict] = collect_waits(published, failed, start)
    for stage, name in STAGE_NAMES.items():
        values = [round(float(r["seconds"][stage]), 3) for r in published if stage in r.get("seconds", {})]
        if values:
            data.append(_datum("VoiceProcessingDuration", "Seconds", start, values, name))
    finished = len(published) + len(failed)
    data.append(_datum("RecordsProcessed", "Count", start, [float(len(published))]))
    if finished:
        data.append(_datum("ErrorRate", "Percent", start, [round(100.0 * len(failed) / finished, 3)]))
    lookups = sum(len(r.get("cache_hits", {})) for r in published)
    if lookups:
        hits = sum(1 for r in published for v in r.get("cache_hits", {}).values() if v)
        data.append(_datum("CacheHitRate", "Percent", start, [round(100.0 * hits / lookups, 3)]))
    depth = queue.depth()
    data.append(_datum("QueueDepth", "Count", start, [float(depth["visible"] + depth["in_flight"])]))
    return data


def export(cloudwatch: Any, store: ObjectStore, data: list[dict], start: dt.datetime,
           cost_data: list[dict] | None = None, ux_data: list[dict] | None = None) -> bool:
    """Send the window's data (and its cost and UX data) once; False if it was already sent."""
    marker = f"metrics/exported/{start.strftime('%Y-%m-%dT%H%M')}.json"
    if store.exists(marker):
        return False
    for namespace, batch in ((NAMESPACE, data), (COST_NAMESPACE, cost_data or []), (UX_NAMESPACE, ux_data or [])):
        for i in range(0, len(batch), MAX_PER_CALL):
            cloudwatch.put_metric_data(Namespace=namespace, MetricData=batch[i:i + MAX_PER_CALL])
    store.put_json(marker, {"window_start": start.isoformat(),
                            "data_points": len(data) + len(cost_data or []) + len(ux_data or [])})
    return True


def ensure_alarms(cloudwatch: Any) -> list[str]:
    """The alarms on the platform's metrics (`ALARMS`); put_metric_alarm is idempotent."""
    for alarm in ALARMS:
        cloudwatch.put_metric_alarm(**alarm)
    return [a["AlarmName"] for a in ALARMS]


def heartbeat(cloudwatch: Any, now: dt.datetime | None = None) -> None:
    """`ExportHeartbeat`: this export ran (its alarm breaches when they stop)."""
    cloudwatch.put_metric_data(Namespace=NAMESPACE, MetricData=[{
        "MetricName": "ExportHeartbeat", "Unit": "Count", "Value": 1.0,
        "Timestamp": now or dt.datetime.now(dt.UTC)}])


def export_window(records: RecordsTable, status: StatusTable, queue: UploadQueue, store: ObjectStore,
                  start: dt.datetime | None = None, put_alarms: bool = True) -> dict:
    """The window's data sent once (default: the last complete window).

    `put_alarms`: put the alarms first. Locally only: on AWS the CloudFormation template
    owns them (with their SNS actions, which putting them here would drop); moto's
    CloudFormation cannot create alarms, so the local stack gets them from here.
    """
    from vomage_dagster.resources.aws import client

    start = window_start(start) if start else last_complete_window()
    cloudwatch = client("cloudwatch", store.region_name, store.endpoint_url)
    alarms = ensure_alarms(cloudwatch) if put_alarms else []
    published = published_in(records, start)
    data = collect(records, status, queue, start, published)
    cost_data = collect_cost(published, start)
    ux_data = collect_ux(rated_in(records, start), start)
    sent = export(cloudwatch, store, data, start, cost_data, ux_data)
    heartbeat(cloudwatch)
    return {"window_start": start.isoformat(), "data_points": len(data), "cost_data_points": len(cost_data),
            "ux_data_points": len(ux_data),
            "cost_usd": round(sum(costs.record_cost(r)["total"] for r in published), 6),
            "sent": sent, "alarms": alarms}
