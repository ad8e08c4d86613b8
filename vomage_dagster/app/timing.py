"""The live view's outermost ASGI layer: how long each API request took, by route.

The time goes to `ApiMetrics` under the route's template (Starlette's router leaves the
matched route in the scope), never its path, so no id reaches a metric. The health check
is left out (the load balancer's probes are not users), and so are WebSockets, which last
as long as the user watches.
"""

from __future__ import annotations

import time
from typing import Any

from vomage_dagster.app.metrics import ApiMetrics

UNTIMED = ("/health",)


class Timed:
    def __init__(self, app: Any, metrics: ApiMetrics):
        self.app, self.metrics = app, metrics

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope.get("path") in UNTIMED:
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        try:
            await self.app(scope, receive, send)
        finally:
            template = getattr(scope.get("route"), "path", None) or "other"
            self.metrics.record(f"{scope.get('method', 'GET')} {template}", (time.perf_counter() - started) * 1000)
