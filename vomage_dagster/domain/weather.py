"""Open-Meteo's forecast API as the platform asks it and checks its answers: no I/O.

One GET per place cell and half hour (`/v1/forecast?latitude=…&longitude=…`), no key.
A recording of the last hour asks for the current conditions (`current=`); an older one
for its hour (`hourly=` with `start_hour` = `end_hour`), as far back as the API keeps
(92 days). Only the place cell goes out (0.1°, about 11 km), never the user's own
coordinates.

An answer is believed only if it is the shape asked for: a JSON object, coordinates
near the cell, a WMO weather code the table below knows, a plausible temperature and
an observation time near the one asked for. Anything else is `Unanswered` with the
reason, and the recording's weather is `unknown`: never guessed.
"""

from __future__ import annotations

import datetime as dt
import json
import math

from vomage_dagster.domain.context import Weather

OPEN_METEO = "open-meteo"
OPEN_METEO_URL = "https://api.open-meteo.com/v1/forecast"
FIELDS = "temperature_2m,weather_code"
# Recordings younger than this get the current conditions; older ones the hour's.
CURRENT_WITHIN = dt.timedelta(hours=1)
MAX_PAST = dt.timedelta(days=92)
# How far the provider's observation time may be from the time asked for.
MAX_TIME_GAP = dt.timedelta(hours=2)
# The grid the provider snaps to is a few km; further than this is another place.
MAX_COORDINATE_GAP = 0.5
TEMPERATURE_RANGE = (-90.0, 60.0)  # the records on Earth, rounded out

# WMO weather interpretation codes (the `weather_code` variable) → the platform's kinds.
WMO_CONDITIONS: dict[int, str] = {
    0: "clear", 1: "clear", 2: "cloudy", 3: "cloudy", 45: "fog", 48: "fog",
    **dict.fromkeys((51, 53, 55, 56, 57, 61, 63, 65, 66, 67, 80, 81, 82), "rain"),
    **dict.fromkeys((71, 73, 75, 77, 85, 86), "snow"),
    **dict.fromkeys((95, 96, 99), "storm"),
}


class Unanswered(Exception):
    """The provider gave no usable weather; the message is the reason the record keeps."""


def _hour(when: dt.datetime) -> str:
    return when.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:00")


def request_params(lat: float, lon: float, when_utc: dt.datetime, now: dt.datetime) -> dict[str, str]:
    """The query for the weather at the cell (`lat`, `lon`) when the recording was made."""
    if now - when_utc > MAX_PAST:
        raise Unanswered(f"recorded over {MAX_PAST.days} days ago: the provider keeps no weather that old")
    params = {"latitude": f"{lat:.1f}", "longitude": f"{lon:.1f}", "timezone": "GMT"}
    if now - when_utc <= CURRENT_WITHIN:
        params["current"] = FIELDS
    else:
        params["hourly"] = FIELDS
        params["start_hour"] = params["end_hour"] = _hour(when_utc)
    return params


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value)


def _time(value: object) -> dt.datetime:
    if not isinstance(value, str) or len(value) > 32:
        raise Unanswered("the answer's time is missing or malformed")
    try:
        found = dt.datetime.fromisoformat(value)
    except ValueError as exc:
        raise Unanswered("the answer's time is missing or malformed") from exc
    return found.replace(tzinfo=dt.UTC) if found.tzinfo is None else found.astimezone(dt.UTC)


def _observation(time: object, temperature: object, code: object, asked: dt.datetime) -> Weather:
    when = _time(time)
    if abs(when - asked) > MAX_TIME_GAP:
        raise Unanswered(f"the answer is for {when:%Y-%m-%dT%H:%M}Z, not near {asked:%Y-%m-%dT%H:%M}Z")
    degrees = _number(temperature)
    if degrees is None or not TEMPERATURE_RANGE[0] <= degrees <= TEMPERATURE_RANGE[1]:
        raise Unanswered("the answer's temperature is missing or implausible")
    if isinstance(code, bool) or not isinstance(code, int | float) or code != int(code) \
            or int(code) not in WMO_CONDITIONS:
        raise Unanswered("the answer's weather code is not a WMO code")
    return Weather(WMO_CONDITIONS[int(code)], round(degrees, 1), OPEN_METEO,
                   observed_at=when.isoformat(timespec="minutes"))


def parse(body: bytes, lat: float, lon: float, when_utc: dt.datetime, now: dt.datetime) -> Weather:
    """The weather in an answer to `request_params(lat, lon, when_utc, now)`; `Unanswered`
    with the reason when the answer is not one."""
    try:
        doc = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise Unanswered("the answer is not JSON") from exc
    if not isinstance(doc, dict):
        raise Unanswered("the answer is not a JSON object")
    if doc.get("error"):
        raise Unanswered(f"the provider refused: {str(doc.get('reason', ''))[:120]}")
    found_lat, found_lon = _number(doc.get("latitude")), _number(doc.get("longitude"))
    if found_lat is None or found_lon is None or abs(found_lat - lat) > MAX_COORDINATE_GAP \
            or abs(found_lon - lon) > MAX_COORDINATE_GAP:
        raise Unanswered("the answer is for another place")
    if now - when_utc <= CURRENT_WITHIN:
        current = doc.get("current")
        if not isinstance(current, dict):
            raise Unanswered("the answer has no current conditions")
        return _observation(current.get("time"), current.get("temperature_2m"), current.get("weather_code"),
                            now)
    hourly = doc.get("hourly")
    if not isinstance(hourly, dict):
        raise Unanswered("the answer has no hourly conditions")
    times, temps, codes = (hourly.get(k) for k in ("time", "temperature_2m", "weather_code"))
    if not all(isinstance(v, list) and v for v in (times, temps, codes)) or not len(times) == len(temps) == len(codes):
        raise Unanswered("the answer's hourly series are missing or uneven")
    wanted = _hour(when_utc)
    if wanted not in times:
        raise Unanswered(f"the answer has no hour {wanted}")
    i = times.index(wanted)
    return _observation(times[i], temps[i], codes[i], when_utc.replace(minute=0, second=0, microsecond=0))
