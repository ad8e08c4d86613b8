"""A command takes SIGTERM even when its starter left it ignored or blocked (both survive
exec), so whatever it started is stopped on the way out (cli/common.take_sigterm)."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import pytest

CHILD = """
import sys, time
if sys.argv[1] == "take":
    from vomage_dagster.cli.common import take_sigterm
    take_sigterm()
try:
    print("ready", flush=True)
    time.sleep(60)
except KeyboardInterrupt:
    print("stopped", flush=True)
"""


def _ignored_and_blocked() -> None:  # in the child, before exec: what a careless starter leaves
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})


def _start(mode: str) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-c", CHILD, mode], stdout=subprocess.PIPE, text=True,
                            preexec_fn=_ignored_and_blocked)
    assert proc.stdout.readline().strip() == "ready"
    return proc


@pytest.mark.parametrize("mode", ["take", "leave"])
def test_sigterm_reaches_a_command_started_with_it_ignored_and_blocked(mode):
    proc = _start(mode)
    try:
        proc.send_signal(signal.SIGTERM)
        if mode == "leave":  # the control: without take_sigterm the signal never arrives
            time.sleep(1.0)
            assert proc.poll() is None
            return
        out, _ = proc.communicate(timeout=20)
        assert proc.returncode == 0 and "stopped" in out
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
