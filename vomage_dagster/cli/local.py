"""Commands of the local stand-ins: the stack, the cluster, the Dagster UI, the demo.

Each starts its processes under guards (`local/processes.py`): whatever stops the
command (Ctrl-C, SIGTERM, an exception, SIGKILL), nothing it started is left running,
except what `stack up` and `cluster up` start on purpose, which `down` stops.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from vomage_dagster.cli.common import use_local_stack
from vomage_dagster.settings import Settings, load_settings


def cmd_stack(args: argparse.Namespace, settings: Settings) -> int:
    from vomage_dagster.local.aws import stack

    if args.action == "up":
        info = stack.up(settings)
        print(f"stack up in {info['state_dir']}: moto :{info['ports']['moto']}, "
              f"redis :{info['ports']['redis']}, models :{info['ports']['models']}", file=sys.stderr)
        print(stack.export_lines(info))
    elif args.action == "down":
        stopped = stack.down(settings)
        print("stopped: " + (", ".join(stopped) or "nothing was running"), file=sys.stderr)
    else:
        info = stack.read_info(settings)
        if info is None:
            print("the local stack is not running: `vomage stack up`", file=sys.stderr)
            return 1
        print(stack.export_lines(info))
    return 0


def cmd_cluster(args: argparse.Namespace, settings: Settings) -> int:
    """The multi-process cluster on the local stack (started too if it is not running)."""
    from vomage_dagster.local.aws import stack
    from vomage_dagster.local.deployment import cluster

    root = stack.state_dir(settings)
    if args.action == "down":
        info = cluster.read_info(root)
        stopped = cluster.down(root)
        if info and info.get("started_stack"):
            stopped += [f"stack {name}" for name in stack.down(settings)]
        print("stopped: " + (", ".join(stopped) or "nothing was running"), file=sys.stderr)
        return 0
    running = stack.read_info(settings)
    started_stack = not (running and stack.healthy(running))
    stack.up(settings)
    try:
        info = cluster.up(root, args.workers, args.max_runs)
    except BaseException:
        if started_stack:
            stack.down(settings)
        raise
    info["started_stack"] = started_stack
    cluster.write_info(cluster.cluster_dir(root), info)
    ports = info["ports"]
    print(f"cluster up: Postgres :{ports['postgres']}, code server :{ports['grpc']}, "
          f"{args.workers} Celery workers, daemon, ingest; UI http://127.0.0.1:{ports['webserver']}\n"
          f"stop it with `vomage cluster down`", file=sys.stderr)
    return 0


def cmd_ui(args: argparse.Namespace, settings: Settings) -> int:
    """The Dagster UI on the running stack, with the deployment behind it (code server,
    daemon, run workers, ingest service; `local/deployment/daemon.py`); all of it stops
    with this command, however it is stopped."""
    from vomage_dagster.local import processes
    from vomage_dagster.local.deployment.daemon import running_daemon

    settings = use_local_stack(settings)
    try:
        with running_daemon(settings.state_dir.resolve(), {}, webserver_port=args.port) as deployment:
            print(f"Dagster UI on http://127.0.0.1:{args.port} (Ctrl-C stops everything)", file=sys.stderr)
            watched = [deployment.proc, deployment.webserver, deployment.code_server, deployment.ingest]
            while all(proc is not None and proc.poll() is None for proc in watched):
                time.sleep(1)
            print("vomage ui: a process of the deployment exited; see the stack's logs/", file=sys.stderr)
            return 1
    except processes.HomeInUse as exc:
        print(f"vomage ui: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0


def cmd_demo(args: argparse.Namespace, settings: Settings) -> int:
    from vomage_dagster.local.aws import stack
    from vomage_dagster.local.demo import samples
    from vomage_dagster.local.deployment.daemon import running_daemon

    started = time.perf_counter()
    was_running = (info := stack.read_info(settings)) is not None and stack.healthy(info)
    try:
        info = stack.up(settings, tied=True)
        print(f"stack ready in {time.perf_counter() - started:.1f} s", file=sys.stderr)
        env = stack.stack_env(info)
        os.environ.update(env)
        with running_daemon(Path(info["state_dir"]), env):
            local = load_settings()
            uploads = samples.upload_samples(local)
            print(f"uploaded {len(uploads)} samples; waiting for the ingest and the daemon", file=sys.stderr)
            done = samples.wait_until_final(local, uploads, timeout_s=args.timeout)
            if args.operations:
                from vomage_dagster.local.demo import operations
                from vomage_dagster.resources.build import build_resources

                began = dt.datetime.fromtimestamp(min(u.uploaded_at for u in uploads), dt.UTC)
                summary = operations.run(build_resources(local), began)
        print(samples.table(uploads))
        if args.operations:
            print("\nbatch and operations:\n" + json.dumps(summary, ensure_ascii=False, indent=1))
        print(f"\nwall time {time.perf_counter() - started:.1f} s; "
              f"{sum(1 for u in uploads if (u.status or {}).get('stage') == 'complete')} complete, "
              f"{sum(1 for u in uploads if (u.status or {}).get('stage') == 'failed')} failed")
    finally:
        if not was_running:
            stack.down(settings)
    return 0 if done else 1


def register(sub: Any) -> None:
    p = sub.add_parser("stack", help="start, stop or describe the embedded local stack")
    p.add_argument("action", choices=["up", "down", "env"])
    p.set_defaults(fn=cmd_stack)
    p = sub.add_parser("cluster", help="Postgres, code server, webserver, daemon, ingest and Celery workers")
    p.add_argument("action", choices=["up", "down"])
    p.add_argument("--workers", type=int, default=2, help="dagster-celery workers (default 2)")
    p.add_argument("--max-runs", type=int, default=2, help="runs at once (default 2)")
    p.set_defaults(fn=cmd_cluster)
    p = sub.add_parser("demo", help="run the bundled samples through the real ingest path")
    p.add_argument("--timeout", type=float, default=600)
    p.add_argument("--operations", action="store_true",
                   help="then build the day's table and report, export metrics, warm the cache, reprocess")
    p.set_defaults(fn=cmd_demo)
    p = sub.add_parser("ui", help="open the Dagster UI (dagster dev) on the local stack")
    p.add_argument("--port", type=int, default=3000)
    p.set_defaults(fn=cmd_ui)
