"""Which listed uploads are new since the last look: the S3 sensor's cursor, without Dagster.

S3 lists in key order, not time order, and an object can appear in a listing a little
after its LastModified time (a slow upload). So the cursor keeps the newest time seen
and every key seen within a look-back window before it; anything newer than the window
start that was not seen yet is new.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field

LOOKBACK = dt.timedelta(seconds=120)


@dataclass
class UploadCursor:
    newest: dt.datetime | None = None
    recent: dict[str, str] = field(default_factory=dict)  # key → LastModified (ISO)

    @classmethod
    def from_json(cls, raw: str | None) -> UploadCursor:
        if not raw:
            return cls()
        d = json.loads(raw)
        newest = dt.datetime.fromisoformat(d["newest"]) if d.get("newest") else None
        return cls(newest, dict(d.get("recent", {})))

    def to_json(self) -> str:
        return json.dumps({"newest": self.newest.isoformat() if self.newest else None,
                           "recent": self.recent}, sort_keys=True)

    def is_new(self, key: str, last_modified: dt.datetime) -> bool:
        if self.newest is None:
            return True
        return last_modified > self.newest - LOOKBACK and key not in self.recent

    def advance(self, taken: list[tuple[str, dt.datetime]]) -> UploadCursor:
        """The cursor after `taken` were handed on; prunes keys older than the window."""
        recent = dict(self.recent)
        newest = self.newest
        for key, lm in taken:
            recent[key] = lm.isoformat()
            newest = lm if newest is None or lm > newest else newest
        if newest is not None:
            floor = newest - LOOKBACK
            recent = {k: v for k, v in recent.items() if dt.datetime.fromisoformat(v) > floor}
        return UploadCursor(newest, recent)


def select_new(
    listed: list[tuple[str, dt.datetime]], cursor: UploadCursor, limit: int
) -> tuple[list[tuple[str, dt.datetime]], UploadCursor]:
    """The oldest `limit` new uploads, and the cursor to store once they are requested."""
    new = sorted((item for item in listed if cursor.is_new(*item)), key=lambda kv: (kv[1], kv[0]))
    taken = new[:limit]
    return taken, cursor.advance(taken)
