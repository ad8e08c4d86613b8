"""The ingest's hold while the runs in flight fill the queue's limit (launcher.wait_for_room):
uploads gather in SQS meanwhile and the next pass launches them as batches."""

import threading

from vomage_dagster.ingest.launcher import GraphQLLauncher
from vomage_dagster.settings import load_settings


def launcher(rooms: list[bool], direct: bool = True) -> GraphQLLauncher:
    found = GraphQLLauncher.__new__(GraphQLLauncher)  # no workspace: only the waiting is tested
    found.direct = direct
    answers = iter(rooms)
    found._room = lambda: next(answers)
    return found


def test_it_waits_until_a_run_ends():
    waited = launcher([False, False, True]).wait_for_room(threading.Event(), 5, poll_s=0.01)
    assert 0.015 < waited < 1


def test_it_waits_no_longer_than_the_limit():
    waited = launcher([False] * 1000).wait_for_room(threading.Event(), 0.1, poll_s=0.01)
    assert 0.1 <= waited < 0.5


def test_off_or_queued_dispatch_never_waits():
    assert launcher([]).wait_for_room(threading.Event(), 0) == 0.0
    assert launcher([], direct=False).wait_for_room(threading.Event(), 5) == 0.0


def test_a_stop_ends_the_wait():
    stop = threading.Event()
    stop.set()
    assert launcher([False] * 10).wait_for_room(stop, 5, poll_s=0.01) < 0.5


def test_the_hold_is_a_setting():
    assert load_settings({"VOMAGE_ENV": "local"}).ingest_hold_s == 10.0
    assert load_settings({"VOMAGE_ENV": "local", "VOMAGE_INGEST_HOLD_S": "0"}).ingest_hold_s == 0.0
