"""Commands about recordings: status, record, retry, the dead-letter queue, erasure."""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

from vomage_dagster.cli.common import print_item, resources, use_local_stack
from vomage_dagster.settings import Settings


def cmd_status(args: argparse.Namespace, settings: Settings) -> int:
    settings = use_local_stack(settings)
    item = resources(settings)["tracker"].status.get(args.id)
    if item is None:
        print(f"no status for {args.id}", file=sys.stderr)
        return 1
    print_item({k: item.get(k) for k in ("recording_id", "stage", "progress", "eta_seconds", "error",
                                         "attempt", "updated_at")}, args.json)
    return 0


def cmd_record(args: argparse.Namespace, settings: Settings) -> int:
    settings = use_local_stack(settings)
    item = resources(settings)["records"].get(args.id)
    if item is None:
        print(f"no published record for {args.id}", file=sys.stderr)
        return 1
    print_item(item, args.json)
    return 0


def cmd_retry(args: argparse.Namespace, settings: Settings) -> int:
    """A new attempt goes through the same door as any upload: a message on the queue."""
    from vomage_dagster.operations.retry import retry

    settings = use_local_stack(settings)
    r = resources(settings)
    outcome = retry(r["tracker"], r["queue"], args.id)
    print(outcome.reason, file=sys.stderr)
    return 0 if outcome.queued else 1


def cmd_dlq(args: argparse.Namespace, settings: Settings) -> int:
    from vomage_dagster.domain.keys import INGEST_ERRORS_PREFIX

    settings = use_local_stack(settings)
    r = resources(settings)
    queue, store = r["queue"], r["store"]
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
            for row in rows:
                print(f"{row['message_id']}  {row['reason']}\n    {row['body']}")
            print(f"{len(rows)} message(s) in {settings.dead_letter_queue}", file=sys.stderr)
    else:
        for m in messages:
            queue.send(m.body)
        queue.delete(messages, dead_letter=True)
        print(f"redrove {len(messages)} message(s) to {settings.uploads_queue}", file=sys.stderr)
    return 0


def _dagster_instance(settings: Settings) -> Any:
    """The deployment's Dagster instance: DAGSTER_HOME, or locally the one `vomage ui` uses."""
    from dagster import DagsterInstance

    if os.environ.get("DAGSTER_HOME"):
        return DagsterInstance.get()
    home = settings.local_dagster_home
    if settings.is_local and (home / "dagster.yaml").exists():
        os.environ["DAGSTER_HOME"] = str(home)
        return DagsterInstance.get()
    return None


def cmd_user(args: argparse.Namespace, settings: Settings) -> int:
    """Erase a user's recordings from every place the platform writes (operations/erasure.py)."""
    from vomage_dagster.operations.erasure import erase_user
    from vomage_dagster.resources.users import UsersTable

    settings = use_local_stack(settings)
    r = resources(settings)
    users = UsersTable(table_name=settings.users_table, region_name=settings.region)
    user_id = args.user_id
    if args.username:  # the users table's index: the app's username → the platform's user id
        found = users.by_username(args.user_id)
        if len(found) != 1:
            print(f"{len(found)} users have that username: give the user id instead", file=sys.stderr)
            return 2
        user_id = found[0]["user_id"]
    instance = _dagster_instance(settings)
    try:
        done = erase_user(user_id, r["store"], r["records"], r["tracker"].status, r["cache"], r["queue"],
                          instance, users)
    except ValueError as exc:
        print(str(exc), file=sys.stderr)
        return 2
    if instance is None:
        print("no Dagster instance found (set DAGSTER_HOME): its runs and partitions were not erased",
              file=sys.stderr)
    print(json.dumps(dict(done), sort_keys=True))
    return 0 if instance is not None else 1


def register(sub: Any) -> None:
    for name, fn, help_ in (("status", cmd_status, "a recording's processing status"),
                            ("record", cmd_record, "a recording's published record")):
        p = sub.add_parser(name, help=help_)
        p.add_argument("id")
        p.add_argument("--json", action="store_true")
        p.set_defaults(fn=fn)
    p = sub.add_parser("retry", help="run a failed, retryable recording again")
    p.add_argument("id")
    p.set_defaults(fn=cmd_retry)
    p = sub.add_parser("dlq", help="the uploads dead-letter queue")
    p.add_argument("action", choices=["list", "redrive"])
    p.add_argument("--json", action="store_true")
    p.set_defaults(fn=cmd_dlq)
    p = sub.add_parser("user", help="a user's data")
    p.add_argument("action", choices=["erase"])
    p.add_argument("user_id", help="the user id (the app's token `sub`), or with --username their username")
    p.add_argument("--username", action="store_true", help="USER_ID is the username in the app's user pool")
    p.set_defaults(fn=cmd_user)
