"""A recording's life, without any server: every transition and its guard
(`domain/lifecycle.py`), and the properties that must hold whatever the order of events."""

import datetime as dt

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vomage_dagster.domain import lifecycle as life

NOW = dt.datetime(2026, 12, 6, 12, 0, tzinfo=dt.UTC)
ERROR = {"code": "transcription_failed", "message": "throttled", "retryable": True}
FINAL_ERROR = {"code": "undecodable", "message": "not audio", "retryable": False}


def registered(rid: str = "rec-1") -> dict:
    return life.apply(None, life.register(rid, f"uploads/u/{rid}.m4a", NOW))


def refused(item: dict | None, transition: life.Transition) -> bool:
    with pytest.raises(life.Refused):
        life.apply(item, transition)
    return True


def test_register_makes_an_uploaded_first_attempt_once():
    item = registered()
    assert (item["stage"], item["attempt"], item["progress"], item["error"]) == ("uploaded", 1, 5, None)
    assert item["upload_key"] == "uploads/u/rec-1.m4a" and "owner" not in item
    assert item["expires_at"] > NOW.timestamp()
    assert refused(item, life.register("rec-1", "uploads/intruder/rec-1.m4a", NOW))


def test_one_owner_per_attempt():
    item = life.apply(registered(), life.own("rec-1", 1, "run-a", NOW))
    assert item["owner"] == "run-a"
    assert life.apply(item, life.own("rec-1", 1, "run-a", NOW))["owner"] == "run-a"  # a retry of run-a
    assert refused(item, life.own("rec-1", 1, "run-b", NOW))  # a duplicate delivery's run
    assert refused(registered(), life.own("rec-1", 2, "run-b", NOW))  # an attempt that is not current
    assert life.why_not_owned(item, 1, "run-b") == "run run-a owns attempt 1"


def test_only_the_owner_moves_it_and_never_backwards():
    item = life.apply(registered(), life.own("rec-1", 1, "run-a", NOW))
    item = life.apply(item, life.advance("rec-1", "analyzing", 1, "run-a", NOW))
    assert refused(item, life.advance("rec-1", "generating", 1, "run-b", NOW))
    assert refused(item, life.advance("rec-1", "transcribing", 1, "run-a", NOW))
    same = life.apply(item, life.advance("rec-1", "analyzing", 1, "run-a", NOW, {"transcript": {"text": "hi"}}))
    assert same["stage"] == "analyzing" and same["transcript"] == {"text": "hi"}
    with pytest.raises(ValueError):
        life.advance("rec-1", "complete", 1, "run-a", NOW)


def test_complete_and_failed_are_final():
    owned = life.apply(registered(), life.own("rec-1", 1, "run-a", NOW))
    done = life.apply(owned, life.complete("rec-1", 1, "run-a", NOW))
    assert (done["stage"], done["progress"], done["eta_seconds"]) == ("complete", 100, 0.0)
    for transition in (life.fail("rec-1", ERROR, NOW), life.complete("rec-1", 1, "run-a", NOW),
                       life.own("rec-1", 1, "run-a", NOW), life.retry("rec-1", NOW),
                       life.requeue("rec-1", 1, NOW, "run-a")):
        assert refused(done, transition)
    failed = life.apply(owned, life.fail("rec-1", FINAL_ERROR, NOW))
    assert refused(failed, life.advance("rec-1", "analyzing", 1, "run-a", NOW))
    assert refused(failed, life.retry("rec-1", NOW))  # not retryable


def test_fail_names_the_attempt_and_spares_other_owners():
    owned = life.apply(registered(), life.own("rec-1", 1, "run-a", NOW))
    assert refused(owned, life.fail("rec-1", ERROR, NOW, attempt=1, owner="run-b"))  # a run that stood down
    assert refused(owned, life.fail("rec-1", ERROR, NOW, attempt=2))  # a late failure of another attempt
    assert life.apply(owned, life.fail("rec-1", ERROR, NOW, 1, "run-a"))["stage"] == "failed"
    # A run that died before owning anything fails what nobody owns.
    assert life.apply(registered(), life.fail("rec-1", ERROR, NOW, 1, "run-b"))["error"] == ERROR


