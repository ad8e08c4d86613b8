"""Keep the `recordings` partition count bounded.

A recording's partition is removed once it is older than the retention period and its
day is in the daily table (or it failed: failures never reach a table, their status
item keeps the reason).
"""

from __future__ import annotations

import datetime as dt

from vomage_dagster.resources.records import RecordsTable
from vomage_dagster.resources.status_table import StatusTable
from vomage_dagster.resources.store import ObjectStore


def prunable(keys: list[str], status: StatusTable, records: RecordsTable, store: ObjectStore,
             keep_days: float, now: dt.datetime | None = None) -> list[str]:
    from vomage_dagster.assets.daily import table_key

    cutoff = (now or dt.datetime.now(dt.UTC)) - dt.timedelta(days=keep_days)
    items = status.get_many(keys)
    out, tabled = [], {}
    for key in keys:
        item = items.get(key)
        if item is None or item["stage"] not in ("complete", "failed"):
            continue
        if dt.datetime.fromisoformat(item["created_at"]) >= cutoff:
            continue
        if item["stage"] == "complete":
            record = records.get(key)
            if record is None:
                continue
            day = record["day"]
            if day not in tabled:
                tabled[day] = store.exists(table_key(day))
            if not tabled[day]:
                continue
        out.append(key)
    return out
