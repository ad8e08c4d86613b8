"""Bedrock batch inference files: JSONL in, `.jsonl.out` back, and how a day is split.

Bedrock batch jobs take at least 100 records and at most 50,000 per job (the quotas we
plan for); a day with fewer than 100 transcripts is analysed with on-demand calls.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from vomage_dagster.domain import prompts
from vomage_dagster.domain.errors import ProcessingError
from vomage_dagster.domain.mood import validate_mood

MIN_RECORDS_PER_JOB = 100
MAX_RECORDS_PER_JOB = 50_000
TERMINAL_STATUSES = ("Completed", "PartiallyCompleted", "Failed", "Stopped", "Expired")


@dataclass(frozen=True)
class BatchResult:
    record_id: str
    mood: dict | None
    error: str | None


def split(n_records: int, max_per_job: int = MAX_RECORDS_PER_JOB,
          min_per_job: int = MIN_RECORDS_PER_JOB) -> list[tuple[int, int]]:
    """[start, end) ranges of records per job; [] when the day is too small for a batch.

    Chunks are as even as possible, so none falls under the minimum.
    """
    if n_records < min_per_job:
        return []
    jobs = -(-n_records // max_per_job)
    size = -(-n_records // jobs)
    return [(i, min(i + size, n_records)) for i in range(0, n_records, size)]


def input_lines(items: list[tuple[str, str, str]], model_id: str) -> bytes:
    """(record id, transcript, language) → the batch input JSONL, in the model's native body.

    Not the Converse format: Bedrock batch jobs of the Converse type refuse records with
    `toolConfig`, and the forced record_mood tool is what keeps the answer in the schema.
    """
    lines = [json.dumps({"recordId": rid, "modelInput": prompts.native_request(model_id, text, lang)},
                        ensure_ascii=False) for rid, text, lang in items]
    return ("\n".join(lines) + "\n").encode("utf-8")


def parse_output(data: bytes, model_id: str) -> list[BatchResult]:
    """Read `.jsonl.out`: a validated mood per record, or why there is none."""
    results = []
    for line in data.decode("utf-8").splitlines():
        if not line.strip():
            continue
        row = json.loads(line)
        rid = row.get("recordId", "")
        if row.get("error"):
            err = row["error"]
            results.append(BatchResult(rid, None, f"{err.get('errorCode')}: {err.get('errorMessage')}"))
            continue
        try:
            tool_input, _usage = prompts.tool_input_from_native(model_id, row.get("modelOutput") or {})
            mood = validate_mood(tool_input)
            results.append(BatchResult(rid, mood.as_dict(), None))
        except ProcessingError as exc:
            results.append(BatchResult(rid, None, str(exc)))
    return results
