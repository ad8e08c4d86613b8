"""After the demo's recordings: the day's batch and operations work, run once each.

`vomage demo --operations` calls this: the daily table and report, a metric export of
the windows the demo covered, a cache flush and warm, and a reprocessing of the day
both on demand and through a (local) Bedrock batch job.
"""

from __future__ import annotations

import datetime as dt
import json
import time

from dagster import DagsterInstance, build_sensor_context, materialize


def run(resources: dict, started: dt.datetime) -> dict:
    from vomage_dagster.assets import daily, reprocessing
    from vomage_dagster.operations import cache_warming, metrics
    from vomage_dagster.sensors.batch_jobs import batch_job_sensor

    day = dt.datetime.now(dt.UTC).date().isoformat()
    out: dict = {"day": day}
    with DagsterInstance.ephemeral() as instance:
        result = materialize(daily.ASSETS, partition_key=day, instance=instance, resources=resources)
        (check,) = result.get_asset_check_evaluations()
        report = resources["store"].get_json(f"reports/mood/date={day}/report.json")
        out["table"] = {"rows": report["records"], "schema_check_passed": check.passed}
        out["report"] = {k: report[k] for k in ("by_emotion", "by_language", "mean_valence",
                                                "seconds_total_p50", "seconds_total_p95",
                                                "cost") if k in report}

        # Closed windows are exported (once); the open one is only collected, so that its
        # export, when it closes, is still the first and only one.
        windows, start = [], metrics.window_start(started)
        args = (resources["records"], resources["tracker"].status, resources["queue"])
        while start <= dt.datetime.now(dt.UTC):
            if start + metrics.WINDOW <= dt.datetime.now(dt.UTC):
                w = metrics.export_window(*args, resources["store"], start)
            else:
                w = {"window_start": start.isoformat(), "sent": False, "still_open": True,
                     "data_points": len(metrics.collect(*args, start))}
            windows.append({k: v for k, v in w.items() if k != "alarms"})
            start += metrics.WINDOW
        out["metrics"] = windows

        resources["cache"].redis.flushdb()
        out["cache_warmed"] = dict(cache_warming.warm(resources["records"], resources["store"],
                                                      resources["cache"], [day]))

        stamp = int(time.time())
        for mode, cfg in (("on-demand", {}), ("batch", {"min_batch_records": 2})):
            version = f"demo-{mode}-{stamp}"
            t0 = time.perf_counter()
            res = materialize(reprocessing.ASSETS[:1], partition_key=day, instance=instance,
                              resources=resources, run_config={"ops": {"mood_reprocessed": {
                                  "config": {"version": version, **cfg}}}})
            meta = res.asset_materializations_for_node("mood_reprocessed")[0].metadata
            entry = {"version": version, "mode": meta["mode"].value, "records": meta["records"].value}
            if entry["mode"] == "batch":
                for _ in range(240):
                    with build_sensor_context(instance=instance, resources={
                            "store": resources["store"],
                            "batch_inference": resources["batch_inference"]}) as ctx:
                        events = [e for e in batch_job_sensor(ctx).asset_events
                                  if e.metadata["version"].value == version]
                    if events:
                        entry["job_statuses"] = events[0].metadata["job_statuses"].value
                        entry["errors"] = events[0].metadata["errors"].value
                        break
                    time.sleep(0.5)
            lines = resources["store"].get_bytes(reprocessing.results_key(version, day)).decode().splitlines()
            moods = [json.loads(line)["mood"] for line in lines]
            entry["results"] = len(lines)
            entry["emotions"] = sorted({m["primary_emotion"] for m in moods if m})
            entry["seconds"] = round(time.perf_counter() - t0, 2)
            out.setdefault("reprocessing", []).append(entry)
    return out
