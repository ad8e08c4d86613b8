"""Where runs and the steps of a process_recording run execute.

Runs execute in warm processes: dagster-celery's `CeleryRunLauncher` hands each run to a
long-lived Celery worker that imported the code location once (`run_worker_config`,
`local/deployment/run_workers.py`, docs/deploy.md), instead of a process spawned and importing
everything for every run (≈ 1.7 s a run on two cores, docs/sources.md).

In-process is the default: on one machine a run's steps cost ~1–2 s of orchestration
that way (docs/sources.md), and the models already run in their own services. With
`VOMAGE_EXECUTOR=celery` the steps go to dagster-celery workers instead, so step work
spreads over as many worker processes (or machines) as are started; `vomage cluster up`
runs that shape locally and docs/deploy.md describes it on AWS.

The runs (which submit tasks) and the workers (which execute them) must agree on the
broker and on the delivery settings, so both read them from `celery_config`.
"""

from __future__ import annotations

import ssl

from dagster import ExecutorDefinition, in_process_executor

from vomage_dagster.settings import Settings


def celery_tls(settings: Settings) -> dict:
    """Celery refuses a rediss:// broker without explicit certificate settings: verify
    the server (ElastiCache's certificate is public; a private CA comes from settings)."""
    if not settings.celery_broker_url.startswith("rediss://"):
        return {}
    tls: dict = {"ssl_cert_reqs": int(ssl.CERT_REQUIRED)}  # a plain int: the workers read it from YAML
    if settings.redis_ca_file:
        tls["ssl_ca_certs"] = settings.redis_ca_file
    return {"broker_use_ssl": tls, "redis_backend_use_ssl": dict(tls)}


def celery_config(settings: Settings) -> dict:
    """dagster-celery's executor config: the same dict the workers' `-y` file holds."""
    return {
        "broker": settings.celery_broker_url,
        "backend": settings.celery_broker_url,
        "config_source": {
            # A task is acknowledged when it ends, not when a worker takes it: a worker
            # that dies mid-step leaves its task unacknowledged, and the broker hands it
            # to another worker once the visibility timeout has passed.
            "task_acks_late": True,
            # A pool process that dies (killed, out of memory) fails its task instead of
            # requeueing it: the run then fails, and Dagster's run retries (bounded) run
            # it again. Requeueing would loop forever on a step that always kills it.
            "task_reject_on_worker_lost": False,
            "worker_prefetch_multiplier": 1,  # a worker holds only the task it runs
            # A step's result (its events, transcript preview included) is read by its run
            # within seconds; it need not stay in Redis for Celery's default day.
            "result_expires": 600,
            "broker_connection_retry_on_startup": True,
            **celery_tls(settings),
            "broker_transport_options": {
                "visibility_timeout": settings.celery_visibility_timeout_s,
                # Look for abandoned tasks every few seconds rather than every ~100 s.
                "unacked_restore_interval": 5,
                "unacked_restore_throttle": 1,
                "max_retries": 3,
                "interval_start": 0,
                "interval_step": 0.2,
                "interval_max": 0.5,
            },
        },
    }


RUN_QUEUE = "vomage-runs"  # the run workers' default queue; steps (when on Celery) use "dagster"
# Every run queue: recordings (the default), batch jobs, metrics (jobs.py tags each job).
RUN_QUEUES = (RUN_QUEUE, "vomage-batch", "vomage-metrics")


def run_worker_config(settings: Settings) -> dict:
    """The Celery settings of the run launcher and of the run workers (both read them).

    A run task is acknowledged when a worker takes it (Celery's default, unlike steps): a
    run is never handed to a second worker, which would find it started and refuse it. A
    worker process that dies mid-run fails its task; run monitoring reads that state from
    the result backend and fails the run, and the failure sensor fails its recordings
    (retryable). The state is kept a day: run monitoring reads it while the run lives.
    """
    return {
        "broker": settings.celery_broker_url,
        "backend": settings.celery_broker_url,
        "default_queue": RUN_QUEUE,
        "config_source": {
            "task_acks_late": False,
            "worker_prefetch_multiplier": 1,
            # A worker busy with a run takes no other: with a run acknowledged on receipt,
            # Celery would otherwise reserve the next one too, and it would wait for the
            # whole current run while other workers stand idle (Redis brokers only).
            "worker_disable_prefetch": True,
            "result_expires": 86_400,
            "broker_connection_retry_on_startup": True,
            # A worker process is replaced after a run that left it above 1.5 GB: one
            # recording's stages never need that, a leak would.
            "worker_max_memory_per_child": 1_500_000,
            **celery_tls(settings),
        },
    }


def step_executor(settings: Settings) -> ExecutorDefinition:
    """The executor of the per-recording job, as `settings.executor` says."""
    if settings.executor == "celery":
        from dagster_celery import celery_executor

        return celery_executor.configured(celery_config(settings), name="celery")
    return in_process_executor
