"""`vomage`: the operator's command line.

    vomage stack up | down | env     the embedded local stack
    vomage cluster up | down         Postgres, code server, webserver, daemon, Celery workers
    vomage upload FILE --user ID     store a recording as the app would; prints its id
    vomage status ID [--json]        the processing status
    vomage record ID [--json]        the published record
    vomage demo                      stack + daemon + bundled samples → a results table
    vomage ui [--port N]             `dagster dev` (UI and daemon) on the running local stack
    vomage ingest                    the ingest service: the uploads queue → runs, at once
    vomage retry ID                  run a failed, retryable recording again
    vomage dlq list | redrive        inspect / replay the uploads dead-letter queue
    vomage cache warm [--days N]     rebuild the hot Redis keys from durable outputs
    vomage metrics export [--window] send one five-minute window to CloudWatch (once)
    vomage user erase USER_ID        delete a user's recordings everywhere the platform writes
    vomage models check [--json]     is every configured Bedrock model ACTIVE? (exit 1 if not)
    vomage models list [--provider]  the models a region serves (to read an exact model id)
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from .settings import INGESTS, LANGUAGE_OPTIONS, Settings, load_settings


def _use_local_stack(settings: Settings) -> None:
    """Point this process at the running local stack unless the environment already does."""
    if not settings.is_local or os.environ.get("AWS_ENDPOINT_URL"):
        return
    from .local import stack

    info = stack.read_info(settings)
    if info is None or not stack.healthy(info):
        sys.exit("the local stack is not running: start it with `vomage stack up`")
    os.environ.update(stack.stack_env(info))


def cmd_stack(args: argparse.Namespace, settings: Settings) -> int:
    from .local import stack

    if args.action == "up":
        info = stack.up(settings)
        print(f"stack up in {info['state_dir']}: moto :{info['ports']['moto']}, "
              f"redis :{info['ports']['redis']}, models :{info['ports']['models']}",
              file=sys.stderr)
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
    from .local import cluster, stack

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
    extra = {"VOMAGE_INGEST": args.ingest} if args.ingest else {}
    info = cluster.up(root, args.workers, args.max_runs, extra)
    info["started_stack"] = started_stack
    cluster.write_info(cluster.cluster_dir(root), info)
    ports = info["ports"]
    print(f"cluster up: Postgres :{ports['postgres']}, code server :{ports['grpc']}, "
          f"{args.workers} Celery workers, daemon; UI http://127.0.0.1:{ports['webserver']}\n"
          f"stop it with `vomage cluster down`", file=sys.stderr)
    return 0


def cmd_upload(args: argparse.Namespace, settings: Settings) -> int:
    from .local.demo import upload_file

    _use_local_stack(settings)
    path = Path(args.file)
    if not path.is_file():
        print(f"no such file: {path}", file=sys.stderr)
        return 2
    rid = upload_file(load_settings(), path, args.user, lat=args.lat, lon=args.lon, tz=args.tz,
                      lang=args.lang)
    print(f"uploaded {path.name} as {rid}", file=sys.stderr)
    print(rid)
    return 0


def cmd_stream_url(args: argparse.Namespace, settings: Settings) -> int:
    """A presigned Transcribe streaming URL for one recording of `--user` (valid 5 min)."""
    from .domain.keys import valid_user_id
    from .streaming.urls import stream_url

    if not valid_user_id(args.user):
        print("a user id is [A-Za-z0-9_-], at most 64 characters", file=sys.stderr)
        return 2
    _use_local_stack(settings)
    print(stream_url(load_settings(), args.user, args.lang, args.expires))
    return 0


def cmd_speak(args: argparse.Namespace, settings: Settings) -> int:
    """The app's fast path for a file: stream it at real-time pace, upload at the end of
    speech, put the streamed transcript beside it."""
    from .local.speaking_app import speak

    _use_local_stack(settings)
    path = Path(args.file)
    if not path.is_file():
        print(f"no such file: {path}", file=sys.stderr)
        return 2
    spoken = speak(load_settings(), path, args.user, language=args.lang, realtime=not args.fast)
    if spoken.transcript_at is None:
        print(f"the stream failed ({spoken.error}): uploaded without a transcript, the batch job will run",
              file=sys.stderr)
    else:
        print(f"streamed {path.name}: final transcript {spoken.transcript_at - spoken.end_of_speech:.2f} s "
              f"after the end of speech ({spoken.language})", file=sys.stderr)
    print(spoken.recording_id)
    return 0


def _print(item: dict, as_json: bool) -> None:
    if as_json:
        print(json.dumps(item, ensure_ascii=False, indent=1, default=str))
    else:
        for k, v in item.items():
            print(f"{k:>22}: {v}")


def cmd_status(args: argparse.Namespace, settings: Settings) -> int:
    from .resources.status import StatusTable

    _use_local_stack(settings)
    settings = load_settings()
    item = StatusTable(table_name=settings.status_table, region_name=settings.region).get(args.id)
    if item is None:
        print(f"no status for {args.id}", file=sys.stderr)
        return 1
    out = {"recording_id": item["recording_id"], "stage": item["stage"],
           "progress": item["progress"], "eta_seconds": item.get("eta_seconds"),
           "error": item.get("error"), "updated_at": item.get("updated_at")}
    _print(out, args.json)
    return 0


def cmd_record(args: argparse.Namespace, settings: Settings) -> int:
    from .resources.records import RecordsTable

    _use_local_stack(settings)
    settings = load_settings()
    item = RecordsTable(table_name=settings.records_table, region_name=settings.region).get(args.id)
    if item is None:
        print(f"no published record for {args.id}", file=sys.stderr)
        return 1
    _print(item, args.json)
    return 0


def cmd_demo(args: argparse.Namespace, settings: Settings) -> int:
    from .local import demo, stack
    from .local.daemon import running_daemon

    started = time.perf_counter()
    was_running = (info := stack.read_info(settings)) is not None and stack.healthy(info)
    info = stack.up(settings)
    print(f"stack ready in {time.perf_counter() - started:.1f} s", file=sys.stderr)
    env = stack.stack_env(info)
    os.environ.update(env)
    try:
        with running_daemon(Path(info["state_dir"]), env):
            local = load_settings()
            uploads = demo.upload_samples(local)
            print(f"uploaded {len(uploads)} samples; waiting for the sensor and the daemon",
                  file=sys.stderr)
            done = demo.wait_until_final(local, uploads, timeout_s=args.timeout)
            if args.operations:
                import datetime as dt

                from .definitions import build_resources
                from .local import ops_demo

                began = dt.datetime.fromtimestamp(min(u.uploaded_at for u in uploads), dt.UTC)
                summary = ops_demo.run(build_resources(local), began)
        print(demo.table(uploads))
        if args.operations:
            print("\nbatch and operations:\n" + json.dumps(summary, ensure_ascii=False, indent=1))
        print(f"\nwall time {time.perf_counter() - started:.1f} s; "
              f"{sum(1 for u in uploads if (u.status or {}).get('stage') == 'complete')} complete, "
              f"{sum(1 for u in uploads if (u.status or {}).get('stage') == 'failed')} failed")
    finally:
        if not was_running:
            stack.down(settings)
    return 0 if done else 1


def cmd_ui(args: argparse.Namespace, settings: Settings) -> int:
    """`dagster dev` pointed at the stack and a persistent home, with the warm run worker
    that executes its runs and the ingest service; all stop when it does."""
    from .local import ingest_service, run_workers
    from .local.daemon import PROJECT_ROOT, create_storage, prepare_home
    from .local.stack import stop_process

    _use_local_stack(settings)
    local = load_settings()
    home = prepare_home(local.state_dir.resolve())
    env = {**os.environ, "DAGSTER_HOME": str(home)}
    create_storage(home)
    logs = local.state_dir / "logs"
    worker = run_workers.start(home, local, 2, env, PROJECT_ROOT, logs / "run-workers.log")
    ingest = ingest_service.start(env, PROJECT_ROOT, logs / "ingest.log") if ingest_service.wanted(local) else None
    dagster = str(Path(sys.executable).parent / "dagster")

    def stop(*_: object) -> None:
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop)  # a terminated `vomage ui` takes its children along
    dev = subprocess.Popen([dagster, "dev", "-w", "workspace.yaml", "-h", "127.0.0.1",
                            "-p", str(args.port)], cwd=PROJECT_ROOT, env=env)
    try:
        return dev.wait()
    except KeyboardInterrupt:
        return 0
    finally:
        if dev.poll() is None:
            dev.send_signal(signal.SIGINT)  # `dagster dev` shuts its processes down on SIGINT
            try:
                dev.wait(timeout=20)
            except subprocess.TimeoutExpired:
                dev.kill()
        stop_process(worker.pid)
        if ingest is not None:
            stop_process(ingest.pid)


def cmd_app(args: argparse.Namespace, settings: Settings) -> int:
    """The live view (`app/`): serve it, or print a user's token and the page's URL."""
    from .app.server import app_secret, create_app
    from .domain import access

    _use_local_stack(settings)
    settings = load_settings()
    secret = app_secret(settings)
    if args.action == "token":
        if not args.user:
            print("vomage app token needs --user", file=sys.stderr)
            return 2
        token = access.issue(secret, args.user, ttl_s=args.ttl)
        print(f"http://{args.host}:{args.port}/?token={token}" if args.url else token)
        return 0
    import uvicorn

    uvicorn.run(create_app(settings, secret), host=args.host, port=args.port, log_level="warning")
    return 0


def cmd_ingest(args: argparse.Namespace, settings: Settings) -> int:
    """The ingest service (`ingest.py`) on the instance of DAGSTER_HOME until SIGTERM or
    Ctrl-C."""
    import logging
    import threading

    from dagster import DagsterInstance

    from .ingest import serve
    from .local.daemon import PROJECT_ROOT

    _use_local_stack(settings)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    with DagsterInstance.get() as instance:
        serve(load_settings(), instance, Path(args.workspace or PROJECT_ROOT / "workspace.yaml"), stop)
    return 0


def _queue_and_store(settings: Settings):
    from .resources.queue import UploadQueue
    from .resources.store import ObjectStore

    return (UploadQueue(queue_name=settings.uploads_queue,
                        dead_letter_queue_name=settings.dead_letter_queue, region_name=settings.region),
            ObjectStore(bucket=settings.bucket, region_name=settings.region))


def cmd_retry(args: argparse.Namespace, settings: Settings) -> int:
    """A new attempt goes through the same door as any upload: a message on the queue."""
    from .operations.retry import retry
    from .resources.status import StatusTable

    _use_local_stack(settings)
    settings = load_settings()
    status = StatusTable(table_name=settings.status_table, region_name=settings.region)
    queue, _ = _queue_and_store(settings)
    outcome = retry(status, queue, args.id)
    print(outcome.reason, file=sys.stderr)
    return 0 if outcome.queued else 1


def cmd_dlq(args: argparse.Namespace, settings: Settings) -> int:
    from .sensors.sqs_uploads import INGEST_ERRORS_PREFIX

    _use_local_stack(settings)
    settings = load_settings()
    queue, store = _queue_and_store(settings)
    messages = queue.peek_dead_letters()
    if args.action == "list":
        rows = []
        for m in messages:
            key = f"{INGEST_ERRORS_PREFIX}{m.md5}.json"
            reason = store.get_json(key)["reason"] if store.exists(key) else "(no reason recorded)"
            rows.append({"message_id": m.message_id, "reason": reason, "body": m.body[:300]})
        if args.json:
            print(json.dumps(rows, ensure_ascii=False, indent=1))
        else:
            for r in rows:
                print(f"{r['message_id']}  {r['reason']}\n    {r['body']}")
            print(f"{len(rows)} message(s) in {settings.dead_letter_queue}", file=sys.stderr)
    else:
        for m in messages:
            queue.send(m.body)
        queue.delete(messages, dead_letter=True)
        print(f"redrove {len(messages)} message(s) to {settings.uploads_queue}", file=sys.stderr)
    return 0


def _resources() -> dict:
    from .definitions import build_resources

    return build_resources(load_settings())


def cmd_cache(args: argparse.Namespace, settings: Settings) -> int:
    from .operations.cache_warming import recent_days, warm

    _use_local_stack(settings)
    r = _resources()
    wanted = recent_days(args.days)
    warmed = warm(r["records"], r["store"], r["cache"], wanted)
    print(json.dumps({"days": wanted, **warmed}))
    return 0


def cmd_metrics(args: argparse.Namespace, settings: Settings) -> int:
    import datetime as dt

    from .operations.metrics import export_window

    _use_local_stack(settings)
    r = _resources()
    start = dt.datetime.fromisoformat(args.window) if args.window else None
    print(json.dumps(export_window(r["records"], r["tracker"].status, r["queue"], r["store"], start,
                                   put_alarms=settings.is_local)))
    return 0


def cmd_models(args: argparse.Namespace, settings: Settings) -> int:
    """`check`: each configured model's lifecycle, exit 1 if one is not ACTIVE. `list`: what a region serves."""
    from .resources.model_catalog import ModelCatalog

    _use_local_stack(settings)
    settings = load_settings()
    catalog = ModelCatalog()
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


