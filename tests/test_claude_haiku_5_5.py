"""Claude Haiku 5.5 against the local stack: held to its rules, so what Bedrock would refuse
fails here, and what the platform sends succeeds end to end.

The model server plays Haiku 5.5's rules (`local/models/claude_rules.py`): sampling
parameters, an assistant prefill and `budget_tokens` refused with a ValidationException;
a thinking block first unless thinking is off; the classifier's refusal when a test asks
for it. The template grants the mood model it is given, so a stack set to Haiku 5.5
lets its roles call Haiku 5.5 and nothing else.
"""

from __future__ import annotations

import json
import os
import time
from contextlib import contextmanager

import pytest
import requests
from botocore.exceptions import ClientError
from dagster import DagsterInstance, materialize
from helpers import acting_as, wait_for_batch_job

from vomage_dagster.assets.partitions import recordings
from vomage_dagster.assets.recording import ASSETS
from vomage_dagster.domain import batch, models, prompts
from vomage_dagster.domain.errors import ANALYSIS_REFUSED, MODEL_UNAVAILABLE, ProcessingError
from vomage_dagster.local.client.uploads import upload_file
from vomage_dagster.resources.analyzer import MoodAnalyzer
from vomage_dagster.resources.aws import client
from vomage_dagster.resources.batch import BatchInference
from vomage_dagster.resources.model_catalog import ModelCatalog

HAIKU_5_5 = "us.anthropic.claude-haiku-5-5"
HAIKU_4_5 = "us.anthropic.claude-haiku-4-5-20251001-v1:0"
HAPPY = "I'm so happy, we won the game!"


@contextmanager
def declined(containing: str):
    """The model server's Haiku 5.5 declines transcripts containing `containing` for the block."""
    url = f"{os.environ['VOMAGE_MODEL_SERVER_URL']}/_stand-in/models/faults"
    assert requests.post(url, json={"refuse_containing": containing}, timeout=5).status_code == 200
    try:
        yield
    finally:
        requests.post(url, json={"refuse_containing": None}, timeout=5)


def _runtime():
    return client("bedrock-runtime", "us-east-1")


def _validation_error(call) -> str:
    with pytest.raises(ClientError) as info:
        call()
    assert info.value.response["Error"]["Code"] == "ValidationException", info.value.response
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    return info.value.response["Error"]["Message"]


def test_both_haikus_are_served_active_and_5_5_through_its_own_profiles(local_stack):
    catalog = ModelCatalog()
    bedrock = catalog.bedrock("us-east-1")
    life = bedrock.get_foundation_model(modelIdentifier=models.HAIKU_5_5)["modelDetails"]["modelLifecycle"]
    assert life["status"] == "ACTIVE" and life["startOfLifeTime"].date().isoformat() == "2026-10-07"
    assert "endOfLifeTime" not in life
    assert bedrock.get_foundation_model(modelIdentifier=models.HAIKU_4_5)["modelDetails"][
        "modelLifecycle"]["status"] == "ACTIVE"
    for prefix in ("us", "eu", "jp", "global"):
        region = {"eu": "eu-west-1", "jp": "ap-northeast-1"}.get(prefix, "us-east-1")
        profile = catalog.bedrock(region).get_inference_profile(
            inferenceProfileIdentifier=f"{prefix}.{models.HAIKU_5_5}")
        assert profile["status"] == "ACTIVE" and profile["models"]
    with pytest.raises(ClientError):  # not offered through apac
        catalog.bedrock("ap-southeast-1").get_inference_profile(
            inferenceProfileIdentifier=f"apac.{models.HAIKU_5_5}")


def test_the_platforms_requests_succeed_through_converse_and_invoke_model(local_stack):
    mood, usage = MoodAnalyzer(model_id=HAIKU_5_5).analyze(HAPPY, "en-US")
    assert mood.primary_emotion == "joy" and usage["output_tokens"] > 0
    body = prompts.native_request(HAIKU_5_5, HAPPY, "en-US")
    answer = json.loads(_runtime().invoke_model(modelId=HAIKU_5_5, body=json.dumps(body))["body"].read())
    assert [b["type"] for b in answer["content"]] == ["tool_use"]  # thinking was turned off
    assert prompts.tool_input_from_response(answer)["primary_emotion"] == "joy"


