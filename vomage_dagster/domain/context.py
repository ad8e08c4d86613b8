"""When and where a recording was made: rules, no I/O.

Time of day, season and weekday come from the recording time in the user's time zone;
the place is a coarse grid cell of the coordinates (about 11 km), which is also what
the context cache key and the weather lookup use, so nearby users share entries.

The weather is what a provider answered (`source` names it), or `unknown` with the
reason it is not known: a value the platform made up is never presented as observed.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from vomage_dagster.domain.hashing import sha256_text

WEATHER_KINDS = ("clear", "cloudy", "rain", "snow", "fog", "storm")
UNKNOWN = "unknown"
DERIVED_OFFLINE = "derived-offline"


@dataclass(frozen=True)
class Weather:
    condition: str  # one of WEATHER_KINDS, or UNKNOWN
    temperature_c: float | None
    source: str  # the provider that answered ("open-meteo"), or DERIVED_OFFLINE when invented
    observed_at: str | None = None  # the provider's time of the observation (UTC, ISO)
    reason: str | None = None  # why the weather is unknown (the record keeps it)

    @property
    def known(self) -> bool:
        return self.condition != UNKNOWN


def unknown_weather(source: str, reason: str) -> Weather:
    """Weather nobody could tell: the recording carries on without it, saying why."""
    return Weather(UNKNOWN, None, source, None, reason[:200])


def weather_from_dict(found: dict) -> Weather:
    """A Weather from its stored form (older outputs lack the newer fields)."""
    names = ("condition", "temperature_c", "source", "observed_at", "reason")
    return Weather(**{k: found[k] for k in names if k in found})


@dataclass(frozen=True)
class RecordingContext:
    local_time: str
    time_zone: str
    time_of_day: str
    season: str
    day_type: str
    weekday: str
    place: str | None
    weather: Weather | None
    # The image style the user chose with the upload (styles.STYLES), None: the mood picks.
    style: str | None = None

    def as_dict(self) -> dict:
        return asdict(self)


def zone(name: str | None) -> ZoneInfo:
    """The user's zone, or UTC when none or an unknown one was given."""
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError, OSError):  # "America" is a folder: IsADirectoryError
        return ZoneInfo("UTC")


def time_of_day(hour: int) -> str:
    if 5 <= hour < 12:
        return "morning"
    if 12 <= hour < 17:
        return "afternoon"
    if 17 <= hour < 21:
        return "evening"
    return "night"


def season(month: int, latitude: float | None) -> str:
    northern = ("winter", "winter", "spring", "spring", "spring", "summer",
                "summer", "summer", "autumn", "autumn", "autumn", "winter")
    name = northern[month - 1]
    if latitude is not None and latitude < 0:
        name = {"winter": "summer", "summer": "winter",
                "spring": "autumn", "autumn": "spring"}[name]
    return name


def place_cell(lat: float | None, lon: float | None) -> str | None:
    if lat is None or lon is None:
        return None
    return f"{lat:.1f},{lon:.1f}"


def time_bucket(when_utc: dt.datetime) -> str:
    """The 30-minute bucket of a time: the context cache's lifetime."""
    minute = 0 if when_utc.minute < 30 else 30
    return when_utc.strftime("%Y%m%dT%H") + f"{minute:02d}"


def derive_weather(place: str, when_utc: dt.datetime, season_name: str) -> Weather:
    """Deterministic stand-in weather for the offline stack, marked as such.

    The same place and hour always give the same weather, so tests and cache keys are
    stable; snow only in winter.
    """
    h = int(sha256_text(place, when_utc.strftime("%Y%m%d%H"))[:8], 16)
    kinds = ["clear", "cloudy", "rain", "fog"] + (["snow"] if season_name == "winter" else [])
    condition = kinds[h % len(kinds)]
    base = {"winter": 2.0, "spring": 14.0, "summer": 26.0, "autumn": 13.0}[season_name]
    temperature = base + ((h >> 8) % 80) / 10 - 4
    if condition == "snow":
        temperature = min(temperature, 0.0)
    return Weather(condition, round(temperature, 1), DERIVED_OFFLINE)


def build_context(
    recorded_at_utc: dt.datetime,
    tz_name: str | None,
    lat: float | None,
    lon: float | None,
    weather: Weather | None,
    style: str | None = None,
) -> RecordingContext:
    tz = zone(tz_name)
    local = recorded_at_utc.astimezone(tz)
    return RecordingContext(
        local_time=local.isoformat(timespec="seconds"),
        time_zone=str(tz.key),
        time_of_day=time_of_day(local.hour),
        season=season(local.month, lat),
        day_type="weekend" if local.weekday() >= 5 else "weekday",
        weekday=local.strftime("%A"),
        place=place_cell(lat, lon),
        weather=weather,
        style=style,
    )
