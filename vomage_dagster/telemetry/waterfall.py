"""A trace as a person reads it: each span's start offset, duration, status and parent,
indented under its parent, oldest first. `vomage trace` prints it; the run puts the part
it made on the `published_record` partition in Dagster."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Row:
    name: str
    span_id: str
    parent_id: str | None
    start_ns: int
    end_ns: int
    status: str = "UNSET"  # OK, ERROR, UNSET
    service: str = ""
    attributes: dict[str, Any] = field(default_factory=dict)

    @property
    def seconds(self) -> float:
        return (self.end_ns - self.start_ns) / 1e9

    def as_dict(self) -> dict:
        return {"name": self.name, "span_id": self.span_id, "parent_id": self.parent_id,
                "start_ns": self.start_ns, "end_ns": self.end_ns, "seconds": round(self.seconds, 4),
                "status": self.status, "service": self.service, "attributes": self.attributes}


def from_readable(spans: Iterable[Any]) -> list[Row]:
    """Rows of OpenTelemetry SDK spans (ReadableSpan)."""
    return [Row(s.name, f"{s.context.span_id:016x}", f"{s.parent.span_id:016x}" if s.parent else None,
                s.start_time, s.end_time or s.start_time, s.status.status_code.name,
                s.resource.attributes.get("service.name", "") if s.resource else "", dict(s.attributes or {}))
            for s in spans]


def ordered(rows: list[Row]) -> list[tuple[int, Row]]:
    """Depth-first from the roots (a span whose parent is not here is a root), children
    by start: (depth, row)."""
    ids = {r.span_id for r in rows}
    children: dict[str | None, list[Row]] = {}
    for r in rows:
        children.setdefault(r.parent_id if r.parent_id in ids else None, []).append(r)
    out: list[tuple[int, Row]] = []

    def walk(parent: str | None, depth: int) -> None:
        for r in sorted(children.get(parent, []), key=lambda x: (x.start_ns, x.name)):
            out.append((depth, r))
            walk(r.span_id, depth + 1)

    walk(None, 0)
    return out


def table(rows: list[Row], markdown: bool = False) -> str:
    if not rows:
        return "no spans"
    t0 = min(r.start_ns for r in rows)
    lines = []
    if markdown:
        lines += ["| offset s | duration s | status | span | service |", "|---:|---:|---|---|---|"]
    else:
        lines.append(f"{'offset s':>9} {'duration s':>10}  {'status':<6} {'span':<44} service")
    for depth, r in ordered(rows):
        name = ("  " * depth + ("└ " if depth else "") + r.name)
        code = r.attributes.get("vomage.error_code")
        status = r.status + (f" {code}" if code else "")
        if markdown:
            lines.append(f"| {(r.start_ns - t0) / 1e9:.3f} | {r.seconds:.3f} | {status} | "
                         f"{'&nbsp;' * 2 * depth}{r.name} | {r.service} |")
        else:
            lines.append(f"{(r.start_ns - t0) / 1e9:9.3f} {r.seconds:10.3f}  {status:<6} {name:<44} {r.service}")
    return "\n".join(lines)