def _converse(**changes) -> dict:
    request = prompts.converse_request(HAIKU_5_5, HAPPY, "en-US")
    request.update(changes)
    return request


def _native(**changes) -> dict:
    body = prompts.native_request(HAIKU_5_5, HAPPY, "en-US")
    body.update(changes)
    return body


PREFILL = [{"role": "user", "content": [{"text": "x"}]}, {"role": "assistant", "content": [{"text": "{"}]}]
NATIVE_PREFILL = [{"role": "user", "content": [{"type": "text", "text": "x"}]},
                  {"role": "assistant", "content": [{"type": "text", "text": "{"}]}]


@pytest.mark.parametrize(("request_", "named"), [
    (_converse(inferenceConfig={"maxTokens": 600, "temperature": 0}), "temperature"),
    (_converse(inferenceConfig={"maxTokens": 600, "topP": 0.9}), "topP"),
    (_converse(additionalModelRequestFields={"thinking": {"type": "disabled"}, "top_k": 5}), "top_k"),
    (_converse(additionalModelRequestFields={"thinking": {"type": "enabled", "budget_tokens": 1024}}),
     "thinking"),
    (_converse(messages=PREFILL), "prefill"),
])
def test_converse_requests_haiku_5_5_refuses_are_refused(local_stack, request_, named):
    assert named in _validation_error(lambda: _runtime().converse(**request_))


@pytest.mark.parametrize(("body", "named"), [
    (prompts.analysis_request(HAPPY, "en-US"), "temperature"),  # Haiku 4.5's body, temperature 0
    (_native(top_p=0.5), "top_p"),
    (_native(top_k=40), "top_k"),
    (_native(thinking={"type": "adaptive", "budget_tokens": 2048}), "budget_tokens"),
    (_native(messages=NATIVE_PREFILL), "prefill"),
])
def test_native_bodies_haiku_5_5_refuses_are_refused(local_stack, body, named):
    assert named in _validation_error(lambda: _runtime().invoke_model(modelId=HAIKU_5_5, body=json.dumps(body)))


def test_the_rules_are_haiku_5_5s_only(local_stack):
    """Haiku 4.5 keeps taking temperature 0, as it does on Bedrock."""
    answer = _runtime().converse(**prompts.converse_request(HAIKU_4_5, HAPPY, "en-US"))
    assert answer["stopReason"] == "tool_use"


def test_without_thinking_off_the_answer_opens_with_thinking(local_stack):
    """A parser that took content[0] would find no tool call: blocks are chosen by kind."""
    request = _converse()
    del request["additionalModelRequestFields"]
    answer = _runtime().converse(**request)
    content = answer["output"]["message"]["content"]
    assert "reasoningContent" in content[0] and "toolUse" not in content[0]
    assert prompts.tool_input_from_converse(answer)["primary_emotion"] == "joy"
    body = _native()
    del body["thinking"]
    native = json.loads(_runtime().invoke_model(modelId=HAIKU_5_5, body=json.dumps(body))["body"].read())
    assert [b["type"] for b in native["content"]] == ["thinking", "tool_use"]
    assert prompts.tool_input_from_response(native)["primary_emotion"] == "joy"


def test_a_declined_transcript_is_a_final_analysis_refused(local_stack):
    with declined("game"):
        with pytest.raises(ProcessingError) as info:
            MoodAnalyzer(model_id=HAIKU_5_5).analyze(HAPPY, "en-US")
        native = json.loads(_runtime().invoke_model(modelId=HAIKU_5_5, body=json.dumps(_native()))["body"].read())
    assert info.value.code == ANALYSIS_REFUSED and not info.value.retryable
    assert native["stop_reason"] == "refusal" and native["content"] == []


