"""Sensors: the upload sweep, the run watchdog (failed, canceled and stranded recordings),
and the Bedrock batch jobs. None of them launches a recording's run: the ingest does."""

from dagster import DefaultSensorStatus

from vomage_dagster.settings import load_settings

# Locally every sensor starts running; on AWS an operator turns each on (docs/deploy.md).
DEFAULT_STATUS = DefaultSensorStatus.RUNNING if load_settings().is_local else DefaultSensorStatus.STOPPED

# The daemon evaluates sensors every 5 s at most; a minimum interval of 5 s as well
# makes every other tick miss by milliseconds (ticks were measured 5 and 10 s apart).
# Below 5 s the daemon's loop sets the pace.
EVERY_DAEMON_LOOP_S = 2
