"""Helpers the tests share (fixtures are in conftest.py)."""

from __future__ import annotations


def own_and_move(tracker, rid: str, *stages: str, owner: str = "test-run", attempt: int = 1) -> None:
    """Register `rid` if needed, own its attempt as `owner`, and move it through `stages`
    (the last may be "complete" or "failed"), as a run would."""
    from vomage_dagster.domain.errors import ProcessingError

    tracker.register(rid, f"uploads/u/{rid}.m4a")
    assert tracker.own(rid, attempt, owner) is not None
    for stage in stages:
        if stage == "complete":
            assert tracker.complete(rid, attempt, owner)
        elif stage == "failed":
            assert tracker.fail(rid, ProcessingError("test_failure", "failed by the test"), attempt, owner)
        else:
            assert tracker.advance(rid, stage, attempt, owner)
