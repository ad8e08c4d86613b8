"""`vomage`: the operator's command line.

    vomage stack up | down | env     the embedded local stack
    vomage cluster up | down         Postgres, code server, webserver, daemon, ingest, Celery workers
    vomage ui [--port N]             `dagster dev` (UI and daemon) on the running local stack
    vomage demo                      stack + daemon + bundled samples → a results table
    vomage upload FILE --user ID     store a recording as the app would; prints its id
    vomage speak FILE --user ID      stream it as the app does, then upload it
    vomage stream-url --user ID      a presigned Transcribe streaming URL
    vomage app [token --user NAME]   the live view, or a user's pool token (signed in)
    vomage status ID [--json]        the processing status
    vomage record ID [--json]        the published record
    vomage retry ID                  run a failed, retryable recording again
    vomage dlq list | redrive        inspect / replay the uploads dead-letter queue
    vomage user erase USER_ID        delete a user's recordings everywhere the platform writes
                                     (and their users-table item; --username NAME)
    vomage ingest                    the ingest service: the uploads queue → runs, at once
    vomage trace ID [--json]         a recording's trace: every span, as a waterfall
    vomage cache warm [--days N]     rebuild the hot Redis keys from durable outputs
    vomage metrics export [--window] send one five-minute window to CloudWatch (once)
    vomage models check [--json]     is every configured Bedrock model ACTIVE? (exit 1 if not)
    vomage models list [--provider]  the models a region serves (to read an exact model id)
    vomage service NAME [--health]   a production service as its container runs it (or its check)
    vomage deploy check              smoke-check a deployed stack: services, models, one recording

One module per group: local.py (the local stand-ins), app.py, recordings.py, operations.py,
deployment.py (the production services and the smoke check).
"""

from __future__ import annotations

import argparse
import sys

from vomage_dagster.cli import app, deployment, local, operations, recordings
from vomage_dagster.cli.common import take_sigterm
from vomage_dagster.resources.aws import refusal
from vomage_dagster.settings import load_settings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="vomage", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for group in (local, app, recordings, operations, deployment):
        group.register(sub)
    args = parser.parse_args(argv)
    if args.command != "ingest":  # the ingest takes SIGTERM itself, to stop between passes
        take_sigterm()
    try:
        return args.fn(args, load_settings())
    except Exception as exc:
        why = refusal(exc)
        if why is None:
            raise
        # A missing grant: which call, as whom, on what; not a stack trace.
        print(f"vomage {args.command}: AWS refused {why}", file=sys.stderr)
        return 3


if __name__ == "__main__":
    sys.exit(main())
