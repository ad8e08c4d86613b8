"""The ingest service (`vomage ingest`, `vomage_dagster/ingest/`) as a process beside the
daemon or `dagster dev`, for the demo, the benchmark, the UI, the cluster and the tests."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from vomage_dagster.local import processes


def command(workspace: Path) -> list[str]:
    return [str(Path(sys.executable).parent / "vomage"), "ingest", "--workspace", str(workspace)]


def start(env: dict[str, str], project_root: Path, log_path: Path,
          keep_fds: tuple[int, ...] = ()) -> subprocess.Popen:
    """Start it under a guard tied to this process (stopped with `processes.stop(proc.pid)`)."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    return processes.start(command(project_root / "workspace.yaml"), env=env, cwd=project_root, log=log_path,
                           keep_fds=keep_fds)
