"""`APIResponseTime` per route, sent by the live view to CloudWatch (`Vomage/Performance`)
in batches.

A request only counts its time here: one dict increment, never a call, so a slow or
absent CloudWatch can neither slow nor fail a request. Every `interval` the counts go out
in one PutMetricData (statistic sets as `Values`/`Counts` arrays, so p50 and p99 are
computed by CloudWatch from every request, not from averages). A batch that cannot be
sent is dropped with a warning: nothing accumulates while CloudWatch is away.

The one dimension is `Route`, the route's template with its method ("GET
/api/recordings/{recording_id}"): never a recording or user id. Times are rounded to two
significant figures, which bounds the distinct values per route (≈ 90 a decade) and so
the memory and the size of a batch.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections import Counter, defaultdict
from typing import Any

log = logging.getLogger("vomage.app.metrics")

NAMESPACE = "Vomage/Performance"
METRIC = "APIResponseTime"
MAX_VALUES = 150  # PutMetricData's limit of distinct values in one datum
MAX_DATA = 1000  # … and of data in one request


def rounded(ms: float) -> float:
    """Two significant figures (0.1 ms at least)."""
    if ms <= 0.1:
        return 0.1
    digits = 1 - int(math.floor(math.log10(ms)))
    return round(ms, digits)


class ApiMetrics:
    def __init__(self, region: str, interval_s: float = 60.0, client: Any = None):
        self.region = region
        self.interval_s = interval_s
        self._counts: defaultdict[str, Counter] = defaultdict(Counter)
        self._client = client
        self._task: asyncio.Task | None = None
        self.sent = 0  # data points sent, and batches dropped (for /health)
        self.dropped = 0

    def record(self, route: str, ms: float) -> None:
        self._counts[route][rounded(ms)] += 1

    def data(self) -> list[dict]:
        """The counts so far as metric data (and forget them)."""
        counts, self._counts = self._counts, defaultdict(Counter)
        out = []
        for route, values in sorted(counts.items()):
            pairs = sorted(values.items())
            for i in range(0, len(pairs), MAX_VALUES):
                chunk = pairs[i:i + MAX_VALUES]
                out.append({"MetricName": METRIC, "Dimensions": [{"Name": "Route", "Value": route}],
                            "Values": [v for v, _ in chunk], "Counts": [float(c) for _, c in chunk],
                            "Unit": "Milliseconds"})
        return out

    def _cloudwatch(self) -> Any:
        if self._client is None:
            import boto3
            from botocore.config import Config

            self._client = boto3.session.Session().client(
                "cloudwatch", region_name=self.region,
                config=Config(connect_timeout=2, read_timeout=5, retries={"max_attempts": 2, "mode": "standard"}))
        return self._client

    def send(self) -> int:
        """Send what was counted (blocking); data sent."""
        return self._put(self.data())

    def _put(self, data: list[dict]) -> int:
        """PutMetricData (blocking: off the event loop). The counts were taken on the loop,
        so no request changes them while they are sent."""
        try:
            for i in range(0, len(data), MAX_DATA):
                self._cloudwatch().put_metric_data(Namespace=NAMESPACE, MetricData=data[i:i + MAX_DATA])
        except Exception as exc:  # noqa: BLE001 - CloudWatch away: the batch is dropped, requests carry on
            self.dropped += 1
            log.warning("API response times not sent to CloudWatch (%s: %s); batch dropped",
                        type(exc).__name__, str(exc)[:200])
            return 0
        self.sent += sum(int(sum(d["Counts"])) for d in data)
        return len(data)

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.interval_s)
            data = self.data()
            if data:
                await asyncio.to_thread(self._put, data)

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._loop())

    async def stop(self) -> None:
        """Stop the loop and send what is left."""
        if self._task is not None:
            self._task.cancel()
            self._task = None
        data = self.data()
        if data:
            await asyncio.to_thread(self._put, data)
