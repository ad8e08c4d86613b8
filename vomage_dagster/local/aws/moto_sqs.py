"""moto's SQS, its per-message checks made cheap: every upload passes through the local
stack's uploads queue twice (the app's notice and S3's notification), and the ingest
receives while many of them are in flight under load (held, gathered, launching).

moto 5.2.5 asks the clock through a naive-UTC `datetime` (a timezone import, two datetime
constructions and a subtraction) for each message each time it looks at a queue, and its
retention check reads all of the queue's attributes, three times, for every message it
delivers: each attribute read counts the visible, in-flight and delayed messages again.
A receive of k messages from a queue of n costs ~10·k·n clock reads. Here the clock is
`time.time()` (the same instant: moto's server runs on the real clock) and the retention
check reads the one attribute it needs.
"""

from __future__ import annotations

import time
from typing import Any

_applied = False


def apply() -> None:
    """Install (once; before moto serves a request)."""
    global _applied
    if _applied:
        return
    from moto.sqs import models

    to_datetime_seconds, to_datetime_millis = models.unix_time, models.unix_time_millis

    def unix_time(dt: Any = None) -> float:
        return time.time() if dt is None else to_datetime_seconds(dt)

    def unix_time_millis(dt: Any = None) -> float:
        return time.time() * 1000.0 if dt is None else to_datetime_millis(dt)

    def is_message_valid_based_on_retention_period(self: Any, queue_name: str, message: Any) -> bool:
        retention_s = int(self.get_queue(queue_name).message_retention_period)
        return retention_s + message.sent_timestamp / 1000 > time.time()

    models.unix_time, models.unix_time_millis = unix_time, unix_time_millis
    models.SQSBackend.is_message_valid_based_on_retention_period = is_message_valid_based_on_retention_period
    _applied = True
