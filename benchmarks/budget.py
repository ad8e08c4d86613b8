"""Where the time from the end of speech goes, from each recording's trace.

Every process exports its spans to the stack's collector (the app's notice, the ingest,
its early mood call, the run and its stages, every S3/DynamoDB/SQS/Bedrock call). For
each recording, each span is placed against the end of speech (the simulated app's
wall clock); the same span across recordings (its name and its occurrence: the second
`DynamoDB.UpdateItem` is its own row) gives one row of the budget: the median start,
end and duration after the end of speech. Read top to bottom, the rows are the critical
path and what runs beside it.
"""

from __future__ import annotations

import json
import statistics
import urllib.request
from collections import defaultdict
from collections.abc import Iterable

REPEATED = 12


def fetch_spans(endpoint: str, recording_id: str) -> list[dict]:
    """The recording's spans from the local collector (empty if tracing is off)."""
    from vomage_dagster.telemetry import ids

    if not endpoint:
        return []
    url = f"{endpoint.rstrip('/')}/{ids.trace_id(recording_id):032x}"
    with urllib.request.urlopen(url, timeout=10) as resp:
        return json.loads(resp.read())["spans"]


def placed(spans: Iterable[dict], end_of_speech_ns: int) -> dict[str, tuple[float, float]]:
    """`name #k` → (start, end) in seconds after the end of speech, oldest first; the k-th
    span of that name is `#k` (k from 1; the first has no suffix). A name seen more than
    `REPEATED` times (a wait that polls) is one row, `name (polled)`."""
    spans = sorted(spans, key=lambda s: (s["start_ns"], s["end_ns"]))
    counts: dict[str, int] = defaultdict(int)
    for s in spans:
        counts[s["name"]] += 1
    seen: dict[str, int] = defaultdict(int)
    out: dict[str, tuple[float, float]] = {}
    for s in spans:
        start, end = (s["start_ns"] - end_of_speech_ns) / 1e9, (s["end_ns"] - end_of_speech_ns) / 1e9
        if counts[s["name"]] > REPEATED:  # a poll: one row from its first start to its last end
            key = f"{s['name']} (polled)"
            out[key] = (out.get(key, (start, end))[0], end)
            continue
        seen[s["name"]] += 1
        k = seen[s["name"]]
        out[s["name"] if k == 1 else f"{s['name']} #{k}"] = (start, end)
    return out


def budget(recordings: list[dict[str, tuple[float, float]]], min_share: float = 0.5) -> list[dict]:
    """One row per span found in at least `min_share` of the recordings: median start,
    end and duration (s after the end of speech), ordered by median start."""
    by_name: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for rec in recordings:
        for name, se in rec.items():
            by_name[name].append(se)
    rows = []
    for name, values in by_name.items():
        if len(values) < max(1, min_share * len(recordings)):
            continue
        rows.append({"span": name, "n": len(values),
                     "start_s": round(statistics.median(s for s, _ in values), 3),
                     "end_s": round(statistics.median(e for _, e in values), 3),
                     "duration_s": round(statistics.median(e - s for s, e in values), 3)})
    return sorted(rows, key=lambda r: (r["start_s"], r["end_s"]))


def table(rows: list[dict]) -> str:
    lines = [f"{'span':<44} {'n':>3} {'start':>7} {'end':>7} {'took':>7}"]
    lines += [f"{r['span'][:44]:<44} {r['n']:>3} {r['start_s']:>7.3f} {r['end_s']:>7.3f} {r['duration_s']:>7.3f}"
              for r in rows]
    return "\n".join(lines)
