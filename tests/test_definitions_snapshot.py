"""What Dagster sees, held to a snapshot (tests/snapshots/definitions.json): a move or a
change that renames an asset, a job or a sensor, or changes a partition, an owner, a kind,
a tag or a default status, shows in review as a diff of that file.

    VOMAGE_UPDATE_SNAPSHOTS=1 ./scripts/test.sh -k snapshot     # after an intended change
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

SNAPSHOT = Path(__file__).parent / "snapshots" / "definitions.json"


def _describe(env: str) -> dict:
    """The specs as a fresh process loads them with VOMAGE_ENV=`env` (defaults differ)."""
    done = subprocess.run([sys.executable, str(Path(__file__).parent / "spec_snapshot.py")],
                          env={**os.environ, "VOMAGE_ENV": env}, capture_output=True, text=True, timeout=180,
                          cwd=Path(__file__).parents[1], check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout)


def test_the_specs_dagster_sees_match_the_snapshot():
    found = {env: _describe(env) for env in ("local", "aws")}
    if os.environ.get("VOMAGE_UPDATE_SNAPSHOTS") == "1":
        SNAPSHOT.parent.mkdir(exist_ok=True)
        SNAPSHOT.write_text(json.dumps(found, indent=1, ensure_ascii=False) + "\n")
    expected = json.loads(SNAPSHOT.read_text())
    for env in found:
        for section in found[env]:
            assert found[env][section] == expected[env][section], (
                f"{env}/{section} changed; if intended, rerun with VOMAGE_UPDATE_SNAPSHOTS=1 and review the diff")
