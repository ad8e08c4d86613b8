"""Every process the CLI starts stops with it: Ctrl-C, SIGTERM, an exception or SIGKILL.

Each process tree is found by a mark in its environment (inherited by everything below),
so "nothing left" means no process on the machine carries the mark any more.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
import urllib.request
import uuid
from pathlib import Path

import pytest

from vomage_dagster.local import PROJECT_ROOT, processes
from vomage_dagster.local.aws.stack import free_port

MARK = "VOMAGE_TEST_MARK"


def marked(mark: str) -> list[int]:
    """The living processes whose environment carries `mark`."""
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            environ = Path(f"/proc/{pid}/environ").read_bytes()
        except OSError:
            continue
        if f"{MARK}={mark}".encode() in environ.split(b"\0") and processes.alive(int(pid)):
            found.append(int(pid))
    return found


def tree(pid: int) -> set[tuple[int, str]]:
    """A process and everything below it, each with its start time (a pid may be reused)."""
    return {(p, _started(p)) for p in [pid, *processes.descendants(pid)]}


def _started(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except OSError:
        return ""


def gone_within(mark: str, seconds: float, also: set[tuple[int, str]] = frozenset()) -> list[int]:
    """What is left, `seconds` later, of the marked processes and of `also` (a process tree
    taken before the stop: some programs, redis-server among them, overwrite their
    environment with their title, so the mark alone would miss them)."""
    deadline = time.monotonic() + seconds
    while True:
        left = marked(mark) + [p for p, started in also if _started(p) == started and processes.alive(p)]
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.2)


# A command that leaves trouble behind: a grandchild in a session of its own that ignores
# SIGTERM, and a child that ignores it too.
STUBBORN = ["bash", "-c", "setsid bash -c 'trap \"\" TERM; sleep 300' & trap '' TERM; sleep 300 & wait"]


def test_stop_ends_a_whole_tree_even_what_escaped_its_group():
    mark = uuid.uuid4().hex
    guard = processes.start(STUBBORN, env={**os.environ, MARK: mark}, grace=1)
    deadline = time.monotonic() + 10
    while len(marked(mark)) < 4 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert len(marked(mark)) >= 4  # the guard, bash, its sleep, the setsid'd bash (and its sleep)
    assert processes.stop(guard.pid, grace=1)
    assert gone_within(mark, 5) == []


def _default_signals() -> None:
    for sig in (signal.SIGINT, signal.SIGQUIT, signal.SIGTERM):
        signal.signal(sig, signal.SIG_DFL)


@pytest.mark.parametrize("how", [signal.SIGTERM, signal.SIGKILL])
def test_children_stop_when_their_starter_dies_however_it_dies(how, tmp_path):
    """The starter (a Python process standing for `vomage ui`) starts a tied child and is
    then killed: even SIGKILL, which runs no clean-up, leaves nothing behind."""
    mark = uuid.uuid4().hex
    script = tmp_path / "starter.py"
    script.write_text(textwrap.dedent(f"""
        import sys, time
        sys.path.insert(0, {str(PROJECT_ROOT)!r})
        from vomage_dagster.local import processes
        processes.start({STUBBORN!r}, grace=1)
        print("started", flush=True)
        time.sleep(300)
    """))
    # As a shell starts it: default signal actions. (In some whole-suite runs this process
    # had SIGINT, SIGQUIT and SIGTERM ignored at that moment, which a child inherits; the
    # test is about the starter's children, not about that.)
    starter = subprocess.Popen([sys.executable, str(script)], env={**os.environ, MARK: mark},
                               stdout=subprocess.PIPE, text=True, preexec_fn=_default_signals)
    assert starter.stdout.readline().strip() == "started"
    time.sleep(1)
    assert len(marked(mark)) >= 4
    before = tree(starter.pid)
    starter.send_signal(how)
    try:
        starter.wait(timeout=30)
    except subprocess.TimeoutExpired:  # say what held it: its state and its signal masks
        status = Path(f"/proc/{starter.pid}/status").read_text()
        raise AssertionError("the starter outlived " + how.name + ": " + " ".join(
            line for line in status.splitlines() if line.startswith(("State", "Sig", "Shd")))) from None
    assert gone_within(mark, 10, before) == []


def test_a_dagster_home_is_held_by_one_process_at_a_time(tmp_path):
    home = tmp_path / "home"
    holder = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import sys, time
        sys.path.insert(0, {str(PROJECT_ROOT)!r})
        from pathlib import Path
        from vomage_dagster.local import processes
        processes.hold_home(Path({str(home)!r}))
        print("held", flush=True)
        time.sleep(300)
    """)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(processes.HomeInUse, match=f"process {holder.pid}"):
            processes.hold_home(home)
    finally:
        holder.kill()
        holder.wait()
    os.close(processes.hold_home(home))  # free once its holder is gone


