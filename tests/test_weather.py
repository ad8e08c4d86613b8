"""Real weather: Open-Meteo's API as the platform asks it and checks its answers (pure),
the provider's stand-in on the local stack, a provider that times out, fails or answers
nonsense giving `unknown` with the reason (never an invented value, never a failed
recording), and one request per place cell and half hour."""

from __future__ import annotations

import datetime as dt
import json
import time

import pytest
import requests
from dagster import DagsterInstance, materialize

from vomage_dagster.assets.partitions import recordings
from vomage_dagster.assets.recording import ASSETS
from vomage_dagster.domain import weather as open_meteo
from vomage_dagster.domain.context import WEATHER_KINDS, time_bucket, weather_from_dict
from vomage_dagster.domain.run_tags import recording_tag
from vomage_dagster.local.client.uploads import upload_file
from vomage_dagster.local.models import weather_standin
from vomage_dagster.resources.weather import WeatherSource
from vomage_dagster.settings import load_settings

NOW = dt.datetime(2026, 12, 6, 12, 7, tzinfo=dt.UTC)


def _answer(**changes) -> bytes:
    status, body, _ = weather_standin.forecast(
        "latitude=48.9&longitude=2.3&current=temperature_2m,weather_code&timezone=GMT", now=NOW)
    assert status == 200
    body = {**body, **changes}
    return json.dumps(body).encode()


def test_a_recent_recording_asks_the_current_conditions_an_older_one_its_hour():
    current = open_meteo.request_params(48.86, 2.35, NOW - dt.timedelta(minutes=5), NOW)
    assert current == {"latitude": "48.9", "longitude": "2.4", "timezone": "GMT",
                       "current": "temperature_2m,weather_code"}  # the cell, never the user's own point
    older = open_meteo.request_params(48.86, 2.35, NOW - dt.timedelta(hours=5), NOW)
    assert older["hourly"] == "temperature_2m,weather_code" and older["start_hour"] == older["end_hour"] == \
        "2026-12-06T07:00"
    with pytest.raises(open_meteo.Unanswered, match="92 days"):
        open_meteo.request_params(48.86, 2.35, NOW - dt.timedelta(days=100), NOW)


def test_an_answer_is_believed_only_in_the_shape_asked_for():
    found = open_meteo.parse(_answer(), 48.9, 2.3, NOW, NOW)
    assert found.known and found.condition in WEATHER_KINDS and found.source == "open-meteo"
    assert found.observed_at.startswith("2026-12-06T12:00")
    for body, reason in [
        (b"<html>busy</html>", "not JSON"),
        (b"[1, 2]", "not a JSON object"),
        (json.dumps({"error": True, "reason": "bad"}).encode(), "refused"),
        (_answer(latitude=-30.0), "another place"),
        (_answer(current={"time": "2026-12-06T12:00", "temperature_2m": 9e9, "weather_code": 3}), "temperature"),
        (_answer(current={"time": "2026-12-06T12:00", "temperature_2m": 4.0, "weather_code": "sunny"}),
         "WMO"),
        (_answer(current={"time": "2026-11-01T12:00", "temperature_2m": 4.0, "weather_code": 3}), "not near"),
        (_answer(current=None), "no current"),
    ]:
        with pytest.raises(open_meteo.Unanswered, match=reason):
            open_meteo.parse(body, 48.9, 2.3, NOW, NOW)


def test_wmo_codes_map_to_the_platforms_kinds():
    assert {open_meteo.WMO_CONDITIONS[c] for c in (0, 3, 45, 61, 71, 95)} == \
        {"clear", "cloudy", "fog", "rain", "snow", "storm"}
    assert set(open_meteo.WMO_CONDITIONS.values()) <= set(WEATHER_KINDS)


