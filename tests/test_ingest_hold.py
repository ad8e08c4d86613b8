"""The ingest's hold while the runs in flight fill the queue's limit (`launcher.holding`):
what arrives meanwhile is gathered (`consumer.gather`, tested in test_ingest.py) and the
pass after the hold launches it as batches."""

from vomage_dagster.ingest.launcher import GraphQLLauncher
from vomage_dagster.settings import load_settings


def launcher(rooms: list[bool], direct: bool = True) -> GraphQLLauncher:
    found = GraphQLLauncher.__new__(GraphQLLauncher)  # no workspace: only the holding is tested
    found.direct = direct
    found._held_since = None
    answers = iter(rooms)
    found._room = lambda: next(answers)
    return found


def test_it_holds_until_a_run_ends():
    full = launcher([False, False, True, False])
    assert full.holding(5, now=0.0) and full.holding(5, now=1.0)
    assert not full.holding(5, now=2.0)  # room: the gathered uploads are launched
    assert full.holding(5, now=2.5)  # full again: a new hold, counted from now


def test_it_holds_no_longer_than_the_limit():
    full = launcher([False] * 5)
    assert full.holding(1.0, now=10.0) and full.holding(1.0, now=10.9)
    assert not full.holding(1.0, now=11.0)  # the limit: what gathered goes through the queue
    assert full.holding(1.0, now=11.1)


def test_off_or_queued_dispatch_never_holds():
    assert not launcher([]).holding(0)
    assert not launcher([], direct=False).holding(5)


def test_the_hold_is_a_setting():
    assert load_settings({"VOMAGE_ENV": "local"}).ingest_hold_s == 10.0
    assert load_settings({"VOMAGE_ENV": "local", "VOMAGE_INGEST_HOLD_S": "0"}).ingest_hold_s == 0.0