def _ui(mark: str, port: int, log: Path) -> subprocess.Popen:
    """`vomage ui` as a user starts it from a script: in the background of a shell that
    ignores SIGINT (which every process below would inherit)."""
    return subprocess.Popen([str(Path(sys.executable).parent / "vomage"), "ui", "--port", str(port)],
                            cwd=PROJECT_ROOT, env={**os.environ, MARK: mark}, stdout=log.open("wb"),
                            stderr=subprocess.STDOUT, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))


def _wait_up(proc: subprocess.Popen, port: int, log: Path, timeout: float = 240) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/server_info", timeout=2) as resp:
                if resp.status == 200:
                    return
        except OSError:
            pass
        assert proc.poll() is None and time.monotonic() < deadline, log.read_text()[-3000:]
        time.sleep(1)


@pytest.mark.slow
def test_vomage_ui_stops_everything_and_refuses_a_second_one_on_its_home(local_stack, tmp_path):
    mark, port = uuid.uuid4().hex, free_port()
    first = _ui(mark, port, tmp_path / "first.log")
    try:
        _wait_up(first, port, tmp_path / "first.log")
        assert len(marked(mark)) >= 6  # guards, dagster dev, webserver, daemon, code server, worker, ingest
        second = subprocess.run([str(Path(sys.executable).parent / "vomage"), "ui", "--port", str(free_port())],
                                cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=120)
        assert second.returncode == 1 and "is in use" in second.stderr, second.stderr
        started, before = time.monotonic(), tree(first.pid)
        first.send_signal(signal.SIGTERM)
        first.wait(timeout=60)
        print(f"\n`vomage ui` stopped by SIGTERM in {time.monotonic() - started:.1f} s")
        assert gone_within(mark, 30, before) == []
    finally:
        if first.poll() is None:
            first.kill()

    mark, port = uuid.uuid4().hex, free_port()
    killed = _ui(mark, port, tmp_path / "killed.log")
    _wait_up(killed, port, tmp_path / "killed.log")
    before = tree(killed.pid)
    killed.send_signal(signal.SIGKILL)
    killed.wait(timeout=10)
    assert gone_within(mark, 40, before) == []


def _until(predicate, timeout: float, what: str, proc: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert proc.poll() is None, f"exited before {what}: {log.read_text()[-3000:]}"
        assert time.monotonic() < deadline, f"no {what} within {timeout:.0f} s: {log.read_text()[-3000:]}"
        time.sleep(0.5)


@pytest.mark.slow
@pytest.mark.parametrize("command, busy, least", [
    # the demo, once it has uploaded the samples: its stack, daemon, run worker and ingest are up
    (["vomage", "demo"], lambda log: "uploaded" in log.read_text(), 12),
    # the cluster while it starts: the stack and Postgres up, the rest on its way
    (["vomage", "cluster", "up", "--workers", "1"], lambda log: True, 10),
    # the end-of-speech benchmark, once its first clip is in the app's hands
    ([sys.executable, "-m", "benchmarks.speech", "--modes", "local", "--clips", "1"],
     lambda log: "local" in log.read_text(), 12),
    # a test session, once its session stack is up (the test below, which only holds)
    ([sys.executable, "-m", "pytest", "-q", "-s", "-p", "no:cacheprovider",
      "tests/test_processes.py::test_a_session_stack_that_holds"], lambda log: "holding" in log.read_text(), 7),
], ids=["demo", "cluster-up", "benchmark", "test-fixtures"])
def test_a_command_stopped_with_sigterm_leaves_nothing(command, busy, least, tmp_path):
    """Each command in a state folder of its own (so it starts its own stack), stopped with
    SIGTERM in the middle of its work."""
    mark, log = uuid.uuid4().hex, tmp_path / "out.log"
    if command[0] == "vomage":
        command = [str(Path(sys.executable).parent / "vomage"), *command[1:]]
    env = {**os.environ, MARK: mark, "VOMAGE_STATE_DIR": str(tmp_path / "state"), "VOMAGE_TEST_HOLD": "1"}
    for name in [k for k in env if k.startswith(("AWS_ENDPOINT_URL", "VOMAGE_MODEL_SERVER", "REDIS_URL",
                                                    "VOMAGE_CELERY_BROKER", "VOMAGE_TRANSCRIBE_STREAMING"))]:
        env.pop(name)  # not the session's stack: its own
    proc = subprocess.Popen(command, cwd=PROJECT_ROOT, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT)
    try:
        _until(lambda: len(marked(mark)) >= least and busy(log), 300, "its processes", proc, log)
        time.sleep(2)
        before = tree(proc.pid)
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=90)
        assert gone_within(mark, 30, before) == [], log.read_text()[-3000:]
    finally:
        if proc.poll() is None:
            proc.kill()


@pytest.mark.skipif(os.environ.get("VOMAGE_TEST_HOLD") != "1", reason="run by the test above, in a session of its own")
def test_a_session_stack_that_holds(local_stack):
    print("holding", flush=True)
    time.sleep(600)
