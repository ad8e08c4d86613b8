"""A metric a long-running process reports once a minute, whatever happens.

The ingest service reports `IngestBacklogAge` this way: the age of the oldest upload
message it received in the last minute, 0 when the queue was empty. Reported even when
idle, so its alarm can treat a missing minute as the ingest having stopped. Sending never
blocks or fails the process: a CloudWatch error is logged and the minute is dropped.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)

PERFORMANCE = "Vomage/Performance"  # the namespace of what users wait for (operations/metrics.py)


class Minutely:
    def __init__(self, namespace: str, name: str, unit: str, cloudwatch: Callable[[], Any],
                 every_s: float = 60.0, clock: Callable[[], float] = time.monotonic):
        self.namespace, self.name, self.unit = namespace, name, unit
        self.cloudwatch, self.every_s, self.clock = cloudwatch, every_s, clock
        self.highest = 0.0
        self.since = clock()

    def observe(self, value: float) -> None:
        self.highest = max(self.highest, float(value))

    def tick(self) -> bool:
        """Send the minute's highest value once a minute has passed; whether it sent."""
        if self.clock() - self.since < self.every_s:
            return False
        value, self.highest, self.since = self.highest, 0.0, self.clock()
        try:
            self.cloudwatch().put_metric_data(Namespace=self.namespace, MetricData=[{
                "MetricName": self.name, "Unit": self.unit, "Value": round(value, 3),
                "Timestamp": dt.datetime.now(dt.UTC)}])
        except Exception as exc:  # noqa: BLE001 - a metric is never worth stopping the ingest
            log.warning("%s not sent (%s)", self.name, type(exc).__name__)
            return False
        return True
