"""How long a recording has left, from how long each stage took recently: no I/O.

A complete status item holds when each stage of its attempt was entered
(`lifecycle.ENTERED`); the differences are the seconds each stage took, upload to
picture. The estimate when a recording enters a stage is the sum of the medians of that
stage and the ones after it, over the recent recordings of the same environment; a stage
measured fewer than `MIN_SAMPLES` times yet falls back to its typical value. The median,
not the mean: one recording stuck behind a cold start must not move every estimate.
"""

from __future__ import annotations

import datetime as dt
import statistics

from vomage_dagster.domain import lifecycle as life

# The stages a recording waits through, in order (complete and failed take no time).
TIMED = (life.UPLOADED, life.TRANSCRIBING, life.ANALYZING, life.GENERATING)
MIN_SAMPLES = 3
# Before any measurement: the local stack's typical seconds, and a second to be picked up.
TYPICAL = {life.UPLOADED: 1.0, **life.TYPICAL_SECONDS}
MAX_STAGE_S = 3600.0  # longer is no sample of a stage, but of an outage


def durations(item: dict) -> dict[str, float]:
    """Seconds each stage of a complete attempt took (empty when its first or last
    timestamp is missing). A stage never entered took no time: `analyzing` is skipped
    when the mood was ready before the stage asked for it."""
    order = (*TIMED, life.COMPLETE)
    try:
        times = [dt.datetime.fromisoformat(str(item[life.ENTERED[s]])) if life.ENTERED[s] in item else None
                 for s in order]
    except ValueError:
        return {}
    if times[0] is None or times[-1] is None:
        return {}
    for i in range(len(times) - 2, 0, -1):  # a skipped stage: entered when the next one was
        times[i] = times[i] or times[i + 1]
    spans = {stage: (later - earlier).total_seconds()
             for stage, earlier, later in zip(TIMED, times, times[1:], strict=False)}
    if any(not 0 <= s <= MAX_STAGE_S for s in spans.values()):
        return {}
    return {stage: round(s, 3) for stage, s in spans.items()}


def medians(samples: dict[str, list[float]]) -> dict[str, float]:
    """Each stage's median where it has enough samples, else its typical seconds."""
    return {stage: round(statistics.median(samples[stage]), 3)
            if len(samples.get(stage) or []) >= MIN_SAMPLES else TYPICAL[stage] for stage in TIMED}


def seconds_left(stage: str, typical: dict[str, float]) -> float:
    """Seconds from entering `stage` to complete: that stage and those after it."""
    if stage not in TIMED:
        return 0.0
    return round(sum(typical[s] for s in TIMED[TIMED.index(stage):]), 1)
