"""Starting and stopping the processes the local stack and deployment run, however we stop.

Every child is started under a *guard*, `python -m vomage_dagster.local.processes [options]
-- argv…`, in a session (process group) of its own. The guard

- is a child subreaper: whatever its command starts and leaves orphaned (Dagster's
  webserver, daemon and code servers below `dagster dev`, Celery's pool processes) is
  re-parented to the guard, so the guard finds and stops all of it;
- starts the command in its group with SIGINT at its default action (a shell running us
  in the background ignores SIGINT, and every Python below would inherit that);
- ends when the command ends, after stopping whatever it left behind;
- on SIGTERM, SIGINT or SIGHUP, or as soon as the process that started it (`--parent`)
  is gone, even killed with SIGKILL, stops everything below it: `--signal` (SIGTERM by
  default) to every process, up to `--grace` seconds, then SIGKILL to what is left.

`start` starts a guarded child, `stop` stops one (SIGTERM to the guard, a bounded wait,
then SIGKILL to its group). A child started with `tied=False` outlives its starter (the
stack of `vomage stack up`, the cluster of `vomage cluster up`) until `stop`.

`hold_home` takes the lock of a Dagster home: a second `vomage ui`, demo or daemon on a
home in use refuses to start instead of running a second daemon beside the first.
"""

from __future__ import annotations

import argparse
import ctypes
import errno
import fcntl
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

PR_SET_CHILD_SUBREAPER = 36
POLL_S = 0.2
LOCK_FILE = ".in-use"


# --- the starter's side ---

def start(argv: list[str], *, env: dict[str, str] | None = None, cwd: Path | None = None,
          log: Path | None = None, tied: bool = True, grace: float = 10.0, stop_signal: str = "TERM",
          keep_fds: tuple[int, ...] = (), user: str | None = None, group: str | None = None) -> subprocess.Popen:
    """Start `argv` under a guard in a session of its own; the guard's Popen (its pid is
    the group's). Output goes to `log` (appended), or to ours without one. `tied`: it stops
    when this process ends, however it ends. `keep_fds`: descriptors the guard holds open
    for its life (a home's lock). `user`/`group`: the command runs as them (the guard
    stays ours, so it can always stop what runs below it)."""
    guard = [sys.executable, "-m", "vomage_dagster.local.processes", "--grace", str(grace),
             "--signal", stop_signal]
    if tied:
        guard += ["--parent", str(os.getpid())]
    guard += [*(["--user", user] if user else []), *(["--group", group] if group else [])]
    out = log.open("ab") if log is not None else None  # None: this process's own stdout
    try:
        return subprocess.Popen([*guard, "--", *argv], env=env, cwd=cwd, stdout=out,
                                stderr=subprocess.STDOUT if out else None, stdin=subprocess.DEVNULL,
                                start_new_session=True, pass_fds=keep_fds)
    finally:
        if out is not None:
            out.close()


