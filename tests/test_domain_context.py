"""Context rules: local time, season, weekday, place cell, offline weather."""

import datetime as dt

from vomage_dagster.domain.context import build_context, derive_weather, place_cell, season, time_bucket


def test_time_of_day_and_weekday_follow_the_users_zone():
    when = dt.datetime(2026, 11, 28, 23, 30, tzinfo=dt.UTC)  # Saturday 23:30 UTC
    tokyo = build_context(when, "Asia/Tokyo", None, None, None)
    assert (tokyo.time_of_day, tokyo.weekday, tokyo.day_type) == ("morning", "Sunday", "weekend")
    assert tokyo.local_time == "2026-11-29T08:30:00+09:00"
    la = build_context(when, "America/Los_Angeles", None, None, None)
    assert la.time_of_day == "afternoon" and la.weekday == "Saturday" and la.day_type == "weekend"


def test_unknown_zone_falls_back_to_utc():
    ctx = build_context(dt.datetime(2026, 6, 1, 12, tzinfo=dt.UTC), "Mars/Olympus", None, None, None)
    assert ctx.time_zone == "UTC" and ctx.place is None


def test_seasons_flip_south_of_the_equator():
    assert season(1, 48.0) == "winter"
    assert season(1, -33.9) == "summer"
    assert season(7, None) == "summer"


def test_weather_is_deterministic_and_marked_offline():
    when = dt.datetime(2026, 7, 1, 9, 10, tzinfo=dt.UTC)
    a = derive_weather("31.2,121.5", when, "summer")
    assert a == derive_weather("31.2,121.5", when, "summer")
    assert a.source == "derived-offline" and a.condition != "snow"
    assert place_cell(31.23, 121.47) == "31.2,121.5"
    assert time_bucket(when) == "20260701T0900"
