"""A recording's life: its status item, its stages, and every transition with its guard.

Each recording has one item in the status table. The stage only moves forward,

    uploaded → transcribing → analyzing → generating → complete | failed

`complete` and `failed` are final, and each attempt (1, then 2 after a retry, …) is
processed by one run at most: its *owner*. A run launched for a recording first tries to
become the owner of the attempt it was launched for (`own`); every later write of that
run names it as the owner, so a second run of the same attempt (a duplicate delivery, a
stale request, a second ingest replica) finds the owner set, stands down and writes
nothing. The owner is the run's root run id, which Dagster's retries of a run share. An
owner whose run has ended without ending the recording (a subset run from the UI; a run
that crashed before its failure was recorded) is superseded by the next run that asks.

A retryable failure is first retried automatically (`auto_retry`, at most a few times,
the caller queueing the new attempt after a backoff): the recording goes straight from
its stage to a new `uploaded` attempt, never shown failed while a retry can still help.
Only when the retries are spent is it `failed`, and then a person may `retry` it.

Every stage a transition enters is timestamped once per attempt (`entered_<stage>`), so
a complete item holds how long each stage took: what the estimates are measured from.

Every change is a `Transition`: a guard that must hold on the item as it is, and the
changes made when it does. The same value is applied here to a plain dict (`apply`:
tests, and anything that reasons about the rules) and executed by the status table as
one conditional DynamoDB update (`resources/status_table.py` compiles guard and
changes into expressions). Nothing here talks to a server.

| transition | guard | changes |
|---|---|---|
| register  | no item yet | a new `uploaded` item, attempt 1 |
| own       | that attempt, not final, no owner (or this run already) | owner = run |
| advance   | that attempt, owned by the run, the stage not behind | stage, progress, ETA, what the app shows |
| complete  | that attempt, owned by the run, not final | complete |
| fail      | not final; that attempt and owned by the run (or unowned) when said | failed with a code |
| retry     | failed and retryable | uploaded again, attempt + 1, no owner |
| auto_retry | as fail; retries left | uploaded again, attempt + 1, no owner, retry counted |
| requeue   | that attempt, not final, no owner (or one whose run ended) | released, counted (queued again) |
| supersede | that attempt, not final, owned by a run that ended without ending it | owner = the new run |
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from . import lifetimes
from .keys import parse_upload_key

UPLOADED = "uploaded"
TRANSCRIBING = "transcribing"
ANALYZING = "analyzing"
GENERATING = "generating"
COMPLETE = "complete"
FAILED = "failed"

STAGES = (UPLOADED, TRANSCRIBING, ANALYZING, GENERATING, COMPLETE, FAILED)
FINAL = (COMPLETE, FAILED)
RANK = {UPLOADED: 0, TRANSCRIBING: 1, ANALYZING: 2, GENERATING: 3, COMPLETE: 4, FAILED: 4}
FINAL_RANK = RANK[COMPLETE]
PROGRESS = {UPLOADED: 5, TRANSCRIBING: 20, ANALYZING: 60, GENERATING: 80, COMPLETE: 100, FAILED: 100}
# How often an attempt nobody works on is queued again before it is failed `stalled`.
MAX_REQUEUES = 3
# Typical seconds each stage takes on the local stack: the estimate before any stage was
# measured (the tracker estimates from measured stages, `resources/stage_timings.py`).
TYPICAL_SECONDS = {TRANSCRIBING: 3.0, ANALYZING: 0.5, GENERATING: 1.0}
# When each stage was entered in this attempt (ISO, UTC).
ENTERED = {stage: f"entered_{stage}" for stage in STAGES}
# Failures retrying cannot help automatically: a person canceled the run, the queue the
# retry would go through failed, or the platform already queued the attempt again
# `MAX_REQUEUES` times (or took its run for dead).
NOT_AUTO_RETRIED = ("run_canceled", "retry_not_queued", "stalled")
# What the app was shown of an attempt: a new attempt starts without them.
SHOWN = ("transcript", "mood", "context", "style")

# The status item's attributes. The key is `recording_id`; `expires_at` is the table's TTL.
ATTRIBUTES = {
    "recording_id": "the recording (the table's key, a Dagster partition key)",
    "upload_key": "uploads/<user>/<recording_id>.<ext>: the upload that owns the id",
    "user_id": "the upload key's user: with created_at, the key of the user's feed (USER_INDEX)",
    "stage": "one of STAGES", "stage_rank": "RANK[stage]: what the guards compare",
    "progress": "0–100, for the app", "eta_seconds": "estimated seconds left",
    "error": "{code, message, retryable} once failed, else null",
    "attempt": "1, then +1 per retry", "owner": "the root run id processing this attempt",
    "requeues": "how often the stranded sensor queued this attempt again",
    "transcript": "{text, language, source} once transcribed (the live view)",
    "mood": "what the app shows of the mood once analysed",
    "context": "place cell, local time, time of day, season, weather, chosen style (the live view)",
    "style": "the style the image is painted in, once painting starts",
    "language": "the user's language (the upload's, else the one identified)",
    "message": "what the stage means for the user, in their language",
    "auto_retries": "automatic retries spent", "last_error": "the failure an automatic retry answered",
    "retry_at": "when the automatic retry is queued to start (ISO, UTC)",
    **{name: f"when {stage} was entered in this attempt" for stage, name in ENTERED.items()},
    "created_at": "registered (ISO, UTC)", "updated_at": "last change (ISO, UTC)",
    lifetimes.TTL_ATTRIBUTE: "epoch seconds after which DynamoDB deletes the item",
}
# The status table's index of a user's recordings by registration time, newest first
# with ScanIndexForward=False: the live view's feed.
USER_INDEX = "user_id-created_at-index"


def seconds_left(stage: str) -> float:
    """Estimated seconds until complete, from the stages still ahead."""
    if stage in FINAL:
        return 0.0
    ahead = STAGES[STAGES.index(stage):4]
    return round(sum(TYPICAL_SECONDS.get(s, 0.0) for s in ahead) + 1.0, 1)


def auto_retryable(error: dict) -> bool:
    """Whether a failure may be retried without anyone asking."""
    return error.get("retryable") is True and error.get("code") not in NOT_AUTO_RETRIED


def is_final(item: dict | None) -> bool:
    return item is not None and item.get("stage") in FINAL


def may_requeue(item: dict | None) -> bool:
    """Whether an attempt may be queued again: not final, nobody owns it, and it has not
    been queued again `MAX_REQUEUES` times already."""
    return (item is not None and not is_final(item) and not item.get("owner")
            and int(item.get("requeues", 0)) < MAX_REQUEUES)


def timestamp(now: dt.datetime) -> str:
    """The items' time format (sorts as text: the stranded sensor compares it so)."""
    return now.astimezone(dt.UTC).isoformat(timespec="milliseconds")


