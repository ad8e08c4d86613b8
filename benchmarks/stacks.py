"""The private local stack every benchmark starts: up, its endpoints in this process's
environment, boto3's clients made again for them, and the settings that now point at it."""

from __future__ import annotations

import os


def start_stack(extra_env: dict[str, str] | None = None) -> tuple[dict, object]:
    """(the stack's info, the settings against it); `extra_env` is set after the stack's."""
    from vomage_dagster.local.aws import stack
    from vomage_dagster.resources.aws import clear_clients
    from vomage_dagster.settings import load_settings

    info = stack.up(load_settings(), tied=True)
    os.environ.update({**stack.stack_env(info), **(extra_env or {})})
    clear_clients()
    return info, load_settings()
