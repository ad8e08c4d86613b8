"""vomage-dagster: everything Dagster loads, as a table of contents.

- assets/recording.py      the per-recording assets (raw_recording … published_record), one step
- assets/stages.py         what each of them does for one recording (plain functions)
- assets/runner.py         running them for a recording or a batch, as the owner of its attempt
- assets/daily.py          the daily Parquet table and mood report
- assets/model_checks.py   is every Bedrock model still ACTIVE (checks on mood, mood_image)
- assets/reprocessing.py   batch re-analysis of a day (Bedrock batch) + sensors/batch_jobs.py
- sensors/upload_sweep.py  an upload nothing registered is sent to the ingest (the one door, ingest/)
- sensors/run_watchdog.py  a failed or canceled run marks its recordings failed
- sensors/stranded.py      a recording stuck in progress outside any run is queued again
- jobs.py                  process_recording, daily_tables, check_models, warm_cache, export_metrics, retention
- schedules.py             when the daily, metric, cache and retention jobs run
- resources/build.py       every resource, from settings.py

Runs of recordings are launched by the ingest service (`ingest/`), not by a sensor.
"""

import os
import warnings
from pathlib import Path

from dagster import (
    AnchorBasedFilePathMapping,
    BetaWarning,
    Definitions,
    link_code_references_to_git,
    map_asset_specs,
    with_source_code_references,
)

from vomage_dagster.assets import daily, model_checks, recording, reprocessing
from vomage_dagster.jobs import JOBS
from vomage_dagster.resources.build import build_resources
from vomage_dagster.schedules import SCHEDULES
from vomage_dagster.sensors.batch_jobs import batch_job_sensor
from vomage_dagster.sensors.run_watchdog import recording_canceled_sensor, recording_failure_sensor
from vomage_dagster.sensors.stranded import stranded_recordings_sensor
from vomage_dagster.sensors.upload_sweep import upload_sweep_sensor
from vomage_dagster.settings import load_settings

OWNERS = ["team:vomage-platform"]


def presented(assets: list) -> list:
    """The assets as the UI shows them: owned by the team, with links to their code.

    The code links point at this checkout; with `VOMAGE_GIT_URL` (the repository's web URL)
    and `VOMAGE_GIT_BRANCH` (a branch or commit, default `main`) set, as the deployment's
    image does, they open the source on GitHub or GitLab instead.
    """
    owned = map_asset_specs(lambda spec: spec.replace_attributes(owners=OWNERS), assets)
    with warnings.catch_warnings():  # code references are beta in 1.13: said here, once
        warnings.simplefilter("ignore", BetaWarning)
        linked = with_source_code_references(owned)
        git_url = os.environ.get("VOMAGE_GIT_URL", "").strip()
        if not git_url:
            return list(linked)
        return list(link_code_references_to_git(
            linked, git_url=git_url, git_branch=os.environ.get("VOMAGE_GIT_BRANCH", "main"),
            file_path_mapping=AnchorBasedFilePathMapping(
                local_file_anchor=Path(__file__), file_anchor_path_in_repository="vomage_dagster/definitions.py")))


defs = Definitions(
    assets=presented(recording.ASSETS + daily.ASSETS + reprocessing.ASSETS),
    asset_checks=model_checks.CHECKS,
    jobs=JOBS,
    schedules=SCHEDULES,
    sensors=[upload_sweep_sensor, recording_failure_sensor, recording_canceled_sensor,
             stranded_recordings_sensor, batch_job_sensor],
    resources=build_resources(load_settings()),
)