# --- guards: a tiny condition language, evaluated here and compiled for DynamoDB ---

@dataclass(frozen=True)
class Cond:
    def holds(self, item: dict | None) -> bool:
        raise NotImplementedError

    def __and__(self, other: Cond) -> Cond:
        return All((self, other))

    def __or__(self, other: Cond) -> Cond:
        return Either((self, other))


def value_at(item: dict | None, path: str) -> Any:
    """`item["a"]["b"]` for path "a.b"; `Missing` where a step is absent or not a map."""
    value: Any = item
    for name in path.split("."):
        if not isinstance(value, dict) or name not in value:
            return MISSING
        value = value[name]
    return value


class _Missing:
    def __repr__(self) -> str:
        return "MISSING"


MISSING = _Missing()


@dataclass(frozen=True)
class Exists(Cond):
    path: str

    def holds(self, item: dict | None) -> bool:
        return value_at(item, self.path) is not MISSING


@dataclass(frozen=True)
class Absent(Cond):
    path: str

    def holds(self, item: dict | None) -> bool:
        return value_at(item, self.path) is MISSING


@dataclass(frozen=True)
class Eq(Cond):
    path: str
    value: Any

    def holds(self, item: dict | None) -> bool:
        found = value_at(item, self.path)
        return found is not MISSING and type(found) is type(self.value) and found == self.value


@dataclass(frozen=True)
class Below(Cond):
    """The number at `path` is below `value` (false where it is absent, as in DynamoDB)."""

    path: str
    value: int

    def holds(self, item: dict | None) -> bool:
        found = value_at(item, self.path)
        return isinstance(found, int) and not isinstance(found, bool) and found < self.value


@dataclass(frozen=True)
class All(Cond):
    parts: tuple[Cond, ...]

    def holds(self, item: dict | None) -> bool:
        return all(p.holds(item) for p in self.parts)


@dataclass(frozen=True)
class Either(Cond):
    parts: tuple[Cond, ...]

    def holds(self, item: dict | None) -> bool:
        return any(p.holds(item) for p in self.parts)


# --- changes ---

@dataclass(frozen=True)
class Set:
    name: str
    value: Any


@dataclass(frozen=True)
class Remove:
    name: str


@dataclass(frozen=True)
class Add:
    """`name` += `amount`, counting from 0 where it is absent."""

    name: str
    amount: int


@dataclass(frozen=True)
class SetIfAbsent:
    """`name` = `value` unless it is already set (DynamoDB's `if_not_exists`)."""

    name: str
    value: Any


Change = Set | Remove | Add | SetIfAbsent