def _dagster_instance(settings: Settings) -> Any:
    """The deployment's Dagster instance: DAGSTER_HOME, or locally the one `vomage ui` uses."""
    from dagster import DagsterInstance

    from .local.stack import HOME_DIR

    if os.environ.get("DAGSTER_HOME"):
        return DagsterInstance.get()
    home = settings.state_dir.resolve() / HOME_DIR
    if settings.is_local and (home / "dagster.yaml").exists():
        os.environ["DAGSTER_HOME"] = str(home)
        return DagsterInstance.get()
    return None


def cmd_user(args: argparse.Namespace, settings: Settings) -> int:
    """Erase a user's recordings from every place the platform writes (operations/erasure.py)."""
    from .operations.erasure import erase_user

    _use_local_stack(settings)
    settings = load_settings()
    r = _resources()
    instance = _dagster_instance(settings)
    try:
        done = erase_user(args.user_id, r["store"], r["records"], r["tracker"].status, r["cache"], r["queue"],
                          instance)
    except ValueError as exc:
        print(str(exc), file=sys.stderr)
        return 2
    if instance is None:
        print("no Dagster instance found (set DAGSTER_HOME): its runs and partitions were not erased",
              file=sys.stderr)
    print(json.dumps(dict(done), sort_keys=True))
    return 0 if instance is not None else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="vomage", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("stack", help="start, stop or describe the embedded local stack")
    p.add_argument("action", choices=["up", "down", "env"])
    p.set_defaults(fn=cmd_stack)
    p = sub.add_parser("cluster", help="Postgres, code server, webserver, daemon and Celery workers")
    p.add_argument("action", choices=["up", "down"])
    p.add_argument("--workers", type=int, default=2, help="dagster-celery workers (default 2)")
    p.add_argument("--max-runs", type=int, default=2, help="runs at once (default 2)")
    p.add_argument("--ingest", choices=list(INGESTS), help="what ingests uploads (settings.py)")
    p.set_defaults(fn=cmd_cluster)
    p = sub.add_parser("upload", help="upload a recording; prints its id last")
    p.add_argument("file")
    p.add_argument("--user", required=True)
    p.add_argument("--lat")
    p.add_argument("--lon")
    p.add_argument("--tz")
    p.add_argument("--lang", help="language hint: en-US, zh-CN or ja-JP")
    p.set_defaults(fn=cmd_upload)
    p = sub.add_parser("stream-url", help="a presigned Transcribe streaming URL for a user's next recording")
    p.add_argument("--user", required=True)
    p.add_argument("--lang", choices=list(LANGUAGE_OPTIONS), help="the language (default: identified)")
    p.add_argument("--expires", type=int, default=300, help="seconds, at most 300")
    p.set_defaults(fn=cmd_stream_url)
    p = sub.add_parser("speak", help="stream a recording while 'speaking', upload it, send its transcript")
    p.add_argument("file")
    p.add_argument("--user", required=True)
    p.add_argument("--lang", choices=list(LANGUAGE_OPTIONS))
    p.add_argument("--fast", action="store_true", help="stream as fast as possible, not at real-time pace")
    p.set_defaults(fn=cmd_speak)
    for name, fn, help_ in (("status", cmd_status, "a recording's processing status"),
                            ("record", cmd_record, "a recording's published record")):
        p = sub.add_parser(name, help=help_)
        p.add_argument("id")
        p.add_argument("--json", action="store_true")
        p.set_defaults(fn=fn)
    p = sub.add_parser("demo", help="run the bundled samples through the sensor path")
    p.add_argument("--timeout", type=float, default=600)
    p.add_argument("--operations", action="store_true",
                   help="then build the day's table and report, export metrics, warm the cache, reprocess")
    p.set_defaults(fn=cmd_demo)
    p = sub.add_parser("ui", help="open the Dagster UI (dagster dev) on the local stack")
    p.add_argument("--port", type=int, default=3000)
    p.set_defaults(fn=cmd_ui)
    p = sub.add_parser("app", help="the app's live view: serve it, or a user's token")
    p.add_argument("action", nargs="?", choices=["serve", "token"], default="serve")
    p.add_argument("--user", help="token: the user it speaks for")
    p.add_argument("--ttl", type=int, default=15 * 60, help="token: seconds it lasts")
    p.add_argument("--url", action="store_true", help="token: print the page's URL with it")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.set_defaults(fn=cmd_app)
    p = sub.add_parser("ingest", help="the ingest service: the uploads queue → runs, at once")
    p.add_argument("--workspace", help="workspace.yaml (default: the project's)")
    p.set_defaults(fn=cmd_ingest)
    p = sub.add_parser("retry", help="run a failed, retryable recording again")
    p.add_argument("id")
    p.set_defaults(fn=cmd_retry)
    p = sub.add_parser("dlq", help="the uploads dead-letter queue")
    p.add_argument("action", choices=["list", "redrive"])
    p.add_argument("--json", action="store_true")
    p.set_defaults(fn=cmd_dlq)
    p = sub.add_parser("cache", help="the Redis cache")
    p.add_argument("action", choices=["warm"])
    p.add_argument("--days", type=int, default=1, help="today and this many days before")
    p.set_defaults(fn=cmd_cache)
    p = sub.add_parser("metrics", help="CloudWatch metrics")
    p.add_argument("action", choices=["export"])
    p.add_argument("--window", help="ISO time inside the window (default: the last complete one)")
    p.set_defaults(fn=cmd_metrics)
    p = sub.add_parser("user", help="a user's data")
    p.add_argument("action", choices=["erase"])
    p.add_argument("user_id")
    p.set_defaults(fn=cmd_user)
    p = sub.add_parser("models", help="the Bedrock models: lifecycle check, or what a region serves")
    p.add_argument("action", choices=["check", "list"])
    p.add_argument("--json", action="store_true")
    p.add_argument("--region", help="list: the region (default: the image model's)")
    p.add_argument("--provider", help="list: only this provider, e.g. stability")
    p.set_defaults(fn=cmd_models)
    args = parser.parse_args(argv)
    return args.fn(args, load_settings())


if __name__ == "__main__":
    sys.exit(main())
