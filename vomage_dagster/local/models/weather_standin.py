"""A stand-in for Open-Meteo's forecast API (`GET /v1/forecast`), served by the model server.

Same query and answer shapes as the real service for what the platform asks (`current=`
or `hourly=` with `start_hour`/`end_hour`, `temperature_2m` and `weather_code`, in GMT),
and the same refusals (`{"error": true, "reason": …}` with HTTP 400) for a query it
would refuse. The conditions are deterministic per grid cell and hour, plausible for the
season and the hemisphere: the stand-in stands for a provider, it observes nothing.

For the fault tests, a cell can be told to misbehave (`POST /_stand-in/weather/faults`
`{"cell": "lat,lon", "mode": …}`; mode null clears): `timeout` (answers after
`FAULT_DELAY_S`), `500`, `nonsense` (a 200 with a body that is not weather), or
`elsewhere` (weather for another place).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import threading
from urllib.parse import parse_qs

FIELDS = {"temperature_2m", "weather_code"}
FAULT_MODES = ("timeout", "500", "nonsense", "elsewhere")
FAULT_DELAY_S = 6.0
# WMO codes a season's weather is drawn from (snow in winter only).
_CODES = {"winter": (0, 1, 2, 3, 45, 61, 71, 73), "spring": (0, 1, 2, 3, 61, 63, 80, 45),
          "summer": (0, 0, 1, 2, 3, 61, 80, 95), "autumn": (0, 1, 2, 3, 45, 61, 63, 80)}
_BASE_C = {"winter": 2.0, "spring": 14.0, "summer": 25.0, "autumn": 13.0}

_faults: dict[str, str] = {}
_lock = threading.Lock()


def set_fault(cell: str, mode: str | None) -> None:
    if mode is not None and mode not in FAULT_MODES:
        raise ValueError(f"mode must be one of {', '.join(FAULT_MODES)} or null")
    with _lock:
        if mode is None:
            _faults.pop(cell, None)
        else:
            _faults[cell] = mode


def fault_for(lat: float, lon: float) -> str | None:
    with _lock:
        return _faults.get(f"{lat:.1f},{lon:.1f}")


def _season(month: int, lat: float) -> str:
    north = ("winter", "winter", "spring", "spring", "spring", "summer",
             "summer", "summer", "autumn", "autumn", "autumn", "winter")[month - 1]
    if lat >= 0:
        return north
    return {"winter": "summer", "summer": "winter", "spring": "autumn", "autumn": "spring"}[north]


def conditions(lat: float, lon: float, hour: dt.datetime) -> tuple[float, int]:
    """(temperature °C, WMO code) of the cell at `hour`: the same every time it is asked."""
    digest = hashlib.sha256(f"{lat:.1f},{lon:.1f}@{hour:%Y%m%d%H}".encode()).digest()
    season = _season(hour.month, lat)
    code = _CODES[season][digest[0] % len(_CODES[season])]
    temperature = _BASE_C[season] + (digest[1] % 80) / 10 - 4 - abs(lat) / 10
    if code in (71, 73):
        temperature = min(temperature, -0.5)
    return round(temperature, 1), code


class Refused(ValueError):
    """A query Open-Meteo answers with HTTP 400 and its reason."""


def _one(query: dict[str, list[str]], name: str) -> str | None:
    values = query.get(name)
    return values[-1] if values else None


def _coordinate(query: dict[str, list[str]], name: str, limit: float) -> float:
    raw = _one(query, name)
    try:
        value = float(raw) if raw is not None else None
    except ValueError:
        value = None
    if value is None or not -limit <= value <= limit:
        raise Refused(f"Parameter '{name}' must be a number between -{limit:g} and {limit:g}")
    return value


def _fields(raw: str) -> list[str]:
    names = [n for n in raw.split(",") if n]
    unknown = [n for n in names if n not in FIELDS]
    if unknown:
        raise Refused(f"Cannot initialize WeatherVariable from invalid String value {unknown[0]}")
    return names


def _hour(raw: str | None, name: str) -> dt.datetime:
    try:
        return dt.datetime.strptime(raw or "", "%Y-%m-%dT%H:%M").replace(tzinfo=dt.UTC)
    except ValueError as exc:
        raise Refused(f"Invalid date format for '{name}'") from exc


def forecast(query_string: str, now: dt.datetime | None = None) -> tuple[int, dict | str, float]:
    """(HTTP status, JSON body or raw text, seconds to wait before answering) for a query."""
    now = now or dt.datetime.now(dt.UTC)
    query = parse_qs(query_string, keep_blank_values=True)
    try:
        lat = _coordinate(query, "latitude", 90)
        lon = _coordinate(query, "longitude", 180)
        if (_one(query, "timezone") or "GMT") not in ("GMT", "UTC"):
            raise Refused("the stand-in answers in GMT only")
        body: dict = {"latitude": round(lat, 2) + 0.02, "longitude": round(lon, 2) - 0.02,
                      "generationtime_ms": 0.05, "utc_offset_seconds": 0, "timezone": "GMT",
                      "timezone_abbreviation": "GMT", "elevation": 38.0}
        if _one(query, "current"):
            names = _fields(_one(query, "current") or "")
            minute = now.minute - now.minute % 15
            at = now.replace(minute=minute, second=0, microsecond=0)
            temperature, code = conditions(lat, lon, at)
            body["current_units"] = {"time": "iso8601", "interval": "seconds",
                                     **{n: ("°C" if n == "temperature_2m" else "wmo code") for n in names}}
            body["current"] = {"time": at.strftime("%Y-%m-%dT%H:%M"), "interval": 900,
                               **{n: (temperature if n == "temperature_2m" else code) for n in names}}
        if _one(query, "hourly"):
            names = _fields(_one(query, "hourly") or "")
            start, end = _hour(_one(query, "start_hour"), "start_hour"), _hour(_one(query, "end_hour"), "end_hour")
            if end < start or end - start > dt.timedelta(days=16) or now - start > dt.timedelta(days=93):
                raise Refused("Parameter 'start_hour' and 'end_hour' are out of the allowed range")
            hours = [start + dt.timedelta(hours=i) for i in range(int((end - start).total_seconds() // 3600) + 1)]
            values = [conditions(lat, lon, h) for h in hours]
            body["hourly_units"] = {"time": "iso8601",
                                    **{n: ("°C" if n == "temperature_2m" else "wmo code") for n in names}}
            body["hourly"] = {"time": [h.strftime("%Y-%m-%dT%H:%M") for h in hours],
                              **{n: [v[0] if n == "temperature_2m" else v[1] for v in values] for n in names}}
    except Refused as exc:
        return 400, {"error": True, "reason": str(exc)}, 0.0
    fault = fault_for(lat, lon)
    if fault == "timeout":
        return 200, body, FAULT_DELAY_S
    if fault == "500":
        return 500, "Internal Server Error", 0.0
    if fault == "nonsense":
        return 200, {"latitude": "north", "current": {"temperature_2m": 9e9, "weather_code": "sunny"}}, 0.0
    if fault == "elsewhere":
        return 200, {**body, "latitude": -lat or 45.0, "longitude": lon + 90 if lon < 90 else lon - 90}, 0.0
    return 200, body, 0.0


def fault_request(raw: bytes) -> None:
    """Apply a `POST /_stand-in/weather/faults` body."""
    doc = json.loads(raw or b"{}")
    if not isinstance(doc, dict) or not isinstance(doc.get("cell"), str):
        raise ValueError('the body must be {"cell": "lat,lon", "mode": …}')
    set_fault(doc["cell"], doc.get("mode"))
