"""The mood schema holds any model's output to the app's contract."""

import pytest

from vomage_dagster.domain.errors import INVALID_ANALYSIS, ProcessingError
from vomage_dagster.domain.mood import EMOTIONS, validate_mood

GOOD = {
    "primary_emotion": "joy",
    "confidence": 0.9,
    "secondary_emotions": [{"emotion": "surprise", "score": 0.2}],
    "intensity": 0.7,
    "valence": 0.8,
    "arousal": 0.6,
    "keywords": ["sun", "friend"],
    "summary": "A happy note.",
}


def test_valid_output_is_accepted():
    mood = validate_mood(GOOD)
    assert mood.primary_emotion == "joy"
    assert mood.keywords == ("sun", "friend")
    assert mood.as_dict()["secondary_emotions"] == [{"emotion": "surprise", "score": 0.2}]


@pytest.mark.parametrize(
    "change",
    [
        {"primary_emotion": "euphoria"},
        {"confidence": 1.5},
        {"valence": -2},
        {"intensity": "high"},
        {"arousal": True},
        {"keywords": "sun"},
        {"summary": None},
        {"secondary_emotions": [{"emotion": "bliss", "score": 0.1}]},
    ],
)
def test_out_of_contract_output_is_rejected(change):
    with pytest.raises(ProcessingError) as info:
        validate_mood({**GOOD, **change})
    assert info.value.code == INVALID_ANALYSIS


def test_strings_are_cleaned_and_bounded():
    mood = validate_mood({**GOOD, "keywords": ["<script>", "x" * 100] + ["k"] * 20,
                          "summary": "line\nbreak {json} " + "y" * 500})
    assert len(mood.keywords) <= 8
    assert all("<" not in k and len(k) <= 32 for k in mood.keywords)
    assert "\n" not in mood.summary and "{" not in mood.summary
    assert len(mood.summary) <= 240


def test_seven_emotions():
    assert set(EMOTIONS) == {"joy", "sadness", "anger", "fear", "surprise", "disgust", "neutral"}