@dataclass(frozen=True)
class Transition:
    name: str
    guard: Cond
    changes: tuple[Change, ...]
    recording_id: str = ""
    attributes: dict = field(default_factory=dict)  # what a refusal is explained with

    def allowed(self, item: dict | None) -> bool:
        return self.guard.holds(item)


class Refused(Exception):
    """A transition whose guard did not hold on the item."""


def apply(item: dict | None, transition: Transition) -> dict:
    """The item after `transition`; `Refused` if its guard does not hold."""
    if not transition.allowed(item):
        raise Refused(f"{transition.name} refused for {transition.recording_id}")
    after = dict(item or {"recording_id": transition.recording_id})
    for change in transition.changes:
        if isinstance(change, Set):
            after[change.name] = change.value
        elif isinstance(change, Remove):
            after.pop(change.name, None)
        elif isinstance(change, SetIfAbsent):
            after.setdefault(change.name, change.value)
        else:
            after[change.name] = int(after.get(change.name, 0)) + change.amount
    return after


# --- the transitions ---

NOT_FINAL = Below("stage_rank", FINAL_RANK)


def _of(attempt: int) -> Cond:
    return Eq("attempt", attempt)


def _owned_by(owner: str) -> Cond:
    return Eq("owner", owner)


def _stage(stage: str, now: dt.datetime, new_attempt: bool = False) -> tuple[Change, ...]:
    """Enter `stage` (again: its entry time is kept); in a `new_attempt`, afresh."""
    entered: tuple[Change, ...] = (SetIfAbsent(ENTERED[stage], timestamp(now)),)
    if new_attempt:
        entered = (Set(ENTERED[stage], timestamp(now)), *(Remove(n) for s, n in ENTERED.items() if s != stage))
    return (Set("stage", stage), Set("stage_rank", RANK[stage]), Set("progress", PROGRESS[stage]),
            Set("eta_seconds", seconds_left(stage)), Set("updated_at", timestamp(now)), *entered)


def with_view(transition: Transition, eta_seconds: float, message: str) -> Transition:
    """`transition` telling the user `message` and `eta_seconds` (measured estimates
    instead of the typical ones); for transitions that enter a stage."""
    changes = tuple(Set("eta_seconds", eta_seconds) if isinstance(c, Set) and c.name == "eta_seconds" else c
                    for c in transition.changes)
    return Transition(transition.name, transition.guard, (*changes, Set("message", message)),
                      transition.recording_id, transition.attributes)


def register(recording_id: str, upload_key: str, now: dt.datetime) -> Transition:
    """A new upload: the first registered with an id owns it (another upload naming the
    same id is refused by the ingest, `recording_id_taken`)."""
    parsed = parse_upload_key(upload_key)
    owner = (Set("user_id", parsed.user_id),) if parsed else ()
    return Transition("register", Absent("recording_id"), (
        *_stage(UPLOADED, now), Set("error", None), Set("upload_key", upload_key), *owner, Set("attempt", 1),
        Set("created_at", timestamp(now)),
        Set(lifetimes.TTL_ATTRIBUTE, lifetimes.expires_at(now, lifetimes.STATUS_DAYS))), recording_id)


def own(recording_id: str, attempt: int, owner: str, now: dt.datetime) -> Transition:
    """Run `owner` starts on `attempt`: it becomes its owner unless another run is. Asking
    again as the owner is allowed (a Dagster retry of the run shares its root run id)."""
    return Transition("own", _of(attempt) & NOT_FINAL & (Absent("owner") | _owned_by(owner)),
                      (Set("owner", owner), Set("updated_at", timestamp(now))), recording_id)


def advance(recording_id: str, stage: str, attempt: int, owner: str, now: dt.datetime,
            shown: dict | None = None) -> Transition:
    """The owner moves the recording to `stage` (never backwards), with what the app may
    show now (`shown`: the words, the mood)."""
    if stage in FINAL or stage not in RANK:
        raise ValueError(f"advance is for the stages before the end, not {stage!r}")
    not_behind = Below("stage_rank", RANK[stage]) | Eq("stage", stage)
    extra = tuple(Set(k, v) for k, v in (shown or {}).items())
    return Transition("advance", _of(attempt) & _owned_by(owner) & not_behind,
                      (*_stage(stage, now), *extra), recording_id)


def complete(recording_id: str, attempt: int, owner: str, now: dt.datetime) -> Transition:
    return Transition("complete", _of(attempt) & _owned_by(owner) & NOT_FINAL,
                      (*_stage(COMPLETE, now), Set("error", None)), recording_id)


