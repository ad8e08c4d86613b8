"""The ingest service (`vomage ingest`, `vomage_dagster/ingest.py`) as a process beside the
daemon or `dagster dev`, for the demo, the benchmark, the UI, the cluster and the tests."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from ..settings import Settings


def wanted(settings: Settings) -> bool:
    return settings.ingest in ("service", "service+s3")


def command(workspace: Path) -> list[str]:
    return [str(Path(sys.executable).parent / "vomage"), "ingest", "--workspace", str(workspace)]


def start(env: dict[str, str], project_root: Path, log_path: Path) -> subprocess.Popen:
    """Start it in its own session (stopped with `stack.stop_process(proc.pid)`)."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log:
        return subprocess.Popen(
            command(project_root / "workspace.yaml"),
            cwd=project_root, env=env, stdout=log, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, start_new_session=True)
