"""The live view (`vomage app`) as a process of the local stack, as its own template role
(`LiveViewRole`), for the tests and the browser benchmark."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from vomage_dagster.local import PROJECT_ROOT, processes
from vomage_dagster.local.aws.stack import http_ok
from vomage_dagster.local.deployment.daemon import role_env


@contextmanager
def running_live_view(state_dir: Path, port: int, env: dict[str, str] | None = None,
                      timeout_s: float = 60) -> Iterator[str]:
    """`vomage app serve` on `port` for the duration of the block; its base URL."""
    env = {**os.environ, **(env or {}), **role_env(state_dir, "live-view")}
    log = state_dir / "logs" / "live-view.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    proc = processes.start([str(Path(sys.executable).parent / "vomage"), "app", "serve", "--host", "127.0.0.1",
                            "--port", str(port)], env=env, cwd=PROJECT_ROOT, log=log)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout_s
        while not http_ok(f"{base}/health"):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the live view did not start; see {log}: {log.read_text()[-2000:]}")
            time.sleep(0.2)
        yield base
    finally:
        processes.stop(proc.pid, grace=5)
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
