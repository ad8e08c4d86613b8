"""A streamed transcript is user input: adopted only when it fits its recording."""

from __future__ import annotations

import json

import pytest

from vomage_dagster.domain import streamed


def result(text, start=0.0, end=3.0, confidence=0.9):
    return {"ResultId": "r", "StartTime": start, "EndTime": end, "IsPartial": False,
            "Alternatives": [{"Transcript": text, "Items": [{"Content": text, "Confidence": confidence}]}]}


def doc(text="I'm so happy today.", language="en-US", seconds=6.9, rid="rec-1", **changes):
    d = streamed.build(rid, language, [result(text)], seconds)
    d.update(changes)
    return json.dumps(d).encode()


def test_a_fitting_sidecar_becomes_the_transcript():
    t = streamed.validate(doc(), "rec-1", 7.0, None)
    assert t.text == "I'm so happy today." and t.language == "en-US" and t.confidence == 0.9
    assert t.segments[0].end == 3.0
    zh = streamed.validate(doc("今天我很难过。", "zh-CN"), "rec-1", 7.0, "zh-CN")
    ja = streamed.validate(doc("今日はとても疲れました。", "ja-JP"), "rec-1", 7.0, None)
    assert zh.language == "zh-CN" and ja.text.startswith("今日")


@pytest.mark.parametrize("raw, hint, reason", [
    (doc(rid="rec-2"), None, "another recording"),
    (doc(language="fr-FR"), None, "not one of"),
    (doc(language="en-US"), "ja-JP", "upload's language"),
    (doc("今天我很难过。", "en-US"), None, "script"),
    (doc("I am sad today", "zh-CN"), None, "script"),
    (doc("今天我很难过。", "ja-JP"), None, "script"),  # no kana: Chinese, not Japanese
    (doc("   "), None, "empty"),
    (doc("word " * 400), None, "implausible"),
    (doc(seconds=30.0), None, "covered"),
    (doc(version=2), None, "version"),
    (doc(audio_seconds="7"), None, "number"),
    (doc("bell\x07 ring"), None, "control"),
    (b"{not json", None, "not JSON"),
    (b"[1, 2]", None, "version"),
    (b"{" + b" " * streamed.MAX_BYTES + b"}", None, "bytes"),
    (json.dumps({**json.loads(doc()), "results": [{"StartTime": 0}]}).encode(), None, "malformed"),
    (json.dumps({**json.loads(doc()), "results": [result("x", 0, 60)]}).encode(), None, "outside"),
])
def test_a_sidecar_that_does_not_fit_is_refused_with_its_reason(raw, hint, reason):
    with pytest.raises(streamed.Rejected, match=reason):
        streamed.validate(raw, "rec-1", 7.0, hint)
