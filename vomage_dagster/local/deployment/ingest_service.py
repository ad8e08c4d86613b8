"""The ingest service's command (`vomage ingest`, `vomage_dagster/ingest/`), as the local
deployment and the cluster start it beside the daemon."""

from __future__ import annotations

import sys
from pathlib import Path


def command(workspace: Path, heartbeat: Path | None = None) -> list[str]:
    """`heartbeat`: a file touched after every pass (the service's health check)."""
    return [str(Path(sys.executable).parent / "vomage"), "ingest", "--workspace", str(workspace),
            *(["--heartbeat", str(heartbeat)] if heartbeat else [])]
