"""Dagster event-log entries of the kinds a run's creation and start write, built without a
run: the SQLite storage's tests and benchmark write them straight to a storage."""

from __future__ import annotations

import logging
import time

from dagster import AssetKey
from dagster._core.events import (
    AssetCheckEvaluationPlanned,
    AssetMaterializationPlannedData,
    DagsterEvent,
    DagsterEventType,
    EngineEventData,
)
from dagster._core.events.log import EventLogEntry


def _entry(run_id: str, event: DagsterEvent) -> EventLogEntry:
    return EventLogEntry(error_info=None, level=logging.DEBUG, user_message="", run_id=run_id,
                         timestamp=time.time(), dagster_event=event)


def planned(run_id: str, key: str) -> EventLogEntry:
    """The run intends to materialize asset `key` (one partition)."""
    return _entry(run_id, DagsterEvent(
        event_type_value=DagsterEventType.ASSET_MATERIALIZATION_PLANNED.value, job_name="j", step_key=key,
        event_specific_data=AssetMaterializationPlannedData(AssetKey(key), partition="p")))


def check_planned(run_id: str, key: str, check_name: str = "ok") -> EventLogEntry:
    """The run intends to evaluate check `check_name` of asset `key`."""
    return _entry(run_id, DagsterEvent(
        event_type_value=DagsterEventType.ASSET_CHECK_EVALUATION_PLANNED.value, job_name="j", step_key=key,
        event_specific_data=AssetCheckEvaluationPlanned(asset_key=AssetKey(key), check_name=check_name)))


def engine_event(run_id: str) -> EventLogEntry:
    """An engine event, as a run's start writes several."""
    return _entry(run_id, DagsterEvent(event_type_value=DagsterEventType.ENGINE_EVENT.value, job_name="j",
                                       message="m", event_specific_data=EngineEventData()))
