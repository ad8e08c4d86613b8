"""Reading a recording's trace back from AWS X-Ray (`vomage trace` on AWS).

Spans sent over OTLP show in X-Ray as segments (one per span kind SERVER or per service)
and subsegments; BatchGetTraces returns their JSON documents. Each segment and
subsegment becomes one waterfall row, parented as X-Ray nests them.
"""

from __future__ import annotations

import json
from typing import Any

from vomage_dagster.telemetry.waterfall import Row


def _rows(doc: dict, parent: str | None, service: str, out: list[Row]) -> None:
    status = "ERROR" if doc.get("fault") or doc.get("error") else "OK"
    end = doc.get("end_time", doc.get("start_time", 0.0))
    attributes = {**(doc.get("annotations") or {})}
    out.append(Row(doc.get("name", "?"), doc.get("id", ""), doc.get("parent_id") or parent,
                   int(float(doc.get("start_time", 0.0)) * 1e9), int(float(end) * 1e9), status, service, attributes))
    for sub in doc.get("subsegments") or []:
        _rows(sub, doc.get("id"), service, out)


def trace_rows(xray: Any, xray_trace_id: str) -> list[Row]:
    """Every segment of the trace, as rows (empty if X-Ray has none yet)."""
    rows: list[Row] = []
    token = None
    while True:
        resp = xray.batch_get_traces(TraceIds=[xray_trace_id], **({"NextToken": token} if token else {}))
        for found in resp.get("Traces", []):
            for segment in found.get("Segments", []):
                doc = json.loads(segment["Document"])
                _rows(doc, None, doc.get("name", ""), rows)
        token = resp.get("NextToken")
        if not token:
            return rows
