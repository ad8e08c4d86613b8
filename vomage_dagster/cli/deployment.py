"""Commands of the production deployment: a service as its container runs it, its health
check, and the smoke check of a deployed stack."""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

from vomage_dagster.runtime import services
from vomage_dagster.runtime.execution import RUN_QUEUES
from vomage_dagster.settings import Settings


def runtime_dir(args: argparse.Namespace) -> Path:
    """Where a service writes its start-time files; the health check reads the same."""
    return Path(args.runtime_dir or os.environ.get("VOMAGE_RUNTIME_DIR")
                or Path(tempfile.gettempdir()) / "vomage")


def cmd_service(args: argparse.Namespace, settings: Settings) -> int:
    """Check the service's settings, write its files, then become it (exec): the
    container's PID 1 init hands signals straight to the service."""
    folder = runtime_dir(args)
    if args.health:
        from vomage_dagster.runtime.health import healthy

        ok = healthy(args.name, folder, queue=args.queue, port=args.port)
        print(f"{args.name}: {'healthy' if ok else 'NOT healthy'}")
        return 0 if ok else 1
    try:
        service = services.command(args.name, os.environ, folder, queue=args.queue,
                                   concurrency=args.concurrency, host=args.host, port=args.port)
    except (services.MissingSettings, ValueError) as exc:
        print(f"vomage service {exc}", file=sys.stderr)
        return 2
    services.write_files(service)
    if args.name != services.LIVE_VIEW:  # every other service opens the Dagster instance
        from vomage_dagster.runtime.schema import open_instance

        open_instance()
    os.environ.setdefault("OTEL_SERVICE_NAME", f"vomage-{args.queue or args.name}")  # its spans' service
    sys.stdout.flush()
    os.execv(service.argv[0], service.argv)
    return 0  # not reached


def cmd_deploy(args: argparse.Namespace, settings: Settings) -> int:
    if args.action == "up":
        return deploy_up(args, settings)
    if args.action == "vocabularies":
        if settings.is_local:  # the local stack's model server answers Transcribe
            from vomage_dagster.cli.common import use_local_stack

            settings = use_local_stack(settings)
        return deploy_vocabularies(settings, poll_s=0.2 if settings.is_local else 5.0)
    from vomage_dagster.local.client.uploads import upload_file
    from vomage_dagster.local.demo.samples import SAMPLES_DIR
    from vomage_dagster.operations import deploy_check
    from vomage_dagster.resources.aws import client
    from vomage_dagster.resources.build import build_resources

    if args.local_home:
        from vomage_dagster.cli.common import use_local_stack
        from vomage_dagster.local.deployment.health import local_services

        settings = use_local_stack(settings)
        report = local_services(Path(args.local_home))
    else:
        outputs = deploy_check.stack_outputs(client("cloudformation", settings.region), args.compute_stack)
        report = deploy_check.ecs_services(client("ecs", settings.region), outputs["ClusterName"])
        if outputs.get("LiveViewUrl"):
            report.append(deploy_check.url_answers("live view /health", outputs["LiveViewUrl"].rstrip("/") + "/health"))
    resources = build_resources(settings)
    report += deploy_check.models(resources["model_catalog"], settings)
    report += deploy_check.vocabularies(client("transcribe", settings.region), settings.vocabulary_names)
    sample = Path(args.sample) if Path(args.sample).exists() else \
        next(iter(sorted(SAMPLES_DIR.glob(f"{args.sample}.*"))), None)
    if sample is None:
        report.append(deploy_check.Probe("recording end to end", False, f"no bundled sample {args.sample!r}"))
    else:
        report += deploy_check.one_recording(resources, lambda path, user: upload_file(settings, path, user),
                                             sample, args.timeout)
    if args.json:
        print(json.dumps([p.as_dict() for p in report], indent=1))
    else:
        for probe in report:
            print(probe.line())
    return 0 if all(p.ok for p in report) else 1


