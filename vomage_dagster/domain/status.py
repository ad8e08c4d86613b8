"""Processing stages, their order, and what the app shows for each.

A stage never moves backwards: `rank` orders them, and the status table's conditional
write refuses a lower rank. `complete` and `failed` are terminal.
"""

from __future__ import annotations

UPLOADED = "uploaded"
TRANSCRIBING = "transcribing"
ANALYZING = "analyzing"
GENERATING = "generating"
COMPLETE = "complete"
FAILED = "failed"

STAGES = (UPLOADED, TRANSCRIBING, ANALYZING, GENERATING, COMPLETE, FAILED)
TERMINAL = (COMPLETE, FAILED)
RANK = {UPLOADED: 0, TRANSCRIBING: 1, ANALYZING: 2, GENERATING: 3, COMPLETE: 4, FAILED: 4}
PROGRESS = {UPLOADED: 5, TRANSCRIBING: 20, ANALYZING: 60, GENERATING: 80, COMPLETE: 100, FAILED: 100}
# Typical seconds each stage takes on the local stack; the estimate shown to the user.
TYPICAL_SECONDS = {TRANSCRIBING: 3.0, ANALYZING: 0.5, GENERATING: 1.0}


def seconds_left(stage: str) -> float:
    """Estimated seconds until complete, from the stages still ahead."""
    if stage in TERMINAL:
        return 0.0
    ahead = STAGES[STAGES.index(stage):4]
    return round(sum(TYPICAL_SECONDS.get(s, 0.0) for s in ahead) + 1.0, 1)
