"""Faults through the real daemon path: Redis going away mid-stream, the daemon killed
and restarted. After each, every upload is complete or failed, with exactly one run."""

import time
from pathlib import Path

import pytest
from dagster import DagsterInstance

from vomage_dagster.local.aws import stack
from vomage_dagster.local.client.uploads import upload_file
from vomage_dagster.local.demo.samples import Upload, wait_until_final
from vomage_dagster.local.deployment.daemon import running_daemon
from vomage_dagster.settings import load_settings
from vomage_dagster.testing.reconcile import reconcile

pytestmark = pytest.mark.slow


def upload(samples, names, user):
    settings = load_settings()
    return [Upload(upload_file(settings, samples[n]["path"], user, tz=samples[n].get("tz")),
                   samples[n]["path"], time.time()) for n in names]


def wait_for_stage(uploads, stages, timeout_s=120):
    from vomage_dagster.resources.status_table import StatusTable

    settings = load_settings()
    table = StatusTable(table_name=settings.status_table, region_name=settings.region)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = table.get_many([u.recording_id for u in uploads])
        if any(item.get("stage") in stages for item in found.values()):
            return
        time.sleep(0.3)
    raise AssertionError(f"no recording reached {stages} in {timeout_s} s")


def check(daemon, uploads):
    settings = load_settings()
    with DagsterInstance.from_config(str(daemon.home)) as instance:
        result = reconcile(settings, instance, [u.recording_id for u in uploads])
    print("\n" + result.table())
    assert result.balanced, result.table()
    assert result.complete == len(uploads)


def test_redis_stopped_mid_stream_and_restarted(private_stack, samples):
    settings = load_settings()
    with running_daemon(Path(private_stack["state_dir"]), {}) as daemon:
        first = upload(samples, ["en_joy", "zh_sad", "en_angry"], "fault-redis")
        wait_for_stage(first, ("transcribing", "analyzing", "generating", "complete"))
        stack.stop_service(settings, "redis")
        during = upload(samples, ["ja_tired", "en_neutral"], "fault-redis")
        assert wait_until_final(settings, first + during, timeout_s=300)
        stack.start_service(settings, "redis")
        after = upload(samples, ["en_joy"], "fault-redis-again")
        assert wait_until_final(settings, after, timeout_s=180)
        check(daemon, first + during + after)


def test_daemon_killed_and_restarted_mid_stream(private_stack, samples):
    settings = load_settings()
    with running_daemon(Path(private_stack["state_dir"]), {}) as daemon:
        first = upload(samples, ["en_joy", "zh_sad", "en_angry", "ja_tired"], "fault-daemon")
        wait_for_stage(first, ("complete",), timeout_s=180)
        daemon.crash()
        during = upload(samples, ["en_neutral", "en_joy", "zh_sad"], "fault-daemon-down")
        time.sleep(3)
        daemon.start()
        assert wait_until_final(settings, first + during, timeout_s=400)
        check(daemon, first + during)


def test_a_run_canceled_from_the_ui_leaves_its_recordings_failed_and_retryable(private_stack, samples):
    """Canceled as the UI's Terminate does it (run marked canceling, then the run
    coordinator asks the launcher to stop it): the warm run's process is stopped, the run
    ends canceled at once, its recordings end `failed` / `run_canceled`, retryable, and a
    retry completes them."""
    from dagster import DagsterRunStatus, RunsFilter

    from vomage_dagster import cli

    settings = load_settings()
    with running_daemon(Path(private_stack["state_dir"]), {"VOMAGE_MAX_BATCH": "1"}) as daemon:
        first = upload(samples, ["ja_tired"], "cancel-me")
        with DagsterInstance.from_config(str(daemon.home)) as instance:
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                started = instance.get_runs(RunsFilter(job_name="process_recording",
                                                       statuses=[DagsterRunStatus.STARTED]))
                if started:
                    break
                time.sleep(0.1)
            (run,) = started
            instance.report_run_canceling(run)
            assert instance.run_coordinator.cancel_run(run.run_id)
            assert instance.get_run_by_id(run.run_id).status == DagsterRunStatus.CANCELED
        assert wait_until_final(settings, first, timeout_s=120)
        item = first[0].status
        assert item["stage"] == "failed" and item["error"]["code"] == "run_canceled", item
        assert item["error"]["retryable"] is True
        assert cli.main(["retry", first[0].recording_id]) == 0  # attempt 2, status back to uploaded
        assert wait_until_final(settings, first, timeout_s=180)
        assert first[0].status["stage"] == "complete" and first[0].status["attempt"] == 2, first[0].status
