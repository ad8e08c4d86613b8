"""Which listed uploads are new since the last look: the S3 sensor's cursor, without Dagster.

S3 lists in key order, not time order, and an object can appear in a listing a little
after its LastModified time (a slow upload). So the cursor keeps the newest time seen
and every key seen within a look-back window before it; anything newer than the window
start that was not seen yet is new.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

LOOKBACK = dt.timedelta(seconds=120)


@dataclass
class UploadCursor:
    newest: dt.datetime | None = None
    recent: dict[str, str] = field(default_factory=dict)  # key → LastModified (ISO)
    # A listing too large for one tick goes on from `position` (the last key examined) in
    # the next; `newest` only moves when a pass over the whole prefix ends, and then no
    # further than the time that pass began, so nothing uploaded during it is skipped.
    position: str | None = None
    pass_started: dt.datetime | None = None
    pass_newest: dt.datetime | None = None

    @classmethod
    def from_json(cls, raw: str | None) -> UploadCursor:
        if not raw:
            return cls()
        d = json.loads(raw)

        def when(name: str) -> dt.datetime | None:
            return dt.datetime.fromisoformat(d[name]) if d.get(name) else None

        return cls(when("newest"), dict(d.get("recent", {})), d.get("position"), when("pass_started"),
                   when("pass_newest"))

    def to_json(self) -> str:
        def iso(value: dt.datetime | None) -> str | None:
            return value.isoformat() if value else None

        return json.dumps({"newest": iso(self.newest), "recent": self.recent, "position": self.position,
                           "pass_started": iso(self.pass_started), "pass_newest": iso(self.pass_newest)},
                          sort_keys=True)

    def is_new(self, key: str, last_modified: dt.datetime) -> bool:
        if self.newest is None:
            return key not in self.recent
        return last_modified > self.newest - LOOKBACK and key not in self.recent

    def advance(self, taken: list[tuple[str, dt.datetime]], position: str | None = None,
                now: dt.datetime | None = None) -> UploadCursor:
        """The cursor after `taken` were handed on. `position`: the listing stopped after
        that key and goes on from it next tick (None: the pass over the prefix ended)."""
        now = now or dt.datetime.now(dt.UTC)
        recent = dict(self.recent)
        pass_newest = self.pass_newest
        for key, lm in taken:
            recent[key] = lm.isoformat()
            pass_newest = lm if pass_newest is None or lm > pass_newest else pass_newest
        started = self.pass_started or now
        if position is not None:
            return UploadCursor(self.newest, recent, position, started, pass_newest)
        newest = self.newest
        if pass_newest is not None:
            bound = min(pass_newest, started)
            newest = bound if newest is None or bound > newest else newest
        if newest is not None:
            floor = newest - LOOKBACK
            recent = {k: v for k, v in recent.items() if dt.datetime.fromisoformat(v) > floor}
        return UploadCursor(newest, recent)


def take_new(listing: Iterable[tuple[str, dt.datetime]], cursor: UploadCursor, limit: int,
             out_of_time: Callable[[], bool] = lambda: False) -> tuple[list[tuple[str, dt.datetime]], str | None]:
    """The new uploads of one stretch of a key-ordered listing (resumed at `cursor.position`
    by the caller), and where the next stretch starts (None: the listing ended).

    Every new key of the stretch is taken, so stopping after any key loses none.
    """
    taken: list[tuple[str, dt.datetime]] = []
    for key, last_modified in listing:
        if cursor.is_new(key, last_modified):
            taken.append((key, last_modified))
        if len(taken) >= limit or out_of_time():
            return taken, key
    return taken, None
