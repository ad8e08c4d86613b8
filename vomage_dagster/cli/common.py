"""What the commands share: the local stack's environment, resources, printing."""

from __future__ import annotations

import json
import os
import signal
import sys
import threading

from vomage_dagster.settings import Settings, load_settings


def use_local_stack(settings: Settings) -> Settings:
    """Point this process at the running local stack unless the environment already does
    (or VOMAGE_ENV=aws); the settings as they are then."""
    if settings.is_local and not os.environ.get("AWS_ENDPOINT_URL"):
        from vomage_dagster.local.aws import stack

        info = stack.read_info(settings)
        if info is None or not stack.healthy(info):
            sys.exit("the local stack is not running: start it with `vomage stack up`")
        os.environ.update(stack.stack_env(info))
    return load_settings()


def resources(settings: Settings) -> dict:
    from vomage_dagster.resources.build import build_resources

    return build_resources(settings)


def print_item(item: dict, as_json: bool) -> None:
    if as_json:
        print(json.dumps(item, ensure_ascii=False, indent=1, default=str))
    else:
        for k, v in item.items():
            print(f"{k:>22}: {v}")


def exit_on_sigterm() -> None:
    """SIGTERM ends this process as Ctrl-C does, so `finally` blocks stop what it started
    (in the main thread only, where Python runs signal handlers)."""
    if threading.current_thread() is not threading.main_thread():
        return

    def interrupt(signum: int, _frame: object) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, interrupt)


def take_sigterm() -> None:
    """`exit_on_sigterm` for a command, unless something installed a handler already:
    whatever the command starts is stopped on the way out even when its starter left
    SIGTERM ignored or blocked (both survive exec; a thread that blocked signals passes
    its mask to what it spawns), so the signal must be taken back and unblocked."""
    if signal.getsignal(signal.SIGTERM) not in (signal.SIG_DFL, signal.SIG_IGN):
        return
    unblock_stop_signals()
    exit_on_sigterm()


def unblock_stop_signals() -> None:
    """SIGTERM and SIGINT delivered again, whatever mask this process inherited."""
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM, signal.SIGINT})
