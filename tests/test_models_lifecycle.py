"""The configured Bedrock models against the local model server: lifecycle, refusals, shapes.

The local server knows only the models it serves (`local/models/served_models.py`), so a typo
or a retired id fails here as on AWS. `VOMAGE_LOCAL_LEGACY_MODELS` on a private stack
turns a model LEGACY, which drives the check's failure path: the CLI exits 1 and the
asset check on `mood` fails with ERROR severity.
"""

from __future__ import annotations

import json
import time

import pytest
from dagster import AssetCheckSeverity, DagsterInstance, materialize
from helpers import wait_for_batch_job

from vomage_dagster import cli
from vomage_dagster.assets.partitions import recordings
from vomage_dagster.assets.recording import ASSETS, ORDER
from vomage_dagster.domain import batch
from vomage_dagster.domain.errors import MODEL_UNAVAILABLE, ProcessingError
from vomage_dagster.local.client.uploads import upload_file
from vomage_dagster.resources.analyzer import MoodAnalyzer
from vomage_dagster.resources.batch import BatchInference
from vomage_dagster.resources.model_catalog import ModelCatalog
from vomage_dagster.resources.painter import ImagePainter

HAIKU = "us.anthropic.claude-haiku-4-5-20251001-v1:0"


def test_models_check_passes_when_every_model_is_active(local_stack, capsys):
    assert cli.main(["models", "check", "--json"]) == 0
    verdicts = json.loads(capsys.readouterr().out)
    assert {v["model_id"]: v["status"] for v in verdicts} == {
        HAIKU: "ACTIVE", "stability.stable-image-core-v1:1": "ACTIVE"}
    analysis = next(v for v in verdicts if v["role"] == "analysis")
    assert [arn.split(":")[3] for arn in analysis["foundation_models"]] == ["us-east-1", "us-east-2", "us-west-2"]
    # The newer Haiku is named, read from ListFoundationModels; advice, not a failure.
    assert analysis["successor"] == "anthropic.claude-haiku-5-5" and analysis["ok"]
    assert next(v for v in verdicts if v["role"] == "image")["successor"] is None


def test_models_check_names_the_successor_and_none_for_the_newest(local_stack, monkeypatch, capsys):
    assert cli.main(["models", "check"]) == 0
    assert f"ok   analysis {HAIKU} (us-east-1): ACTIVE, successor: anthropic.claude-haiku-5-5 (ACTIVE)" in \
        capsys.readouterr().out
    monkeypatch.setenv("VOMAGE_ANALYSIS_MODEL_ID", "anthropic.claude-haiku-5-5")
    assert cli.main(["models", "check"]) == 0
    out = capsys.readouterr().out
    assert "ok   analysis us.anthropic.claude-haiku-5-5 (us-east-1): ACTIVE\n" in out and "successor" not in out


def test_models_list_reads_the_exact_stability_id(local_stack, capsys):
    assert cli.main(["models", "list", "--provider", "stability", "--json"]) == 0
    found = json.loads(capsys.readouterr().out)
    assert [m["modelId"] for m in found] == ["stability.stable-image-core-v1:1"]
    assert found[0]["modelArn"].startswith("arn:aws:bedrock:us-west-2::")


@pytest.mark.parametrize(("env", "named"), [
    ({"VOMAGE_ANALYSIS_MODEL_ID": "anthropic.claude-3-haiku-20240307-v1:0", "VOMAGE_INFERENCE_PROFILE": ""},
     "anthropic.claude-3-haiku-20240307-v1:0"),
    ({"VOMAGE_IMAGE_MODEL_ID": "stability.stable-image-core-v1:7"}, "stability.stable-image-core-v1:7"),
    ({"VOMAGE_BEDROCK_REGION": "eu-west-1"}, HAIKU),
])
def test_models_check_fails_naming_an_unknown_model_or_a_missing_profile(local_stack, monkeypatch, capsys,
                                                                         env, named):
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    assert cli.main(["models", "check"]) == 1
    captured = capsys.readouterr()
    assert "FAIL" in captured.out and named in captured.err


