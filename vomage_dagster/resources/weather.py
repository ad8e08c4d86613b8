"""The weather at a place and time.

Only the offline source exists so far: deterministic weather derived from the place
and hour, marked `derived-offline` in every record so nobody mistakes it for a forecast.
A real provider would be another resource with the same `weather_at` method.
"""

from __future__ import annotations

import datetime as dt

from dagster import ConfigurableResource

from vomage_dagster.domain.context import Weather, derive_weather


class WeatherSource(ConfigurableResource):
    provider: str = "derived-offline"

    def weather_at(self, place: str, when_utc: dt.datetime, season: str) -> Weather:
        if self.provider != "derived-offline":
            raise ValueError(f"unknown weather provider {self.provider!r}")
        return derive_weather(place, when_utc, season)
