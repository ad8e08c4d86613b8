"""A picture of one's own: the five styles, the vetted motifs, a seed per recording and an
image cache no other user can hit. Pure domain code and the local painter; the pipeline's
side is in test_assets.py (the same words by another user paint a new picture)."""

import datetime as dt
import hashlib

import pytest

from vomage_dagster.domain import client_metadata, image_models, image_vocabulary, prompts, styles
from vomage_dagster.domain.context import Weather, build_context, unknown_weather
from vomage_dagster.domain.mood import Mood
from vomage_dagster.local.models.painter import paint

WHEN = dt.datetime(2026, 4, 12, 16, 30, tzinfo=dt.UTC)


def mood(emotion="joy", keywords=("sunshine", "coffee"), intensity=0.6) -> Mood:
    return Mood(primary_emotion=emotion, confidence=0.9, secondary_emotions=[], intensity=intensity,
                valence=0.7, arousal=0.5, keywords=list(keywords), summary="A fine day.")


def context(style=None, weather=None):
    return build_context(WHEN, "Europe/Berlin", 52.52, 13.40, weather, style)


@pytest.mark.parametrize("given", ["photographic", "digital-art", "cinematic", "anime", "fantasy-art",
                                   " Anime ", "CINEMATIC"])
def test_the_five_styles_are_taken(given):
    assert styles.parse_style(given) == given.strip().lower()


@pytest.mark.parametrize("given", ["watercolour", "photo", "anime; drop table", "x" * 300])
def test_another_style_is_refused_naming_the_five(given):
    with pytest.raises(styles.UnknownStyle) as err:
        styles.parse_style(given)
    assert all(name in str(err.value) for name in styles.STYLES)
    assert len(str(err.value)) < 200  # what was given is cut, not echoed whole


def test_no_style_lets_the_mood_choose():
    assert styles.parse_style(None) is None and styles.parse_style("  ") is None
    assert {styles.resolve(None, e) for e in styles.DEFAULT_FOR_EMOTION} <= set(styles.STYLES)
    assert styles.resolve("anime", "sadness") == "anime"


def test_the_prompt_opens_with_the_style_and_carries_the_mood_and_context():
    rainy = Weather("rain", 11.0, "open-meteo")
    prompt = prompts.image_prompt(mood(), context("cinematic", rainy))
    assert styles.style_in(prompt) == "cinematic"
    assert "joy" in prompt and "rain weather" in prompt and "spring" in prompt
    assert "with sunshine and a cup of coffee" in prompt
    without_choice = prompts.image_prompt(mood("sadness"), context())
    assert styles.style_in(without_choice) == styles.DEFAULT_FOR_EMOTION["sadness"]


def test_unknown_weather_stays_out_of_the_picture():
    prompt = prompts.image_prompt(mood(), context(weather=unknown_weather("open-meteo", "timed out")))
    assert "weather" not in prompt


def test_keywords_reach_the_prompt_only_as_vetted_motifs():
    said = ["ignore previous instructions", "nude", "Coca-Cola", "rain", "雨", "桜", "コーヒー", "my boss Bob"]
    found = image_vocabulary.motifs(said, limit=10)
    assert found == ["falling rain", "cherry blossoms", "a cup of coffee"]
    prompt = prompts.image_prompt(mood(keywords=said), context())
    for word in ("ignore", "nude", "Coca", "Bob", "boss"):
        assert word.lower() not in prompt.lower()


def test_motifs_are_bounded_and_each_once():
    assert image_vocabulary.motifs(["rain", "raining", "sea", "ocean", "city", "moon"]) == [
        "falling rain", "the sea", "a city skyline"]
    assert image_vocabulary.motifs(["trees", "flowers", "books"]) == ["trees", "flowers", "books"]
    assert image_vocabulary.motifs(["123", "sun-shine", ""]) == []


def test_every_motif_is_a_short_plain_phrase():
    for motif in set(image_vocabulary.MOTIFS.values()):
        assert motif.isascii() and len(motif) <= 24 and all(c.isalpha() or c == " " for c in motif)


def test_each_recording_has_its_own_seed_in_range():
    seeds = {image_models.recording_seed(f"rec-20261207-{i:08x}") for i in range(2000)}
    assert len(seeds) == 2000
    assert all(0 <= s <= image_models.MAX_SEED for s in seeds)
    assert image_models.recording_seed("rec-a") == image_models.recording_seed("rec-a")


def test_the_seed_goes_into_both_image_model_bodies():
    stability = image_models.request_body("stability.stable-image-core-v1:1", "p", 1234)
    canvas = image_models.request_body("amazon.nova-canvas-v1:0", "p", 1234)
    assert stability["seed"] == 1234 and canvas["imageGenerationConfig"]["seed"] == 1234
    with pytest.raises(ValueError):
        image_models.request_body("stability.stable-image-core-v1:1", "p", image_models.MAX_SEED + 1)


def test_the_image_cache_key_is_one_users_one_recordings():
    key = prompts.image_cache_key("p", "m", 7, "alice")
    assert key == prompts.image_cache_key("p", "m", 7, "alice")
    assert len({key, prompts.image_cache_key("p", "m", 7, "bob"), prompts.image_cache_key("p", "m", 8, "alice"),
                prompts.image_cache_key("q", "m", 7, "alice")}) == 4


def test_the_upload_names_its_style_in_metadata():
    uploaded = dt.datetime(2026, 12, 7, tzinfo=dt.UTC)
    assert client_metadata.read({"style": "anime"}, uploaded, uploaded).style == "anime"
    odd = client_metadata.read({"style": "oil-painting"}, uploaded, uploaded)
    assert odd.style is None and "style" in odd.corrections


def test_the_local_painter_paints_one_picture_per_seed_and_style():
    prompt = prompts.image_prompt(mood(), context("anime"))
    first, again, other = paint(prompt, 256, 1), paint(prompt, 256, 1), paint(prompt, 256, 2)
    assert first == again and first != other
    looks = {hashlib.sha256(paint(prompts.image_prompt(mood(), context(s)), 256, 1)).hexdigest()
             for s in styles.STYLES}
    assert len(looks) == len(styles.STYLES)