def test_a_model_the_server_does_not_serve_is_refused_as_bedrock_would(local_stack):
    for model_id in ("anthropic.claude-3-haiku-20240307-v1:0", "anthropic.claude-haiku-4-5-20251001-v1:0",
                     "us.anthropic.claude-haiku-4-5-typo"):
        with pytest.raises(ProcessingError) as info:
            MoodAnalyzer(model_id=model_id).analyze("I am happy", "en-US")
        assert info.value.code == MODEL_UNAVAILABLE and not info.value.retryable
        assert model_id in info.value.message
    with pytest.raises(ProcessingError) as info:
        ImagePainter(model_id="stability.stable-image-ultra-v9:0").paint("calm sea")
    assert info.value.code == MODEL_UNAVAILABLE


@pytest.mark.parametrize("model_id", ["us.amazon.nova-micro-v1:0", "global.amazon.nova-2-lite-v1:0", HAIKU])
def test_every_text_model_answers_through_the_one_converse_shape(local_stack, model_id):
    mood, usage = MoodAnalyzer(model_id=model_id).analyze("I'm so happy, we won the game!", "en-US")
    assert mood.primary_emotion == "joy" and usage["input_tokens"] > 0 and usage["output_tokens"] > 0


def test_nova_canvas_still_paints_for_accounts_that_have_it(local_stack):
    from vomage_dagster.domain.images import png_size

    png = ImagePainter(model_id="amazon.nova-canvas-v1:0", region_name="us-east-1").paint("joy, morning light")
    assert png_size(png) == (1024, 1024)


def test_a_recording_on_a_retired_model_fails_final_with_the_model_named(settings, resources, samples):
    item = samples["en_joy"]
    rid = upload_file(settings, item["path"], "retired-model-user")
    retired = "anthropic.claude-3-haiku-20240307-v1:0"
    with DagsterInstance.ephemeral() as instance:
        instance.add_dynamic_partitions(recordings.name, [rid])
        result = materialize(ASSETS, partition_key=rid, instance=instance, raise_on_error=False,
                             resources={**resources, "analyzer": MoodAnalyzer(model_id=retired)})
    assert not result.success
    status = resources["tracker"].status.get(rid)
    assert status["stage"] == "failed" and status["error"]["code"] == MODEL_UNAVAILABLE
    assert status["error"]["retryable"] is False and retired in status["error"]["message"]


def test_batch_inference_with_nova_native_bodies(local_stack, resources):
    """Reprocessing on a Nova model: native Nova records in, validated moods out."""
    store, model_id = resources["store"], "us.amazon.nova-micro-v1:0"
    stamp = int(time.time() * 1000)
    input_key = f"batch/test-nova-{stamp}/input-000.jsonl"
    store.put_bytes(input_key, batch.input_lines([("r1", "What a wonderful, happy day", "en-US"),
                                                  ("r2", "I am furious, this is unfair", "en-US")], model_id))
    jobs = resources["batch_inference"]
    arn = jobs.submit(f"nova-{stamp}", f"tok-{stamp}", model_id, store.uri(input_key),
                      store.uri(f"batch/test-nova-{stamp}/output/"))
    assert wait_for_batch_job(jobs, arn)["status"] == "Completed"
    out = store.get_bytes(BatchInference.output_key(f"batch/test-nova-{stamp}/output", arn, input_key))
    results = {r.record_id: r for r in batch.parse_output(out, model_id)}
    assert results["r1"].mood["primary_emotion"] == "joy" and results["r2"].error is None


def test_a_batch_job_on_an_unknown_model_is_refused_at_submission(local_stack, resources):
    from botocore.exceptions import ClientError

    with pytest.raises(ClientError) as info:
        resources["batch_inference"].submit("bad", f"bad-{time.time()}", "anthropic.claude-3-haiku-20240307-v1:0",
                                            "s3://b/in.jsonl", "s3://b/out/")
    assert info.value.response["Error"]["Code"] == "ValidationException"


