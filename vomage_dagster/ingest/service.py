"""The ingest service (`vomage ingest`): the uploads queue, long-polled without pause,
each run launched the moment its message arrives.

It runs beside the daemon in every environment (locally `vomage ui`, the demo, the
cluster and the tests start it; on AWS an ECS service, docs/deploy.md). Several replicas
may run: a recording launched twice is owned by one run, the other stands down.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path

from dagster import DagsterInstance

from vomage_dagster.ingest.consumer import Held, gather, ingest_once
from vomage_dagster.ingest.early_mood import EarlyMood
from vomage_dagster.ingest.launcher import JOB, GraphQLLauncher
from vomage_dagster.resources.aws import client, refusal
from vomage_dagster.resources.build import build_resources
from vomage_dagster.settings import Settings
from vomage_dagster.telemetry.minutely import PERFORMANCE, Minutely

log = logging.getLogger("vomage.ingest")
# During a hold, how often the run slots and the queue are looked at when nothing arrived.
HOLD_POLL_S = 0.2


def serve(settings: Settings, instance: DagsterInstance, workspace_file: Path, stop: threading.Event,
          heartbeat: Path | None = None) -> None:
    """Until `stop` is set: receive, plan, launch, then touch `heartbeat` (its health
    check). A pass that raises (SQS or DynamoDB unreachable for a moment) is logged and
    tried again after a short pause; a call IAM refuses is raised, since a retry cannot
    grant it."""
    # Long polls (`VOMAGE_SQS_WAIT_SECONDS`): a message ends one at once, so their length
    # costs no latency, and a stop is seen within one.
    resources = build_resources(settings)
    queue, store, tracker = resources["queue"], resources["store"], resources["tracker"]
    launcher = GraphQLLauncher(workspace_file, instance, settings.ingest_dispatch)
    early = EarlyMood(store, resources["cache"], resources["analyzer"]) if settings.early_mood else None
    held = Held()  # the AWS simulation's S3 notifications not yet due (consumer._delivered)
    log.info(f"ingest service: {queue.url()} → {JOB} in {launcher.location}")
    # Reported every minute, 0 when idle: a missing minute means the ingest stopped.
    backlog = Minutely(PERFORMANCE, "IngestBacklogAge", "Seconds", lambda: client("cloudwatch", settings.region))
    gathered: list = []  # received during a hold, launched by the pass after it
    try:
        while not stop.is_set():
            try:
                # Runs full: gather what arrives, to launch it together when a run ends (launcher.py).
                if launcher.holding(settings.ingest_hold_s):
                    if not gather(queue, store, tracker, gathered, early, held):
                        stop.wait(HOLD_POLL_S)
                else:
                    ingest_once(queue, store, instance, tracker, launcher.launch, settings.max_batch, log,
                                backlog.observe, early, held, gathered)
                backlog.tick()
                if heartbeat is not None:
                    heartbeat.touch()
            except Exception as exc:
                if refusal(exc):
                    raise
                log.warning(f"ingest pass failed ({type(exc).__name__}: {str(exc)[:300]}); retrying")
                stop.wait(2)
    finally:
        if gathered:  # stopped during a hold: another replica may take them at once
            try:
                queue.release(gathered, visibility_s=0)
            except Exception as exc:  # noqa: BLE001 - they come back after the visibility timeout anyway
                log.warning(f"gathered messages not released ({type(exc).__name__})")
        launcher.close()
        if early is not None:
            early.close()
