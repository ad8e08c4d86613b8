"""Which sensors start running by default (the `VOMAGE_INGEST` setting)."""

from dagster import DefaultSensorStatus

from ..settings import Settings


def default_status(settings: Settings, sensor: str) -> DefaultSensorStatus:
    """Running when local and selected by `settings.ingest`; in AWS an operator turns
    sensors on in the UI (or the deployment's config), never by surprise."""
    listens = {"sqs": ("sqs", "both"), "s3": ("s3", "both", "service+s3")}
    selected = settings.ingest in listens[sensor] if sensor in listens else True
    return DefaultSensorStatus.RUNNING if settings.is_local and selected else DefaultSensorStatus.STOPPED


# The daemon evaluates sensors every 5 s at most; a minimum interval of 5 s as well
# makes every other tick miss by milliseconds (ticks were measured 5 and 10 s apart).
# Below 5 s the daemon's loop sets the pace.
EVERY_DAEMON_LOOP_S = 2
