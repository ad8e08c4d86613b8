"""The weather at a place and time, from the provider the settings name.

- `open-meteo` (the default, on AWS and locally): Open-Meteo's forecast API at `url`
  (on AWS the public service, which needs no key; locally the stand-in the model
  server serves with the same request and answer shapes).
- `derived-offline` (local only, for working without any network): a deterministic
  value marked `derived-offline` in the record, so nobody mistakes it for an observation.

One request, bounded by `timeout_s` from start to last byte, never retried: a provider
that times out, fails or answers nonsense gives `unknown` weather with the reason, and
the recording carries on without it. The caller caches answers per place cell and half
hour (`context_cache`), and briefly remembers a failure so a provider that is down is not
asked again by every recording of the cell.
"""

from __future__ import annotations

import datetime as dt
import http.client
import logging
import urllib.error
import urllib.parse
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout

from dagster import ConfigurableResource

from vomage_dagster.domain import weather as open_meteo
from vomage_dagster.domain.context import DERIVED_OFFLINE, Weather, derive_weather, place_cell, unknown_weather

log = logging.getLogger(__name__)

PROVIDERS = (open_meteo.OPEN_METEO, DERIVED_OFFLINE)
MAX_ANSWER_BYTES = 64 * 1024
# Requests in flight at once per process; a provider that hangs holds at most these threads
# (each ends at its socket timeout), and later lookups time out instead of queueing forever.
_pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="weather")


def _get(url: str, timeout_s: float) -> tuple[int, bytes]:
    request = urllib.request.Request(url, headers={"Accept": "application/json",
                                                   "User-Agent": "vomage-dagster/1"})
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as resp:  # noqa: S310 (https or the stand-in)
            return resp.status, resp.read(MAX_ANSWER_BYTES + 1)
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read(MAX_ANSWER_BYTES + 1)


class WeatherSource(ConfigurableResource):
    provider: str = open_meteo.OPEN_METEO
    url: str = open_meteo.OPEN_METEO_URL
    timeout_s: float = 2.0

    def weather_at(self, lat: float, lon: float, when_utc: dt.datetime, season: str,
                   now: dt.datetime | None = None) -> Weather:
        """The weather at the cell of (`lat`, `lon`) at `when_utc`; `unknown` with the
        reason when the provider cannot tell. Never raises for the provider's sake."""
        if self.provider == DERIVED_OFFLINE:
            return derive_weather(place_cell(lat, lon) or "", when_utc, season)
        if self.provider != open_meteo.OPEN_METEO:
            raise ValueError(f"unknown weather provider {self.provider!r}: one of {', '.join(PROVIDERS)}")
        now = now or dt.datetime.now(dt.UTC)
        try:
            params = open_meteo.request_params(lat, lon, when_utc, now)
            status, body = self._fetch(f"{self.url}?{urllib.parse.urlencode(params)}")
            if status != 200:
                raise open_meteo.Unanswered(f"the provider answered HTTP {status}")
            if len(body) > MAX_ANSWER_BYTES:
                raise open_meteo.Unanswered(f"the answer is over {MAX_ANSWER_BYTES} bytes")
            return open_meteo.parse(body, round(lat, 1), round(lon, 1), when_utc, now)
        except open_meteo.Unanswered as exc:
            log.warning("weather unknown at %s: %s", place_cell(lat, lon), exc)
            return unknown_weather(open_meteo.OPEN_METEO, str(exc))

    def _fetch(self, url: str) -> tuple[int, bytes]:
        """One GET, whole answer within `timeout_s` (a slow trickle counts too)."""
        future = _pool.submit(_get, url, self.timeout_s)
        try:
            return future.result(timeout=self.timeout_s)
        except FutureTimeout as exc:
            raise open_meteo.Unanswered(f"the provider did not answer within {self.timeout_s:g} s") from exc
        except TimeoutError as exc:  # the socket's own timeout
            raise open_meteo.Unanswered(f"the provider did not answer within {self.timeout_s:g} s") from exc
        except (urllib.error.URLError, http.client.HTTPException, OSError, ValueError) as exc:
            reason = getattr(exc, "reason", exc)
            raise open_meteo.Unanswered(f"the provider could not be reached ({type(reason).__name__})") from exc
