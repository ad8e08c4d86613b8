"""A port taken between `free_port` choosing it and a service binding it is a race, not a
fault: the service's exit is told apart from other failures, and the stack starts again
on fresh ports."""

import subprocess
import sys

import pytest

from vomage_dagster.local.aws import stack


def _exited_saying(text: str, logs, name: str) -> subprocess.Popen:
    (logs / f"{name}.log").write_text(text)
    proc = subprocess.Popen([sys.executable, "-c", "raise SystemExit(1)"])
    proc.wait()
    return proc


def test_a_service_that_found_its_port_taken_is_told_apart(tmp_path):
    taken = _exited_saying("OSError: [Errno 98] Address already in use\n", tmp_path, "models")
    with pytest.raises(stack.PortTaken, match="Address already in use"):
        stack.wait_healthy("models", lambda: False, taken, 5, tmp_path)
    other = _exited_saying("ModuleNotFoundError: No module named 'x'\n", tmp_path, "traces")
    with pytest.raises(stack.StackError) as failed:
        stack.wait_healthy("traces", lambda: False, other, 5, tmp_path)
    assert not isinstance(failed.value, stack.PortTaken)


def _up_raising(monkeypatch, *outcomes) -> list:
    """`stack._up` answering with `outcomes` in turn (an exception is raised); its calls."""
    calls: list = []

    def fake(settings, tied):
        calls.append(tied)
        outcome = outcomes[min(len(calls), len(outcomes)) - 1]
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    monkeypatch.setattr(stack, "_up", fake)
    return calls


def test_up_starts_again_after_a_taken_port_and_not_after_other_failures(monkeypatch):
    calls = _up_raising(monkeypatch, stack.PortTaken("Address already in use"), {"ports": "fresh"})
    assert stack.up(None, tied=True) == {"ports": "fresh"} and calls == [True, True]

    calls = _up_raising(monkeypatch, stack.PortTaken("taken"))
    with pytest.raises(stack.PortTaken):
        stack.up(None)
    assert len(calls) == stack.START_ATTEMPTS

    calls = _up_raising(monkeypatch, stack.StackError("redis-server is not installed"))
    with pytest.raises(stack.StackError):
        stack.up(None)
    assert len(calls) == 1
