"""Daily assets (one partition per UTC day): the Parquet table and the mood report."""

import json

from dagster import (
    AssetCheckResult,
    AssetCheckSpec,
    AssetExecutionContext,
    MaterializeResult,
    MetadataValue,
    asset,
)

from vomage_dagster.assets.partitions import days
from vomage_dagster.domain import costs, report, tables
from vomage_dagster.resources.records import RecordsTable
from vomage_dagster.resources.store import ObjectStore

GROUP = "daily"


def table_key(day: str) -> str:
    return f"tables/voice_records/date={day}/part-0.parquet"


@asset(partitions_def=days, group_name=GROUP, kinds={"parquet", "s3"},
       check_specs=[AssetCheckSpec("schema_matches", asset="voice_records_daily",
                                   description="The written file has exactly the declared schema.")],
       description="One row per published record of the day, as Parquet in S3 (explicit schema).")
def voice_records_daily(context: AssetExecutionContext, records: RecordsTable,
                        store: ObjectStore) -> MaterializeResult:
    day = context.partition_key
    rows = sorted(records.for_day(day), key=lambda r: r["recorded_at"])
    data = tables.to_parquet(rows)
    key = table_key(day)
    store.put_bytes(key, data, "application/vnd.apache.parquet")
    problems = tables.check_schema(store.get_bytes(key))
    return MaterializeResult(
        metadata={"rows": len(rows), "bytes": len(data), "path": MetadataValue.path(store.uri(key)),
                  "cost_usd": round(sum(costs.record_cost(r)["total"] for r in rows), 6),
                  "saved_usd": round(sum(costs.record_cost(r)["saved"] for r in rows), 6)},
        check_results=[AssetCheckResult(passed=not problems, check_name="schema_matches",
                                        metadata={"problems": MetadataValue.json(problems)})],
    )


@asset(partitions_def=days, group_name=GROUP, deps=[voice_records_daily], kinds={"pandas", "s3"},
       description="The day's moods: per emotion, hour and language, with a chart; the day's cost.")
def mood_daily_report(context: AssetExecutionContext, store: ObjectStore) -> MaterializeResult:
    import base64

    day = context.partition_key
    frame = tables.read_parquet(store.get_bytes(table_key(day))).to_pandas()
    agg = report.aggregates(frame)
    png = report.chart(agg, f"Moods on {day} ({agg['records']} records)")
    prefix = f"reports/mood/date={day}/"
    store.put_json(prefix + "report.json", agg)
    store.put_bytes(prefix + "chart.png", png, "image/png")
    rows = "\n".join(f"| {e} | {v['records']} | {v['mean_valence']:+.2f} | {v['mean_intensity']:.2f} |"
                     for e, v in sorted(agg["by_emotion"].items()))
    return MaterializeResult(metadata={
        "records": agg["records"],
        "chart": MetadataValue.md(f"![moods](data:image/png;base64,{base64.b64encode(png).decode()})"),
        "by_emotion": MetadataValue.md("| emotion | records | valence | intensity |\n|---|---|---|---|\n" + rows),
        "cost_usd": agg.get("cost", {}).get("total_usd", 0.0),
        "cost_per_recording_p95_usd": agg.get("cost", {}).get("per_recording_p95_usd", 0.0),
        "aggregates": MetadataValue.json(json.loads(json.dumps(agg))),
    })


ASSETS = [voice_records_daily, mood_daily_report]
