"""Shared fixtures: the real local stack (moto, redis-server, model server) for a session."""

from __future__ import annotations

import json
import os
import urllib.request
from pathlib import Path

import pytest

from vomage_dagster.local import stack
from vomage_dagster.local.demo import SAMPLES_DIR, sample_manifest
from vomage_dagster.resources.aws import clear_clients
from vomage_dagster.settings import load_settings


@pytest.fixture(scope="session")
def local_stack(tmp_path_factory):
    """Start the stack in a temporary state folder and point this process at it."""
    state = tmp_path_factory.mktemp("vomage-state")
    saved = dict(os.environ)
    os.environ["VOMAGE_STATE_DIR"] = str(state)
    os.environ["VOMAGE_ENV"] = "local"
    settings = load_settings()
    info = stack.up(settings)
    os.environ.update(stack.stack_env(info))
    os.environ["VOMAGE_TRANSCRIBE_POLL_SECONDS"] = "0.2"
    clear_clients()
    try:
        yield info
    finally:
        stack.down(settings)
        os.environ.clear()
        os.environ.update(saved)
        clear_clients()


@pytest.fixture(scope="session")
def settings(local_stack):
    return load_settings()


@pytest.fixture(scope="session")
def resources(settings):
    from vomage_dagster.definitions import build_resources

    return build_resources(settings)


@pytest.fixture(scope="session")
def model_calls(local_stack):
    """A function that reads how many calls each model has served so far."""

    def read() -> dict:
        url = f"http://127.0.0.1:{local_stack['ports']['models']}/stats"
        with urllib.request.urlopen(url, timeout=5) as resp:
            return json.loads(resp.read())["calls"]

    return read


@pytest.fixture(scope="session")
def samples() -> dict[str, dict]:
    """The bundled samples by name, with their path."""
    return {Path(m["file"]).stem: {**m, "path": SAMPLES_DIR / m["file"]} for m in sample_manifest()}


@pytest.fixture()
def private_stack(tmp_path, monkeypatch):
    """A stack of its own: a sensor on a fresh cursor would otherwise also process every
    upload other tests left in the shared bucket, and warm the cache for ours."""
    env = {**os.environ, "VOMAGE_STATE_DIR": str(tmp_path / "state")}
    info = stack.up(load_settings(env))
    for name, value in {**stack.stack_env(info), "VOMAGE_TRANSCRIBE_POLL_SECONDS": "1"}.items():
        monkeypatch.setenv(name, value)
    clear_clients()
    try:
        yield info
    finally:
        stack.down(load_settings(env))
        clear_clients()
