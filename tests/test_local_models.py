"""The offline models behind the local model server, loaded in-process: real weights."""

import pytest

from vomage_dagster.domain.audio import decode
from vomage_dagster.local.demo.samples import error_rate
from vomage_dagster.local.models import asr
from vomage_dagster.local.models.mood_model import MoodModel, keywords
from vomage_dagster.local.models.painter import paint


@pytest.fixture(scope="module")
def speech():
    return asr.SpeechModel()


@pytest.fixture(scope="module")
def mood_model():
    return MoodModel()


def test_whisper_weights_are_verified_by_hash():
    model = asr.model_dir() / "model.bin"
    assert asr._sha256(model) == asr.WHISPER_BASE_SHA256


def test_english_sample_is_transcribed_and_identified(speech, samples):
    item = samples["en_joy"]
    results = speech.transcribe(decode(item["path"].read_bytes()).samples, None)
    text = results["transcripts"][0]["transcript"]
    assert results["language_code"] == "en-US"
    assert error_rate(item["expected_text"], text, "en-US") < 0.25
    assert results["items"] and results["audio_segments"]


def test_language_hint_is_used(speech, samples):
    item = samples["zh_sad"]
    results = speech.transcribe(decode(item["path"].read_bytes()).samples, "zh-CN")
    assert results["language_code"] == "zh-CN"
    assert "城市" in results["transcripts"][0]["transcript"]


@pytest.mark.parametrize(("text", "language", "emotion"), [
    ("I'm so happy today, I just got great news!", "en-US", "joy"),
    ("I feel so lonely since my friend left, I want to cry.", "en-US", "sadness"),
    ("My landlord raised the rent again, I am furious!", "en-US", "anger"),
    ("我很担心明天的考试，我好害怕。", "zh-CN", "fear"),
    ("今天我很难过，我想哭。", "zh-CN", "sadness"),
    ("今日は本当に嬉しい！", "ja-JP", "joy"),
    ("I took the bus to work and had a sandwich for lunch.", "en-US", "neutral"),
])
def test_mood_model_finds_the_emotion(mood_model, text, language, emotion):
    out = mood_model.analyze(text, language)
    assert out["primary_emotion"] == emotion
    assert -1 <= out["valence"] <= 1 and 0 <= out["intensity"] <= 1


def test_valence_sign_follows_the_emotion(mood_model):
    assert mood_model.analyze("This is the best day of my life!", "en-US")["valence"] > 0.3
    assert mood_model.analyze("Everything went wrong and I feel miserable.", "en-US")["valence"] < -0.2


def test_keywords_follow_plain_rules():
    assert keywords("The rent, the rent, and my landlord", "en-US")[:2] == ["rent", "landlord"]
    assert "城市" in "".join(keywords("我的朋友离开了这个城市", "zh-CN"))


def test_painter_is_deterministic_per_prompt():
    a = paint("Abstract painting of joy, morning light, rain weather", size=256)
    assert a == paint("Abstract painting of joy, morning light, rain weather", size=256)
    assert a != paint("Abstract painting of sadness, night light, snow weather", size=256)
    assert a.startswith(b"\x89PNG")


@pytest.mark.parametrize("text,language,emotion", [
    ("I'm so happy today! Great news from my best friend.", "en-US", "joy"),
    ("今天我很难过。下雨了，我的朋友离开了这个城市。", "zh-CN", "sadness"),
    ("I went to the store and bought some bread.", "en-US", "neutral"),
])
def test_simulated_mood_is_a_valid_record_mood_answer(text, language, emotion):
    from vomage_dagster.domain.mood import validate_mood
    from vomage_dagster.local.models import simulated

    answer = simulated.analyze(text, language)
    assert answer["primary_emotion"] == emotion
    assert validate_mood(answer).primary_emotion == emotion


def test_simulated_image_is_painted_once_per_emotion():
    from vomage_dagster.local.models import simulated

    first = simulated.image("Abstract expressive painting of joy, warm", 64)
    assert first.startswith(b"\x89PNG")
    assert simulated.image("a joy picture, another prompt", 64) is first
    assert simulated.image("sadness", 64) != first