def test_retry_starts_a_new_attempt_without_owner_or_results():
    item = life.apply(registered(), life.own("rec-1", 1, "run-a", NOW))
    item = life.apply(item, life.advance("rec-1", "generating", 1, "run-a", NOW, {"mood": {"x": 1}}))
    item = life.apply(item, life.fail("rec-1", ERROR, NOW, 1, "run-a"))
    again = life.apply(item, life.retry("rec-1", NOW))
    assert (again["stage"], again["attempt"], again["error"]) == ("uploaded", 2, None)
    assert not {"owner", "mood", "requeues"} & set(again)
    assert refused(again, life.own("rec-1", 1, "run-a", NOW))  # the old attempt's run
    assert life.apply(again, life.own("rec-1", 2, "run-c", NOW))["owner"] == "run-c"


def test_requeue_and_supersede_release_only_a_dead_owner():
    item = registered()
    queued = life.apply(item, life.requeue("rec-1", 1, NOW))
    assert queued["requeues"] == 1
    owned = life.apply(queued, life.own("rec-1", 1, "run-a", NOW))
    assert refused(owned, life.requeue("rec-1", 1, NOW))  # owned, and nobody said its run ended
    released = life.apply(owned, life.requeue("rec-1", 1, NOW, dead_owner="run-a"))
    assert "owner" not in released and released["requeues"] == 2
    taken = life.apply(owned, life.supersede("rec-1", 1, "run-a", "run-b", NOW))
    assert taken["owner"] == "run-b"
    assert refused(taken, life.supersede("rec-1", 1, "run-a", "run-c", NOW))  # run-a is no longer the owner


EVENTS = st.lists(st.tuples(
    st.sampled_from(["own", "advance", "complete", "fail", "fail_owned", "retry", "requeue", "supersede"]),
    st.sampled_from(["run-a", "run-b", "run-c"]), st.integers(1, 3),
    st.sampled_from(["transcribing", "analyzing", "generating"]), st.booleans()), max_size=40)


def transition_of(event: tuple) -> life.Transition:
    name, run, attempt, stage, retryable = event
    error = {**ERROR, "retryable": retryable}
    return {
        "own": lambda: life.own("rec-1", attempt, run, NOW),
        "advance": lambda: life.advance("rec-1", stage, attempt, run, NOW),
        "complete": lambda: life.complete("rec-1", attempt, run, NOW),
        "fail": lambda: life.fail("rec-1", error, NOW),
        "fail_owned": lambda: life.fail("rec-1", error, NOW, attempt, run),
        "retry": lambda: life.retry("rec-1", NOW),
        "requeue": lambda: life.requeue("rec-1", attempt, NOW, run),
        "supersede": lambda: life.supersede("rec-1", attempt, run, "run-z", NOW),
    }[name]()


@settings(max_examples=300, deadline=None)
@given(EVENTS)
def test_whatever_happens_the_rules_hold(events):
    """Any sequence of transitions: a stage never moves back within an attempt, a final
    status changes only by a retry, and every write but a retry's names the current owner."""
    item = registered()
    for event in events:
        transition = transition_of(event)
        try:
            after = life.apply(item, transition)
        except life.Refused:
            continue
        if transition.name == "retry":
            assert item["stage"] == "failed" and item["error"]["retryable"] is True
            assert after["attempt"] == item["attempt"] + 1
        else:
            assert after["attempt"] == item["attempt"]
            assert not life.is_final(item), (item, event)
            assert after["stage_rank"] >= item["stage_rank"]
        if transition.name in ("advance", "complete"):
            assert item.get("owner") == event[1]
        if transition.name == "own":
            assert item.get("owner") in (None, event[1])
        item = after