def fail(recording_id: str, error: dict, now: dt.datetime, attempt: int | None = None,
         owner: str | None = None) -> Transition:
    """Failed with `{code, message, retryable}`, once.

    With `attempt`, only that attempt: a run of an old attempt that dies late must not
    fail the retry that followed it. With `owner`, only while that run owns the attempt
    or nobody does (it died before owning it): a run that stood down fails nothing."""
    guard: Cond = NOT_FINAL
    if attempt is not None:
        guard = guard & _of(attempt)
    if owner is not None:
        guard = guard & (_owned_by(owner) | Absent("owner"))
    return Transition("fail", guard, (*_stage(FAILED, now), Set("error", error)), recording_id)


def retry(recording_id: str, now: dt.datetime) -> Transition:
    """A failed, retryable recording starts a new attempt: the one way back to `uploaded`."""
    guard = Eq("stage", FAILED) & Eq("error.retryable", True)
    return Transition("retry", guard, (
        *_stage(UPLOADED, now, new_attempt=True), Set("error", None), Add("attempt", 1),
        Remove("owner"), Remove("requeues"), *(Remove(n) for n in SHOWN)), recording_id)


def auto_retry(recording_id: str, error: dict, now: dt.datetime, attempt: int, owner: str | None,
               spent: int, limit: int, retry_at: dt.datetime) -> Transition:
    """A retryable failure of `attempt` answered by a new attempt at once, queued by the
    caller to start at `retry_at`; retry number `spent` + 1 of at most `limit`.

    Its guard is `fail`'s (that attempt, not final, this run's or nobody's) and that
    `spent` retries were spent, no more: two runs answering one failure retry it once,
    and a recording is retried automatically at most `limit` times in its life (a
    person's `retry` does not give it more)."""
    if not auto_retryable(error) or not 0 <= spent < limit:
        raise ValueError("auto_retry is for a retryable failure with retries left")
    counted = Eq("auto_retries", spent) if spent else (Absent("auto_retries") | Eq("auto_retries", 0))
    guard = NOT_FINAL & _of(attempt) & counted
    if owner is not None:
        guard = guard & (_owned_by(owner) | Absent("owner"))
    last = {**error, "attempt": attempt, **({"owner": owner} if owner else {})}
    return Transition("auto_retry", guard, (
        *_stage(UPLOADED, now, new_attempt=True), Set("error", None), Set("last_error", last),
        Add("attempt", 1), Add("auto_retries", 1), Set("retry_at", timestamp(retry_at)),
        Remove("owner"), Remove("requeues"), *(Remove(n) for n in SHOWN)), recording_id)


def requeue(recording_id: str, attempt: int, now: dt.datetime, dead_owner: str | None = None) -> Transition:
    """An attempt has not moved for long and no run of it is in flight (its launch was
    lost, or its owner's run ended without ending it, `dead_owner`): counted, released,
    and queued again by the caller."""
    free = Absent("owner") if dead_owner is None else (Absent("owner") | _owned_by(dead_owner))
    return Transition("requeue", _of(attempt) & NOT_FINAL & free,
                      (Remove("owner"), Add("requeues", 1), Set("updated_at", timestamp(now))), recording_id)


def supersede(recording_id: str, attempt: int, dead_owner: str, owner: str, now: dt.datetime) -> Transition:
    """The owner's run ended without ending the recording (a subset run from the UI, a run
    that crashed before its failure was recorded): run `owner` takes the attempt over."""
    return Transition("supersede", _of(attempt) & NOT_FINAL & _owned_by(dead_owner),
                      (Set("owner", owner), Set("updated_at", timestamp(now))), recording_id)


# --- what a run is told when it cannot own ---

OWNED = "owned"
STAND_DOWN = "stand down"


def why_not_owned(item: dict | None, attempt: int, owner: str) -> str:
    """Why `own` was refused, for the run's observation (never the user's words)."""
    if item is None:
        return "the recording is not registered"
    if int(item.get("attempt", 1)) != attempt:
        return f"the recording is on attempt {item.get('attempt')}, not {attempt}"
    if is_final(item):
        code = (item.get("error") or {}).get("code")
        return f"the recording is {item.get('stage')}" + (f" ({code})" if code else "")
    other = item.get("owner")
    if other and other != owner:
        return f"run {str(other)[:8]} owns attempt {attempt}"
    return "the status changed meanwhile"


@dataclass(frozen=True)
class Attempt:
    """What a run knows of one recording it processes: the attempt it owns and as which
    run, the upload, and how the run came to be."""

    recording_id: str
    number: int
    owner: str  # the run's root run id: every status write of the run names it
    upload_key: str
    # Launched by the ingest for this attempt: it may adopt the streamed transcript the
    # upload promised (runs started by hand and backfills transcribe with the batch job).
    ingested: bool = False
    # A person re-running a complete recording: outputs are written again and the record
    # follows, the status (final) is left as it is.
    rematerialize: bool = False
