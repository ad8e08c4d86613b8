"""Which sensors start running by default (the `VOMAGE_INGEST` setting)."""

from dagster import DefaultSensorStatus

from ..settings import Settings


def default_status(settings: Settings, sensor: str) -> DefaultSensorStatus:
    """Running when local and selected by `settings.ingest`; in AWS an operator turns
    sensors on in the UI (or the deployment's config), never by surprise."""
    selected = settings.ingest in (sensor, "both") if sensor in ("s3", "sqs") else True
    return DefaultSensorStatus.RUNNING if settings.is_local and selected else DefaultSensorStatus.STOPPED
