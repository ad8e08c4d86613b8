"""What the user reads with each status change: the sentence in their language and the
estimate from the stages measured recently (`stage_timings`), added to every transition
that enters a stage just before the tracker writes it.

The language is the one the status item keeps (`language`: the upload's, else the one
identified from the audio). A transition is written without reading the item first, so
the language comes from what this process last saw of the recording, else from the
status the live view reads in Redis, else English.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

from vomage_dagster.domain import lifecycle as life
from vomage_dagster.domain.status_messages import DEFAULT_LANGUAGE, language_of, stage_message
from vomage_dagster.resources.cache import Cache
from vomage_dagster.resources.stage_timings import StageTimings

REMEMBERED = 10_000
_languages: OrderedDict[str, str] = OrderedDict()
_lock = threading.Lock()


def remember(recording_id: str, language: object) -> None:
    if not language:
        return
    with _lock:
        _languages[recording_id] = language_of(language)
        _languages.move_to_end(recording_id)
        while len(_languages) > REMEMBERED:
            _languages.popitem(last=False)


def language_for(cache: Cache, recording_id: str, hint: object = None) -> str:
    """The recording's message language: `hint`, what this process saw, the live status."""
    if hint:
        return language_of(hint)
    with _lock:
        found = _languages.get(recording_id)
    if found:
        return found
    status = cache.get_json("status", recording_id)
    language = status.get("language") if isinstance(status, dict) else None
    remember(recording_id, language)
    return language_of(language) if language else DEFAULT_LANGUAGE


def _entered(transition: life.Transition) -> tuple[str | None, dict | None]:
    """The stage a transition enters, and the error it sets (None for a transition that
    enters no stage)."""
    stage = error = None
    for change in transition.changes:
        if isinstance(change, life.Set) and change.name == "stage":
            stage = change.value
        elif isinstance(change, life.Set) and change.name == "error":
            error = change.value
    return stage, error


def viewed(transition: life.Transition, cache: Cache, language: object = None,
           view: tuple[float, str] | None = None) -> life.Transition:
    """`transition` with its message and measured estimate (`view`: given ones instead)."""
    stage, error = _entered(transition)
    if stage is None:
        return transition
    if view is not None:
        return life.with_view(transition, *view)
    lang = language_for(cache, transition.recording_id, language)
    return life.with_view(transition, StageTimings(cache).seconds_left(stage),
                          stage_message(stage, lang, error))


def seen(cache: Cache, item: dict) -> None:
    """What the platform learns from an item just written: its language, and, once
    complete, how long its stages took."""
    remember(item["recording_id"], item.get("language"))
    if item.get("stage") == life.COMPLETE:
        StageTimings(cache).record(item)
