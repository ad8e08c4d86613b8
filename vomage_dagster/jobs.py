"""Jobs: named selections of assets that sensors and schedules launch."""

from dagster import AssetSelection, define_asset_job, in_process_executor

from .partitions import recordings

# In-process: a 6-asset chain costs ~1–2 s of orchestration this way against ~9–10 s
# with a subprocess per step (measured, DESIGN.md §5). The model calls are the slow part
# and they already run in the model services.
process_recording = define_asset_job(
    "process_recording",
    selection=AssetSelection.groups("recording"),
    partitions_def=recordings,
    executor_def=in_process_executor,
    description="Decode, transcribe, add context, analyse the mood, paint, publish: one recording.",
)
