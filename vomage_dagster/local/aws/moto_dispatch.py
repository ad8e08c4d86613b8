"""moto's server, its dispatch made cheap: the local stack serves every AWS call of the
platform through one moto process, so what moto pays per request is paid ~30 times a
recording.

moto 5.2.5 finds the service a request is for by listing its own package directory (an
`isdir` for each of ~150 entries) on every request, under a lock that serialises all
requests. The list cannot change while the server runs: it is read once.
"""

from __future__ import annotations

_applied = False


def apply() -> None:
    """Install (once; before moto serves a request)."""
    global _applied
    if _applied:
        return
    from moto import backends

    modules = frozenset(backends.list_of_moto_modules())
    backends.list_of_moto_modules = lambda: modules
    _applied = True
