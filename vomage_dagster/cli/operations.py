"""Commands of the platform's services and operations: the ingest service, the cache,
metrics, the models' lifecycle."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from vomage_dagster.cli.common import resources, unblock_stop_signals, use_local_stack
from vomage_dagster.settings import Settings


def cmd_ingest(args: argparse.Namespace, settings: Settings) -> int:
    """The ingest service (`ingest/service.py`) on the instance of DAGSTER_HOME until
    SIGTERM or Ctrl-C."""
    from dagster import DagsterInstance

    from vomage_dagster.ingest.service import serve

    settings = use_local_stack(settings)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    unblock_stop_signals()
    with DagsterInstance.get() as instance:
        serve(settings, instance, Path(args.workspace), stop, Path(args.heartbeat) if args.heartbeat else None)
    return 0


def cmd_cache(args: argparse.Namespace, settings: Settings) -> int:
    from vomage_dagster.operations.cache_warming import recent_days, warm

    r = resources(use_local_stack(settings))
    wanted = recent_days(args.days)
    warmed = warm(r["records"], r["store"], r["cache"], wanted)
    print(json.dumps({"days": wanted, **warmed}))
    return 0


def cmd_metrics(args: argparse.Namespace, settings: Settings) -> int:
    from vomage_dagster.operations.metrics import export_window

    settings = use_local_stack(settings)
    r = resources(settings)
    start = dt.datetime.fromisoformat(args.window) if args.window else None
    print(json.dumps(export_window(r["records"], r["tracker"].status, r["queue"], r["store"], start,
                                   put_alarms=settings.is_local)))
    return 0


def cmd_models(args: argparse.Namespace, settings: Settings) -> int:
    """`check`: each configured model's lifecycle, exit 1 if one is not ACTIVE. `list`: what a region serves."""
    settings = use_local_stack(settings)
    catalog = resources(settings)["model_catalog"]
    if args.action == "list":
        region = args.region or settings.image_region
        found = catalog.list_models(region, args.provider)
        if args.json:
            print(json.dumps(found, indent=1, default=str))
        for m in [] if args.json else found:
            print(f"{m['modelId']:<48} {m.get('modelLifecycle', {}).get('status', '?'):<7} "
                  f"{','.join(m.get('inferenceTypesSupported', []))}")
        return 0
    verdicts = catalog.check(settings.configured_models())
    if args.json:
        print(json.dumps([v.as_dict() for v in verdicts], indent=1))
    else:
        for v in verdicts:
            print(v.line())
    failing = [v.model_id for v in verdicts if not v.ok]
    if failing:
        print(f"models not ACTIVE: {', '.join(failing)}", file=sys.stderr)
        return 1
    return 0


def cmd_trace(args: argparse.Namespace, settings: Settings) -> int:
    """A recording's trace as a waterfall: from the local collector, or X-Ray on AWS."""
    import urllib.request

    from vomage_dagster.telemetry import ids, waterfall

    settings = use_local_stack(settings)
    trace_id = ids.trace_id(args.recording_id)
    if settings.is_local:
        if not settings.traces_endpoint:
            print("tracing is off (VOMAGE_TRACES_ENDPOINT)", file=sys.stderr)
            return 1
        with urllib.request.urlopen(f"{settings.traces_endpoint.rstrip('/')}/{trace_id:032x}", timeout=10) as resp:
            found = json.loads(resp.read())["spans"]
        rows = [waterfall.Row(s["name"], s["span_id"], s["parent_id"], s["start_ns"], s["end_ns"], s["status"],
                              s["service"], s["attributes"]) for s in found]
    else:
        from vomage_dagster.resources.aws import client
        from vomage_dagster.telemetry.xray import trace_rows

        rows = trace_rows(client("xray", settings.region), ids.xray_id(trace_id))
    if args.json:
        print(json.dumps({"recording_id": args.recording_id, "trace_id": ids.xray_id(trace_id),
                          "spans": [r.as_dict() for r in rows]}, indent=1))
        return 0 if rows else 1
    print(f"trace {ids.xray_id(trace_id)}  recording {args.recording_id}  ({len(rows)} spans)")
    print(waterfall.table(rows))
    return 0 if rows else 1


def register(sub: Any) -> None:
    p = sub.add_parser("ingest", help="the ingest service: the uploads queue → runs, at once")
    p.add_argument("--workspace", default="workspace.yaml", help="the workspace file (default: ./workspace.yaml)")
    p.add_argument("--heartbeat", help="a file touched after every pass (the service's health check)")
    p.set_defaults(fn=cmd_ingest)
    p = sub.add_parser("trace", help="a recording's trace as a waterfall (local collector or X-Ray)")
    p.add_argument("recording_id")
    p.add_argument("--json", action="store_true")
    p.set_defaults(fn=cmd_trace)
    p = sub.add_parser("cache", help="the Redis cache")
    p.add_argument("action", choices=["warm"])
    p.add_argument("--days", type=int, default=1, help="today and this many days before")
    p.set_defaults(fn=cmd_cache)
    p = sub.add_parser("metrics", help="CloudWatch metrics")
    p.add_argument("action", choices=["export"])
    p.add_argument("--window", help="ISO time inside the window (default: the last complete one)")
    p.set_defaults(fn=cmd_metrics)
    p = sub.add_parser("models", help="the Bedrock models: lifecycle check, or what a region serves")
    p.add_argument("action", choices=["check", "list"])
    p.add_argument("--json", action="store_true")
    p.add_argument("--region", help="list: the region (default: the image model's)")
    p.add_argument("--provider", help="list: only this provider, e.g. stability")
    p.set_defaults(fn=cmd_models)