@pytest.fixture()
def legacy_stack(monkeypatch, request):
    """A stack of its own whose model server reports Claude Haiku 4.5 as LEGACY."""
    monkeypatch.setenv("VOMAGE_LOCAL_LEGACY_MODELS", "anthropic.claude-haiku-4-5-20251001-v1:0")
    return request.getfixturevalue("private_stack")


def test_a_legacy_model_fails_the_cli_and_the_asset_check(legacy_stack, capsys):
    assert cli.main(["models", "check"]) == 1
    captured = capsys.readouterr()
    assert f"FAIL analysis {HAIKU}" in captured.out and "LEGACY" in captured.out
    assert "ok   image" in captured.out and HAIKU in captured.err

    from vomage_dagster.definitions import defs

    job = defs.resolve_job_def("check_models")
    with DagsterInstance.ephemeral() as instance:
        result = job.execute_in_process(instance=instance, resources={
            "analyzer": MoodAnalyzer(model_id=HAIKU), "painter": ImagePainter(),
            "model_catalog": ModelCatalog()})
    assert result.success  # a failed check is a finding, not a failed run
    checks = {e.check_name: e for e in result.get_asset_check_evaluations()}
    assert set(checks) == {"mood_model_active", "image_model_active"}
    mood_check = checks["mood_model_active"]
    assert not mood_check.passed and mood_check.severity == AssetCheckSeverity.ERROR
    assert mood_check.asset_key.to_user_string() == "mood"
    assert mood_check.metadata["status"].value == "LEGACY"
    assert mood_check.metadata["end_of_life"].value != "none announced"
    assert mood_check.metadata["successor"].value == "anthropic.claude-haiku-5-5"
    assert "successor: anthropic.claude-haiku-5-5 (ACTIVE)" in mood_check.description
    assert checks["image_model_active"].passed


def test_a_content_filter_refusal_fails_the_recording_final(settings, resources, samples, monkeypatch):
    """The image model refuses the prompt: the recording ends failed, content_filtered, not retryable."""
    import base64
    import io

    from botocore.response import StreamingBody
    from botocore.stub import ANY, Stubber

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    item = samples["en_joy"]
    rid = upload_file(settings, item["path"], "filtered-user")
    # A model id of its own, so no cached image of the same prompt answers instead.
    painter = ImagePainter(model_id="stability.stable-image-core-v1:0", endpoint_url="https://stubbed.invalid")
    refusal = json.dumps({"seeds": [3], "finish_reasons": ["Filter reason: prompt"],
                          "images": [base64.b64encode(b"").decode()]}).encode()
    with DagsterInstance.ephemeral() as instance:
        instance.add_dynamic_partitions(recordings.name, [rid])
        before = materialize(ASSETS, selection=ORDER[:4], partition_key=rid, instance=instance, resources=resources)
        assert before.success
        with Stubber(painter.bedrock) as br:
            br.add_response("invoke_model", {"body": StreamingBody(io.BytesIO(refusal), len(refusal)),
                                             "contentType": "application/json"},
                            {"modelId": painter.model_id, "body": ANY, "contentType": "application/json",
                             "accept": "application/json"})
            result = materialize(ASSETS, selection=["mood_image"], partition_key=rid, instance=instance,
                                 resources={**resources, "painter": painter}, raise_on_error=False)
    assert not result.success
    error = resources["tracker"].status.get(rid)["error"]
    assert error["code"] == "content_filtered" and error["retryable"] is False
    assert "Filter reason: prompt" in error["message"]


def test_the_role_check_models_runs_as_may_list_the_models_a_successor_is_found_in(local_stack):
    """Without bedrock:ListFoundationModels the successor would silently be missing."""
    from helpers import acting_as

    from vomage_dagster.domain.models import ConfiguredModel

    with acting_as("ProcessingRunRole"):
        verdict = ModelCatalog().verdict(ConfiguredModel("analysis", HAIKU, "us-east-1"))
    assert verdict.ok and verdict.successor == "anthropic.claude-haiku-5-5"
