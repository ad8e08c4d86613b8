"""Services started together on an empty database, as on a first deploy: each opens the
instance before it starts (`runtime/schema.py`) and every one of them comes up, with one
schema between them."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest
import yaml

from vomage_dagster.local import PROJECT_ROOT, processes

pytestmark = pytest.mark.slow

OPEN = "from vomage_dagster.runtime.schema import open_instance; print(open_instance())"


def test_services_starting_together_on_an_empty_database_all_come_up(tmp_path):
    from vomage_dagster.local.aws.stack import free_port
    from vomage_dagster.local.deployment import postgres

    production = yaml.safe_load((PROJECT_ROOT / "deploy" / "dagster.yaml").read_text())
    root = postgres.make_root(tmp_path / "pg")
    proc = None
    try:
        password = postgres.init(root, tmp_path / "postgres.log")
        port = free_port()
        proc = postgres.start(root, port, tmp_path / "postgres.log", dict(os.environ), tied=True)
        postgres.create_database(port, password, proc)
        storage = production["storage"]
        storage["custom"]["config"]["postgres_db"]["params"] = {"sslmode": "disable"}  # no TLS on loopback
        env = {**os.environ, **postgres.env_vars(port, password)}
        homes = []
        for i in range(8):  # eight services' homes, one database
            home = tmp_path / f"home-{i}"
            home.mkdir()
            (home / "dagster.yaml").write_text(yaml.safe_dump({"storage": storage, "telemetry": {"enabled": False}}))
            homes.append(home)
        started = [subprocess.Popen([sys.executable, "-c", OPEN], env={**env, "DAGSTER_HOME": str(h)},
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for h in homes]
        results = [p.communicate(timeout=240) for p in started]
        assert [p.returncode for p in started] == [0] * 8, [err[-1500:] for _, err in results]
        attempts = [int(out.split()[-1]) for out, _ in results]
        print(f"\nattempts each took to open the instance: {attempts}")
        again = subprocess.run([sys.executable, "-c", OPEN], env={**env, "DAGSTER_HOME": str(homes[0])},
                               capture_output=True, text=True, timeout=120)
        assert again.returncode == 0 and again.stdout.split()[-1] == "1"  # the schema is there: at once
    finally:
        if proc is not None:
            processes.stop(proc.pid, grace=10)
        shutil.rmtree(root, ignore_errors=True)
