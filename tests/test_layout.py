"""The layout holds: each layer imports only the layers below it, and nothing that ships
imports the laptop's stand-ins (`local/`) or the test data (`testing/`)."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).parents[1] / "vomage_dagster"

# What each folder may import from the package (besides itself and the loose modules it
# is allowed): lower layers only.
ALLOWED = {
    "domain": set(),
    "telemetry": {"domain", "settings"},
    "resources": {"domain", "settings", "telemetry"},
    "streaming": {"domain", "settings", "resources", "telemetry"},
    "assets": {"domain", "settings", "resources", "telemetry"},
    "operations": {"domain", "settings", "resources", "assets", "runtime", "telemetry"},
    "runtime": {"settings"},
    "ingest": {"domain", "settings", "resources", "assets", "telemetry"},
    "sensors": {"domain", "settings", "resources", "assets", "jobs", "telemetry"},
    "app": {"domain", "settings", "resources", "operations", "streaming", "telemetry"},
}


def _imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("vomage_dagster."):
            found.add(node.module.split(".")[1])
        elif isinstance(node, ast.Import):
            found |= {a.name.split(".")[1] for a in node.names if a.name.startswith("vomage_dagster.")}
    return found


def test_each_layer_imports_only_the_layers_below_it():
    wrong = []
    for folder, allowed in ALLOWED.items():
        for path in (PACKAGE / folder).rglob("*.py"):
            extra = _imports(path) - allowed - {folder}
            if extra:
                wrong.append(f"{path.relative_to(PACKAGE)} imports {sorted(extra)}")
    assert not wrong, wrong


def test_domain_code_needs_neither_dagster_nor_boto3():
    for path in (PACKAGE / "domain").rglob("*.py"):
        tree = ast.parse(path.read_text())
        names = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        names |= {n.module.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
        assert not names & {"dagster", "boto3", "botocore", "redis"}, path


def test_what_ships_loads_nothing_of_local_or_testing():
    """The code location, the ingest service, the live view, the run launcher and storage,
    and the CLI, as a deployment loads them (VOMAGE_ENV=aws)."""
    code = ("import json, sys\n"
            "import vomage_dagster.definitions, vomage_dagster.ingest.service, vomage_dagster.app.server\n"
            "import vomage_dagster.runtime.run_launcher, vomage_dagster.runtime.storage, vomage_dagster.cli\n"
            "print(json.dumps(sorted(m for m in sys.modules if m.startswith('vomage_dagster.'))))\n")
    done = subprocess.run([sys.executable, "-c", code], env={**os.environ, "VOMAGE_ENV": "aws"},
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    loaded = json.loads(done.stdout)
    assert "vomage_dagster.definitions" in loaded
    assert not [m for m in loaded if m.startswith(("vomage_dagster.local", "vomage_dagster.testing"))]


def test_the_top_of_the_package_is_a_table_of_contents():
    loose = sorted(p.name for p in PACKAGE.glob("*.py"))
    assert loose == ["__init__.py", "definitions.py", "jobs.py", "schedules.py", "settings.py"]