def test_a_recording_haiku_5_5_declines_ends_failed_with_the_refusal_code(settings, resources, samples):
    rid = upload_file(settings, samples["en_angry"]["path"], "declined-user")
    with DagsterInstance.ephemeral() as instance, declined(""):
        instance.add_dynamic_partitions(recordings.name, [rid])
        result = materialize(ASSETS, partition_key=rid, instance=instance, raise_on_error=False,
                             resources={**resources, "analyzer": MoodAnalyzer(model_id=HAIKU_5_5)})
    assert not result.success
    status = resources["tracker"].status.get(rid)
    assert status["stage"] == "failed" and status["error"]["code"] == ANALYSIS_REFUSED
    assert status["error"]["retryable"] is False
    assert status["message"] == "The mood of this recording could not be read."


def test_batch_records_on_haiku_5_5_are_accepted_and_a_declined_one_is_its_own_error(local_stack, resources):
    store, stamp = resources["store"], int(time.time() * 1000)
    input_key = f"batch/test-haiku55-{stamp}/input-000.jsonl"
    store.put_bytes(input_key, batch.input_lines([("r1", "What a wonderful, happy day", "en-US"),
                                                  ("r2", "I am furious, this is unfair", "en-US")], HAIKU_5_5))
    jobs = resources["batch_inference"]
    with declined("furious"):
        arn = jobs.submit(f"haiku55-{stamp}", f"tok-{stamp}", HAIKU_5_5, store.uri(input_key),
                          store.uri(f"batch/test-haiku55-{stamp}/output/"))
        assert wait_for_batch_job(jobs, arn)["status"] == "Completed"  # a refusal is an answer, not a failed record
    out = store.get_bytes(BatchInference.output_key(f"batch/test-haiku55-{stamp}/output", arn, input_key))
    results = {r.record_id: r for r in batch.parse_output(out, HAIKU_5_5)}
    assert results["r1"].mood["primary_emotion"] == "joy"
    assert results["r2"].mood is None and ANALYSIS_REFUSED in results["r2"].error


def test_the_default_stacks_roles_are_not_granted_haiku_5_5(settings):
    """The template grants the configured model only: Haiku 4.5 here."""
    with acting_as("ProcessingRunRole"):
        MoodAnalyzer(model_id=HAIKU_4_5).analyze(HAPPY, "en-US")
        _not_granted(HAIKU_5_5)


def _not_granted(model_id: str) -> None:
    """The role's call is refused by IAM, which the analyzer reports as a final model_unavailable."""
    with pytest.raises(ProcessingError) as info:
        MoodAnalyzer(model_id=model_id).analyze(HAPPY, "en-US")
    assert info.value.code == MODEL_UNAVAILABLE and not info.value.retryable
    assert "AccessDeniedException" in info.value.message and "bedrock:InvokeModel" in info.value.message


@pytest.fixture()
def haiku_5_5_stack(monkeypatch, request):
    """A stack of its own provisioned for Claude Haiku 5.5 through the us. profile."""
    monkeypatch.setenv("VOMAGE_ANALYSIS_MODEL_ID", models.HAIKU_5_5)
    return request.getfixturevalue("private_stack")


@pytest.mark.slow
def test_a_stack_set_to_haiku_5_5_grants_it_and_refuses_haiku_4_5(haiku_5_5_stack):
    from vomage_dagster.settings import load_settings

    configured = load_settings()
    assert configured.analysis_model_id == HAIKU_5_5
    with acting_as("ProcessingRunRole"):
        mood, _usage = MoodAnalyzer(model_id=configured.analysis_model_id).analyze(HAPPY, "en-US")
        assert mood.primary_emotion == "joy"
        verdict = ModelCatalog().verdict(configured.configured_models()[0])
        assert verdict.ok and verdict.status == "ACTIVE"
        _not_granted(HAIKU_4_5)
