"""What Dagster sees of the code location, as plain JSON: asset, check, job, schedule and
sensor specs. `python tests/spec_snapshot.py` prints it for the environment it runs in
(VOMAGE_ENV decides the default statuses)."""

from __future__ import annotations

import json
import sys


def describe() -> dict:
    from vomage_dagster.definitions import defs

    repo = defs.get_repository_def()
    graph = repo.asset_graph
    assets = {}
    for key in sorted(graph.get_all_asset_keys(), key=lambda k: k.to_user_string()):
        node = graph.get(key)
        assets[key.to_user_string()] = {
            "group": node.group_name, "partitions": str(node.partitions_def) if node.partitions_def else None,
            "owners": list(node.owners), "kinds": sorted(node.kinds), "tags": dict(sorted(node.tags.items())),
            "deps": sorted(p.to_user_string() for p in node.parent_keys), "description": node.description}
    checks = sorted(f"{c.asset_key.to_user_string()}:{c.name}" for c in graph.asset_check_keys)
    jobs = {j.name: {"tags": dict(sorted(j.tags.items())), "executor": j.executor_def.name,
                     "partitions": str(j.partitions_def) if j.partitions_def else None,
                     "description": j.description}
            for j in sorted(repo.get_all_jobs(), key=lambda j: j.name) if not j.name.startswith("__")}
    schedules = {s.name: {"cron": s.cron_schedule, "job": s.job_name, "default": s.default_status.value,
                          "timezone": s.execution_timezone}
                 for s in sorted(repo.schedule_defs, key=lambda s: s.name)}
    sensors = {s.name: {"type": s.sensor_type.value, "default": s.default_status.value,
                        "min_interval_s": s.minimum_interval_seconds,
                        "jobs": sorted(j.name for j in s.jobs) if s.has_jobs else []}
               for s in sorted(repo.sensor_defs, key=lambda s: s.name)}
    return {"assets": assets, "asset_checks": checks, "jobs": jobs, "schedules": schedules, "sensors": sensors}


if __name__ == "__main__":
    json.dump(describe(), sys.stdout, indent=1, sort_keys=False)
