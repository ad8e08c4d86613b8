"""CloudWatch metric export: one five-minute window at a time, each window sent once.

Namespace `Vomage/Performance`, whose only dimension is `ProcessingStage`, and
`Vomage/Cost`, whose only dimension is `Stage` — never a recording or user id.
Durations and costs go as raw values (CloudWatch then answers p50/p95/max); a marker
object per window in S3 makes a second export of the same window a no-op.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from vomage_dagster.domain import costs
from vomage_dagster.resources.queue import UploadQueue
from vomage_dagster.resources.records import RecordsTable
from vomage_dagster.resources.status_table import StatusTable
from vomage_dagster.resources.store import ObjectStore

NAMESPACE = "Vomage/Performance"
# Estimated cost per stage (dimension `Stage`) and what the cache saved, in USD.
COST_NAMESPACE = "Vomage/Cost"
COST_STAGES = {"transcript": "transcription", "mood": "analysis", "mood_image": "generation"}
WINDOW = dt.timedelta(minutes=5)
MAX_PER_CALL = 1000
MAX_VALUES = 150  # PutMetricData: at most 150 distinct values per datum
STAGE_NAMES = {"raw_recording": "decode", "transcript": "transcription", "recording_context": "context",
               "mood": "analysis", "mood_image": "generation", "published_record": "publish"}
ALARMS = [
    {"AlarmName": "vomage-processing-duration-high", "MetricName": "VoiceProcessingDuration",
     "Dimensions": [{"Name": "ProcessingStage", "Value": "total"}], "Statistic": "Average",
     "Threshold": 15.0, "EvaluationPeriods": 2, "ComparisonOperator": "GreaterThanThreshold"},
    {"AlarmName": "vomage-error-rate-high", "MetricName": "ErrorRate", "Dimensions": [],
     "Statistic": "Average", "Threshold": 5.0, "EvaluationPeriods": 3,
     "ComparisonOperator": "GreaterThanThreshold"},
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


def collect(records: RecordsTable, status: StatusTable, queue: UploadQueue,
            start: dt.datetime, published: list[dict] | None = None) -> list[dict]:
    """The `Vomage/Performance` data of the window beginning at `start`."""
    published = published_in(records, start) if published is None else published
    failed = [i for i in status.failed_between(start, start + WINDOW)]
    data: list[dict] = []
    for stage, name in STAGE_NAMES.items():
        values = [round(float(r["seconds"][stage]), 3) for r in published if stage in r.get("seconds", {})]
        if values:
            data.append(_datum("VoiceProcessingDuration", "Seconds", start, values, name))
    totals = [round(sum(float(v) for v in r["seconds"].values()), 3) for r in published]
    if totals:
        data.append(_datum("VoiceProcessingDuration", "Seconds", start, totals, "total"))
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
           cost_data: list[dict] | None = None) -> bool:
    """Send the window's data (and its cost data) once; False if it was already sent."""
    marker = f"metrics/exported/{start.strftime('%Y-%m-%dT%H%M')}.json"
    if store.exists(marker):
        return False
    for namespace, batch in ((NAMESPACE, data), (COST_NAMESPACE, cost_data or [])):
        for i in range(0, len(batch), MAX_PER_CALL):
            cloudwatch.put_metric_data(Namespace=namespace, MetricData=batch[i:i + MAX_PER_CALL])
    store.put_json(marker, {"window_start": start.isoformat(), "data_points": len(data) + len(cost_data or [])})
    return True


def ensure_alarms(cloudwatch: Any) -> list[str]:
    """The plan's alarms (15 s processing time, 5 % errors); put_metric_alarm is idempotent."""
    for alarm in ALARMS:
        cloudwatch.put_metric_alarm(Namespace=NAMESPACE, Period=300, TreatMissingData="notBreaching",
                                    **alarm)
    return [a["AlarmName"] for a in ALARMS]


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
    sent = export(cloudwatch, store, data, start, cost_data)
    return {"window_start": start.isoformat(), "data_points": len(data), "cost_data_points": len(cost_data),
            "cost_usd": round(sum(costs.record_cost(r)["total"] for r in published), 6),
            "sent": sent, "alarms": alarms}