def alive(pid: int) -> bool:
    """The process exists and is not a zombie child of ours."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        done, _status = os.waitpid(pid, os.WNOHANG)
        return done == 0
    except ChildProcessError:
        return _state(pid) not in ("Z", "X", None)


def stop(pid: int, grace: float = 10.0) -> bool:
    """Stop a guarded child and everything below it; True if it was running."""
    return bool(stop_all([pid], grace))


def stop_all(pids: list[int], grace: float = 10.0) -> list[int]:
    """Stop several guarded children at once (each may take seconds); the pids that ran.

    SIGTERM to each guard, which stops its own tree within its grace; what is still there
    `grace` + 5 s later (a guard killed itself, a process that survived it) gets SIGKILL,
    by process group."""
    running = []
    for pid in pids:
        try:
            os.kill(pid, signal.SIGTERM)
            running.append(pid)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + grace + 5
    for pid in running:
        while time.monotonic() < deadline and not _group_gone(pid):
            time.sleep(0.05)
        if not _group_gone(pid):
            try:
                os.killpg(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            end = time.monotonic() + 5
            while time.monotonic() < end and not _group_gone(pid):
                time.sleep(0.05)
    return running


def _group_gone(pgid: int) -> bool:
    """The leader and every process of its group have exited."""
    if alive(pgid):
        return False
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return not any(_pgid(p) == pgid and _state(p) not in ("Z", "X") for p in _all_pids())


class HomeInUse(RuntimeError):
    pass


def hold_home(home: Path) -> int:
    """Lock a Dagster home for this process (and the guards it passes the descriptor to);
    the descriptor. `HomeInUse`, naming the holder, if another process holds it."""
    home.mkdir(parents=True, exist_ok=True)
    path = home / LOCK_FILE
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "?"
        os.close(fd)
        if exc.errno in (errno.EAGAIN, errno.EACCES):
            raise HomeInUse(f"the Dagster home {home} is in use (process {holder}: a `vomage ui`, demo, "
                            "benchmark or test on the same stack); stop it first") from None
        raise
    os.ftruncate(fd, 0)
    os.pwrite(fd, str(os.getpid()).encode(), 0)
    return fd


# --- /proc ---

def _all_pids() -> list[int]:
    return [int(name) for name in os.listdir("/proc") if name.isdigit()]


def _stat(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return raw[raw.rindex(")") + 2:].split()  # after "pid (comm) ": state, ppid, pgrp, …


def _state(pid: int) -> str | None:
    fields = _stat(pid)
    return fields[0] if fields else None


def _pgid(pid: int) -> int | None:
    fields = _stat(pid)
    return int(fields[2]) if fields else None


def command_pid(guard_pid: int) -> int | None:
    """The process a guard runs (its oldest living child), for what is measured of it."""
    children = [pid for pid in _all_pids() if (fields := _stat(pid)) and int(fields[1]) == guard_pid
                and fields[0] not in ("Z", "X")]
    return min(children) if children else None


def descendants(root: int) -> list[int]:
    """Every living process below `root` (children first found, deepest last)."""
    children: dict[int, list[int]] = {}
    for pid in _all_pids():
        fields = _stat(pid)
        if fields and fields[0] not in ("Z", "X"):
            children.setdefault(int(fields[1]), []).append(pid)
    found, todo = [], list(children.get(root, []))
    while todo:
        pid = todo.pop(0)
        found.append(pid)
        todo += children.get(pid, [])
    return found


# --- the guard's side ---

def _reap() -> None:
    """Collect exited children (orphans are re-parented to us: we are their reaper)."""
    while True:
        try:
            pid, _status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def _signal_all(pids: list[int], sig: int) -> None:
    for pid in pids:
        try:
            os.kill(pid, sig)
        except (ProcessLookupError, PermissionError):
            pass


def _stop_below(first: int, grace: float) -> None:
    _signal_all(descendants(os.getpid()), first)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        _reap()
        if not descendants(os.getpid()):
            return
        time.sleep(0.05)
    while left := descendants(os.getpid()):
        _signal_all(left, signal.SIGKILL)
        time.sleep(0.05)
        _reap()


def guard(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="vomage-guard")
    parser.add_argument("--parent", type=int)
    parser.add_argument("--grace", type=float, default=10.0)
    parser.add_argument("--signal", default="TERM")
    parser.add_argument("--user")
    parser.add_argument("--group")
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("no command")
    first = signal.Signals[f"SIG{args.signal.upper()}"]
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    stopping: list[int] = []
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, lambda signum, _frame: stopping.append(signum))

    def default_sigint() -> None:
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGHUP, signal.SIG_DFL)

    if args.parent and os.getppid() != args.parent:
        return 1  # the starter died before we ran
    child = subprocess.Popen(command, preexec_fn=default_sigint, user=args.user, group=args.group)
    code: int | None = None
    while code is None:
        # Reap every exited child: the command, and orphans re-parented to us.
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                pid = 0
            if pid == 0:
                break
            if pid == child.pid:
                code = os.waitstatus_to_exitcode(status)
        if code is None and (stopping or (args.parent and os.getppid() != args.parent)):
            code = 128 + (stopping[0] if stopping else signal.SIGTERM)
        elif code is None:
            time.sleep(POLL_S)
    _stop_below(first, args.grace)
    return code


if __name__ == "__main__":
    sys.exit(guard(sys.argv[1:]))
