"""Request and response shapes of the AWS-only backends, pinned with botocore's Stubber.

The recorded bodies are what Transcribe, Claude on Bedrock and Nova Canvas answer;
the endpoint is a stub host, so nothing leaves the process.
"""

import base64
import io
import json

import pytest
from botocore.response import StreamingBody
from botocore.stub import ANY, Stubber

from vomage_dagster.domain.errors import INVALID_ANALYSIS, TRANSCRIPTION_FAILED, ProcessingError
from vomage_dagster.resources.analyzer import MoodAnalyzer
from vomage_dagster.resources.painter import ImagePainter
from vomage_dagster.resources.speech import SpeechToText, job_name
from vomage_dagster.resources.store import ObjectStore

STUB = "https://stubbed.invalid"
SHA = "ab" * 32


@pytest.fixture(autouse=True)
def _credentials(monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")


def _body(payload) -> StreamingBody:
    raw = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return StreamingBody(io.BytesIO(raw), len(raw))


TRANSCRIPT_DOC = {
    "jobName": job_name(SHA, None),
    "accountId": "123456789012",
    "status": "COMPLETED",
    "results": {
        "language_code": "en-US",
        "language_identification": [{"code": "en-US", "score": "0.9915"},
                                    {"code": "ja-JP", "score": "0.0050"}],
        "transcripts": [{"transcript": "I'm so happy today."}],
        "audio_segments": [{"id": 0, "transcript": "I'm so happy today.", "start_time": "0.21",
                            "end_time": "1.84", "items": [0, 1, 2, 3]}],
        "items": [
            {"id": 0, "type": "pronunciation", "start_time": "0.21", "end_time": "0.5",
             "alternatives": [{"confidence": "0.998", "content": "I'm"}]},
            {"id": 1, "type": "pronunciation", "start_time": "0.5", "end_time": "0.8",
             "alternatives": [{"confidence": "0.999", "content": "so"}]},
            {"id": 2, "type": "pronunciation", "start_time": "0.8", "end_time": "1.2",
             "alternatives": [{"confidence": "0.987", "content": "happy"}]},
            {"id": 3, "type": "pronunciation", "start_time": "1.2", "end_time": "1.84",
             "alternatives": [{"confidence": "0.996", "content": "today"}]},
            {"id": 4, "type": "punctuation", "alternatives": [{"confidence": "0.0", "content": "."}]},
        ],
    },
}


def _job(status, **extra):
    return {"TranscriptionJob": {"TranscriptionJobName": job_name(SHA, None),
                                 "TranscriptionJobStatus": status, **extra}}


def test_transcribe_identifies_language_polls_and_reads_the_output():
    store = ObjectStore(bucket="vomage-recordings", endpoint_url=STUB)
    speech = SpeechToText(store=store, endpoint_url=STUB, poll_seconds=0.01)
    name = job_name(SHA, None)
    with Stubber(speech.transcribe_client) as tr, Stubber(store.s3) as s3:
        tr.add_response("start_transcription_job", _job("IN_PROGRESS"), {
            "TranscriptionJobName": name,
            "Media": {"MediaFileUri": "s3://vomage-recordings/uploads/u/r.m4a"},
            "OutputBucketName": "vomage-recordings",
            "OutputKey": f"transcribe-output/{name}.json",
            "IdentifyLanguage": True,
            "LanguageOptions": ["zh-CN", "en-US", "ja-JP"],
        })
        tr.add_response("get_transcription_job", _job("IN_PROGRESS"), {"TranscriptionJobName": name})
        tr.add_response("get_transcription_job", _job("COMPLETED", LanguageCode="en-US"),
                        {"TranscriptionJobName": name})
        s3.add_response("get_object", {"Body": _body(TRANSCRIPT_DOC)},
                        {"Bucket": "vomage-recordings", "Key": f"transcribe-output/{name}.json"})
        result = speech.transcribe("uploads/u/r.m4a", SHA, None)
        tr.assert_no_pending_responses()
    assert result.text == "I'm so happy today."
    assert result.language == "en-US"
    assert result.confidence == pytest.approx(0.995, abs=0.001)
    assert result.segments[0].start == 0.21


def test_transcribe_passes_a_known_language_and_surfaces_failure():
    store = ObjectStore(bucket="vomage-recordings", endpoint_url=STUB)
    speech = SpeechToText(store=store, endpoint_url=STUB, poll_seconds=0.01)
    name = job_name(SHA, "zh-CN")
    with Stubber(speech.transcribe_client) as tr:
        tr.add_response("start_transcription_job", _job("IN_PROGRESS"), {
            "TranscriptionJobName": name, "Media": ANY, "OutputBucketName": ANY, "OutputKey": ANY,
            "LanguageCode": "zh-CN"})
        tr.add_response("get_transcription_job", _job(
            "FAILED", FailureReason="The media format doesn't match the detected media format."),
            {"TranscriptionJobName": name})
        with pytest.raises(ProcessingError) as info:
            speech.transcribe("uploads/u/r.webm", SHA, "zh-CN")
    assert info.value.code == TRANSCRIPTION_FAILED


def test_transcribe_joins_a_job_that_already_exists():
    store = ObjectStore(bucket="vomage-recordings", endpoint_url=STUB)
    speech = SpeechToText(store=store, endpoint_url=STUB, poll_seconds=0.01)
    with Stubber(speech.transcribe_client) as tr:
        tr.add_client_error("start_transcription_job", "ConflictException",
                            "The requested job name already exists.", 400)
        speech.start("uploads/u/r.m4a", job_name(SHA, None), None)
        tr.assert_no_pending_responses()


CLAUDE_RESPONSE = {
    "id": "msg_bdrk_01",
    "type": "message",
    "role": "assistant",
    "model": "claude-3-haiku-20240307",
    "content": [{"type": "tool_use", "id": "toolu_bdrk_01", "name": "record_mood", "input": {
        "primary_emotion": "joy", "confidence": 0.93, "secondary_emotions": [
            {"emotion": "surprise", "score": 0.2}],
        "intensity": 0.8, "valence": 0.85, "arousal": 0.7,
        "keywords": ["sunshine", "good news"], "summary": "Delighted by good news."}}],
    "stop_reason": "tool_use",
    "stop_sequence": None,
    "usage": {"input_tokens": 512, "output_tokens": 96},
}


def _invoke_params(model_id):
    return {"modelId": model_id, "body": ANY, "contentType": "application/json",
            "accept": "application/json"}


def test_claude_is_called_with_forced_tool_use_and_output_validated():
    analyzer = MoodAnalyzer(endpoint_url=STUB)
    with Stubber(analyzer.bedrock) as br:
        br.add_response("invoke_model", {"body": _body(CLAUDE_RESPONSE), "contentType": "application/json"},
                        _invoke_params(analyzer.model_id))
        mood, usage = analyzer.analyze("I'm so happy today.", "en-US")
    assert mood.primary_emotion == "joy" and mood.keywords == ("sunshine", "good news")
    assert usage == {"input_tokens": 512, "output_tokens": 96}


def test_claude_output_outside_the_schema_is_rejected():
    analyzer = MoodAnalyzer(endpoint_url=STUB)
    bad = json.loads(json.dumps(CLAUDE_RESPONSE))
    bad["content"][0]["input"]["primary_emotion"] = "ecstatic"
    with Stubber(analyzer.bedrock) as br:
        br.add_response("invoke_model", {"body": _body(bad), "contentType": "application/json"},
                        _invoke_params(analyzer.model_id))
        with pytest.raises(ProcessingError) as info:
            analyzer.analyze("whatever", "en-US")
    assert info.value.code == INVALID_ANALYSIS


def test_nova_canvas_text_image_round_trip():
    painter = ImagePainter(endpoint_url=STUB)
    png = b"\x89PNG\r\n\x1a\nfake"
    with Stubber(painter.bedrock) as br:
        br.add_response("invoke_model", {"body": _body({"images": [base64.b64encode(png).decode()],
                                                        "error": None}),
                                         "contentType": "application/json"},
                        _invoke_params("amazon.nova-canvas-v1:0"))
        assert painter.paint("Abstract painting of joy") == png


def test_exact_bodies_sent_to_bedrock():
    """Stubber checks the bytes: the analyzer and painter send exactly these bodies."""
    from vomage_dagster.domain import prompts

    analyzer = MoodAnalyzer(endpoint_url=STUB)
    expected = prompts.analysis_request("hello", "en-US")
    assert expected["anthropic_version"] == "bedrock-2023-05-31"
    assert expected["tools"][0]["input_schema"]["required"][0] == "primary_emotion"
    with Stubber(analyzer.bedrock) as br:
        br.add_response("invoke_model", {"body": _body(CLAUDE_RESPONSE), "contentType": "application/json"},
                        {**_invoke_params(analyzer.model_id), "body": prompts.dumps(expected)})
        analyzer.analyze("hello", "en-US")
        br.assert_no_pending_responses()

    painter = ImagePainter(endpoint_url=STUB)
    expected = prompts.image_request("calm sea")
    with Stubber(painter.bedrock) as br:
        br.add_response("invoke_model", {"body": _body({"images": [base64.b64encode(b"x").decode()]}),
                                         "contentType": "application/json"},
                        {**_invoke_params(painter.model_id), "body": prompts.dumps(expected)})
        painter.paint("calm sea")
        br.assert_no_pending_responses()
