"""moto's server, its dispatch made cheap: the local stack serves every AWS call of the
platform through one moto process, so what moto pays per request is paid ~30 times a
recording.

moto 5.2.5 finds the service a request is for by listing its own package directory (an
`isdir` for each of ~150 entries) and then matching the host against ~180 URL patterns, on
every request, under a lock that serialises all requests. Neither the list nor the
patterns change while the server runs: the list is read once, and the service of each
host remembered (a request to the server's own address names no service and is told
apart by its signature, as before).
"""

from __future__ import annotations

from typing import Any

_applied = False


def apply() -> None:
    """Install (once; before moto serves a request)."""
    global _applied
    if _applied:
        return
    from moto import backends
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication

    modules = frozenset(backends.list_of_moto_modules())
    backends.list_of_moto_modules = lambda: modules
    find = DomainDispatcherApplication.get_backend_for_host
    known: dict[str | None, Any] = {}

    def get_backend_for_host(self: Any, host: str | None) -> Any:
        if host not in known:  # called under the dispatcher's lock
            known[host] = find(self, host)
        return known[host]

    DomainDispatcherApplication.get_backend_for_host = get_backend_for_host
    _applied = True