def test_production_asks_open_meteo_and_never_invents_the_weather():
    aws = load_settings({"VOMAGE_ENV": "aws", "REDIS_URL": "redis://r:6379/0"})
    assert (aws.weather_provider, aws.weather_url) == ("open-meteo", "https://api.open-meteo.com/v1/forecast")
    with pytest.raises(ValueError, match="local stacks only"):
        load_settings({"VOMAGE_ENV": "aws", "REDIS_URL": "redis://r:6379/0",
                       "VOMAGE_WEATHER_PROVIDER": "derived-offline"})
    with pytest.raises(ValueError, match="open-meteo"):
        load_settings({"VOMAGE_WEATHER_PROVIDER": "guess"})
    local = load_settings({"VOMAGE_MODEL_SERVER_URL": "http://127.0.0.1:9999/"})
    assert local.weather_url == "http://127.0.0.1:9999/v1/forecast"  # the stand-in


def _fault(settings, cell: str, mode: str | None) -> None:
    models = settings_models_url(settings)
    resp = requests.post(f"{models}/_stand-in/weather/faults", json={"cell": cell, "mode": mode}, timeout=5)
    assert resp.status_code == 200, resp.text


def settings_models_url(settings) -> str:
    return settings.weather_url.rsplit("/v1/forecast", 1)[0]


@pytest.mark.parametrize("mode, reason", [("timeout", "did not answer within"), ("500", "HTTP 500"),
                                          ("nonsense", "another place"), ("elsewhere", "another place")])
def test_a_provider_in_trouble_gives_unknown_with_the_reason_in_bounded_time(settings, mode, reason):
    source = WeatherSource(provider="open-meteo", url=settings.weather_url, timeout_s=0.5)
    cell = {"timeout": "10.1,10.1", "500": "10.2,10.2", "nonsense": "10.3,10.3", "elsewhere": "10.4,10.4"}[mode]
    lat, lon = (float(x) for x in cell.split(","))
    _fault(settings, cell, mode)
    try:
        started = time.monotonic()
        found = source.weather_at(lat, lon, dt.datetime.now(dt.UTC), "winter")
        took = time.monotonic() - started
    finally:
        _fault(settings, cell, None)
    assert not found.known and found.temperature_c is None and reason in found.reason, found
    assert took < weather_standin.FAULT_DELAY_S - 1, took  # it never waited for the slow provider
    healthy = source.weather_at(lat, lon, dt.datetime.now(dt.UTC), "winter")
    assert healthy.known and healthy.source == "open-meteo"


def _process(settings, resources, instance, lat: str, lon: str, user: str, samples) -> dict:
    rid = upload_file(settings, samples["en_joy"]["path"], user, lat=lat, lon=lon, tz="Europe/Paris")
    resources["tracker"].register(rid, f"uploads/{user}/{rid}.m4a")
    instance.add_dynamic_partitions(recordings.name, [rid])
    assert materialize(ASSETS, partition_key=rid, instance=instance, resources=resources,
                       tags={recording_tag(rid): "1"}).success
    return resources["records"].get(rid)


def _weather_requests(settings) -> int:
    return requests.get(f"{settings_models_url(settings)}/stats", timeout=5).json()["weather_requests"]


def test_a_recording_completes_with_unknown_weather_when_the_provider_fails(settings, resources, samples):
    _fault(settings, "20.1,20.1", "500")
    try:
        with DagsterInstance.ephemeral() as instance:
            record = _process(settings, resources, instance, "20.1", "20.1", "weather-down", samples)
    finally:
        _fault(settings, "20.1,20.1", None)
    weather = weather_from_dict(record["context"]["weather"])
    assert not weather.known and "HTTP 500" in weather.reason  # the record keeps why
    prompt = resources["store"].get_json(f"processed/{record['recording_id']}/mood.json")["image_prompt"]
    assert "weather" not in prompt  # nothing made up goes into the picture


def test_one_request_per_place_cell_and_half_hour(settings, resources, samples):
    with DagsterInstance.ephemeral() as instance:
        before = _weather_requests(settings)
        first = _process(settings, resources, instance, "30.11", "30.12", "weather-a", samples)
        second = _process(settings, resources, instance, "30.14", "30.09", "weather-b", samples)  # the same cell
    buckets = {time_bucket(dt.datetime.fromisoformat(r["recorded_at"])) for r in (first, second)}
    assert _weather_requests(settings) - before == len(buckets)  # 2 only across a half-hour boundary
    if len(buckets) == 1:
        assert first["context"]["weather"] == second["context"]["weather"]
    assert weather_from_dict(first["context"]["weather"]).source == "open-meteo"
