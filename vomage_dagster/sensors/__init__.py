"""Sensors: the upload sweep, the run watchdog (failed, canceled and stranded recordings),
and the Bedrock batch jobs. None of them launches a recording's run: the ingest does."""

from dagster import DefaultSensorStatus

# Every sensor is a safety net or a follower of work already started: each runs from the
# first deploy, on AWS as locally (an operator may still stop one in the UI).
DEFAULT_STATUS = DefaultSensorStatus.RUNNING

# The daemon evaluates sensors every 5 s at most; a minimum interval of 5 s as well
# makes every other tick miss by milliseconds (ticks were measured 5 and 10 s apart).
# Below 5 s the daemon's loop sets the pace.
EVERY_DAEMON_LOOP_S = 2