def deploy_up(args: argparse.Namespace, settings: Settings) -> int:
    """Both stacks, every required parameter checked first (`operations/stacks.py`)."""
    from vomage_dagster.local import PROJECT_ROOT
    from vomage_dagster.operations import stacks
    from vomage_dagster.resources.aws import client

    given: dict[str, str] = {}
    for pair in args.parameter_overrides or []:
        key, sep, value = pair.partition("=")
        if not sep:
            print(f"vomage deploy up: {pair!r} is not Key=Value", file=sys.stderr)
            return 2
        given[key] = value
    try:
        stacks.plan(given, stacks.templates(PROJECT_ROOT), args.stack)
    except (stacks.MissingParameters, stacks.UnknownParameters) as exc:
        print(f"vomage deploy up: {exc}", file=sys.stderr)
        return 2
    try:
        found = stacks.deploy_all(client("cloudformation", settings.region), client("s3", settings.region),
                                  PROJECT_ROOT, given, args.stack, args.compute_stack, args.artifacts_bucket)
    except ValueError as exc:
        print(f"vomage deploy up: {exc}", file=sys.stderr)
        return 2
    for key, value in sorted(found.items()):
        print(f"{key:>24}: {value}")
    return deploy_vocabularies(settings)


def deploy_vocabularies(settings: Settings, timeout_s: float = 900.0, poll_s: float = 5.0) -> int:
    """The custom vocabularies from the packaged word lists, created or updated and READY
    (`operations/vocabularies.py`); CloudFormation has no resource for them."""
    from vomage_dagster.domain.vocabulary import InvalidVocabulary, load_all
    from vomage_dagster.operations.vocabularies import VocabularyFailed, ensure_all
    from vomage_dagster.resources.aws import client

    if not settings.vocabulary_names:
        print("vomage deploy vocabularies: VOMAGE_VOCABULARY_PREFIX is off; nothing to do")
        return 0
    try:
        vocabularies = load_all(settings.vocabulary_names)
        outcomes = ensure_all(client("transcribe", settings.region), vocabularies, timeout_s, poll_s)
    except (InvalidVocabulary, VocabularyFailed) as exc:
        print(f"vomage deploy vocabularies: {exc}", file=sys.stderr)
        return 1
    for o in outcomes:
        print(f"{o.name:>24}: {o.action}, {o.state} ({o.language})")
    return 0


def register(sub: Any) -> None:
    p = sub.add_parser("service", help="a production service as its container runs it, or its health check")
    p.add_argument("name", choices=services.SERVICES)
    p.add_argument("--queue", choices=RUN_QUEUES, help="run-worker: the run queue it serves (its IAM role's)")
    p.add_argument("--concurrency", type=int, default=1, help="run-worker: runs at once")
    p.add_argument("--host", default="0.0.0.0", help="where a served port listens")
    p.add_argument("--port", type=int, help="the served port (default: 4000, 3000, 8000)")
    p.add_argument("--runtime-dir", help="start-time files (default: $VOMAGE_RUNTIME_DIR or <tmp>/vomage)")
    p.add_argument("--health", action="store_true", help="answer the service's health check (exit 0/1)")
    p.set_defaults(fn=cmd_service)
    p = sub.add_parser("deploy", help="deploy both stacks and the custom vocabularies (up), the vocabularies "
                       "alone (vocabularies), or smoke-check them (check: the platform's settings from the "
                       "environment, as its services get them)")
    p.add_argument("action", choices=["up", "vocabularies", "check"])
    p.add_argument("--parameter-overrides", nargs="+", metavar="KEY=VALUE",
                   help="up: the templates' parameters (every one without a default is required)")
    p.add_argument("--stack", default="vomage", help="the data stack's name (keep vomage: it prefixes named resources)")
    p.add_argument("--artifacts-bucket", help="up: where templates too large to pass inline go "
                   "(default: the data stack's bucket)")
    p.add_argument("--compute-stack", default="vomage-compute", help="the compute stack's name")
    p.add_argument("--local-home", help="check the local deployment of this Dagster home instead of ECS")
    p.add_argument("--sample", default="en_joy", help="the bundled recording sent end to end")
    p.add_argument("--timeout", type=float, default=180.0, help="seconds the recording may take")
    p.add_argument("--json", action="store_true")
    p.set_defaults(fn=cmd_deploy)
