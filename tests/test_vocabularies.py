"""Custom vocabularies: the word lists against Transcribe's rules, the request shapes (Stubber),
the local endpoints' checks, and the real path on the local stack."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from botocore.credentials import Credentials
from botocore.stub import ANY, Stubber

from vomage_dagster.domain import vocabulary as vocab
from vomage_dagster.local.models.streaming_server import Session, check_request
from vomage_dagster.local.models.vocabularies import Vocabularies
from vomage_dagster.operations import vocabularies as ops
from vomage_dagster.resources.aws import client
from vomage_dagster.resources.speech import SpeechToText, job_name
from vomage_dagster.resources.store import ObjectStore
from vomage_dagster.settings import LANGUAGE_OPTIONS, load_settings
from vomage_dagster.streaming import presign

STUB = "https://stubbed.invalid"
SHA = "cd" * 32


@pytest.fixture(autouse=True)
def _credentials(monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")


# --- the word lists ----------------------------------------------------------------------
@pytest.mark.parametrize("language", LANGUAGE_OPTIONS)
def test_every_languages_list_is_one_transcribe_accepts(language):
    """The lists shipped with the package, checked as CI's gate: a bad entry fails here."""
    found = vocab.load(language, vocab.vocabulary_name("vomage-", language))
    assert found.phrases and found.name == f"vomage-{language}"
    assert sum(len(p.encode()) + 1 for p in found.phrases) <= vocab.MAX_VOCABULARY_BYTES


@pytest.mark.parametrize("language, phrase, why", [
    ("en-US", "Los Angeles", "space"),
    ("en-US", "C.L.I", "neither a word nor spelled letters"),
    ("en-US", "A.B.C-s", "neither a word nor spelled letters"),
    ("en-US", "V.X.-zero-2-Q.", "digit"),
    ("en-US", "mood,art", "comma"),
    ("en-US", "café", "character set"),
    ("en-US", "x" * 257, "longer than 256"),
    ("en-US", "mood--art", "empty part"),
    ("zh-CN", "心情 好", "space"),
    ("zh-CN", "emo", "character set"),
    ("ja-JP", "推し活2", "digit"),
    ("ja-JP", "mood", "character set"),
])
def test_entries_transcribe_refuses_are_named(language, phrase, why):
    found = vocab.problems(language, [phrase])
    assert len(found) == 1 and why in found[0]


@pytest.mark.parametrize("language, phrase", [
    ("en-US", "Los-Angeles"), ("en-US", "C.L.I."), ("en-US", "A.B.C.-s"), ("en-US", "Dynamo-D.B."),
    ("en-US", "V.X.-zero-two-Q."), ("en-US", "don't"), ("zh-CN", "打工人"), ("ja-JP", "モヤモヤ"), ("ja-JP", "癒やし"),
])
def test_entries_as_the_docs_write_them_pass(language, phrase):
    assert vocab.problems(language, [phrase]) == []


def test_a_list_over_fifty_kilobytes_duplicates_and_comments():
    big = ["a" * 200 + "-" + "b" * 50] * 210  # 210 × 252 bytes
    assert vocab.problems("en-US", big)[-1].endswith(f"at most {vocab.MAX_VOCABULARY_BYTES}")
    assert vocab.duplicates(["Vomage", "Vomage"]) == ["'Vomage': listed twice"]
    assert vocab.parse("# a comment\n\nVomage  # the app\nmood-art\n") == ("Vomage", "mood-art")


def test_names_come_from_the_settings_and_can_be_turned_off():
    assert load_settings({}).vocabulary_names == {"zh-CN": "vomage-zh-CN", "en-US": "vomage-en-US",
                                                 "ja-JP": "vomage-ja-JP"}
    assert load_settings({"VOMAGE_VOCABULARY_PREFIX": "off"}).vocabulary_names == {}
    with pytest.raises(vocab.InvalidVocabulary):
        load_settings({"VOMAGE_VOCABULARY_PREFIX": "bad name "})
    assert load_settings({"VOMAGE_PARTIAL_RESULTS_STABILITY": "off"}).partial_results_stability == ""
    with pytest.raises(ValueError):
        load_settings({"VOMAGE_PARTIAL_RESULTS_STABILITY": "very"})


# --- batch jobs: the request shape -----------------------------------------------------------
def _job(name):
    return {"TranscriptionJob": {"TranscriptionJobName": name, "TranscriptionJobStatus": "IN_PROGRESS"}}


def test_a_job_with_identification_names_each_languages_vocabulary():
    speech = SpeechToText(store=ObjectStore(bucket="vomage-recordings", endpoint_url=STUB), endpoint_url=STUB,
                          vocabulary_prefix="vomage-")
    name = job_name(SHA, None)
    with Stubber(speech.transcribe_client) as tr:
        tr.add_response("start_transcription_job", _job(name), {
            "TranscriptionJobName": name, "Media": ANY, "OutputBucketName": ANY, "OutputKey": ANY,
            "IdentifyLanguage": True, "LanguageOptions": ["zh-CN", "en-US", "ja-JP"],
            "LanguageIdSettings": {"zh-CN": {"VocabularyName": "vomage-zh-CN"},
                                   "en-US": {"VocabularyName": "vomage-en-US"},
                                   "ja-JP": {"VocabularyName": "vomage-ja-JP"}}})
        assert speech.start("uploads/u/r.m4a", name, None) == name
        tr.assert_no_pending_responses()


def test_a_job_in_a_known_language_names_its_vocabulary_in_settings():
    speech = SpeechToText(store=ObjectStore(bucket="vomage-recordings", endpoint_url=STUB), endpoint_url=STUB,
                          vocabulary_prefix="vomage-")
    name = job_name(SHA, "ja-JP")
    with Stubber(speech.transcribe_client) as tr:
        tr.add_response("start_transcription_job", _job(name), {
            "TranscriptionJobName": name, "Media": ANY, "OutputBucketName": ANY, "OutputKey": ANY,
            "LanguageCode": "ja-JP", "Settings": {"VocabularyName": "vomage-ja-JP"}})
        speech.start("uploads/u/r.ogg", name, "ja-JP")
        tr.assert_no_pending_responses()


# --- creating them: the request shape ---------------------------------------------------------
EN = vocab.Vocabulary("vomage-en-US", "en-US", ("Vomage", "mood-art"))
NOT_FOUND = "The requested vocabulary couldn't be found. Check the vocabulary name and try again."


def _described(state, **extra):
    return {"VocabularyName": EN.name, "LanguageCode": "en-US", "VocabularyState": state, **extra}


def test_a_missing_vocabulary_is_created_and_waited_for():
    tr = client("transcribe", "us-east-1", STUB)
    with Stubber(tr) as stub:
        stub.add_client_error("get_vocabulary", "BadRequestException", NOT_FOUND, 400)
        stub.add_response("create_vocabulary", _described("PENDING"),
                          {"VocabularyName": EN.name, "LanguageCode": "en-US", "Phrases": ["Vomage", "mood-art"]})
        stub.add_response("get_vocabulary", _described("PENDING"), {"VocabularyName": EN.name})
        stub.add_response("get_vocabulary", _described("READY"), {"VocabularyName": EN.name})
        [outcome] = ops.ensure_all(tr, [EN], timeout_s=5, poll_s=0.0)
        stub.assert_no_pending_responses()
    assert (outcome.action, outcome.state) == ("created", "READY")


@pytest.mark.parametrize("served, action", [("mood-art\nVomage\n", "unchanged"), ("Vomage\n", "updated")])
def test_a_ready_vocabulary_is_updated_only_when_its_entries_differ(served, action):
    tr = client("transcribe", "us-east-1", STUB)
    ready = _described("READY", DownloadUri="https://files.invalid/v.txt")
    with Stubber(tr) as stub:
        stub.add_response("get_vocabulary", ready, {"VocabularyName": EN.name})
        if action == "updated":
            stub.add_response("update_vocabulary", _described("PENDING"),
                              {"VocabularyName": EN.name, "LanguageCode": "en-US", "Phrases": ["Vomage", "mood-art"]})
        stub.add_response("get_vocabulary", ready, {"VocabularyName": EN.name})
        [outcome] = ops.ensure_all(tr, [EN], timeout_s=5, poll_s=0.0, fetch=lambda uri: served)
        stub.assert_no_pending_responses()
    assert outcome.action == action


def test_a_vocabulary_that_fails_stops_the_deploy_with_its_reason():
    tr = client("transcribe", "us-east-1", STUB)
    with Stubber(tr) as stub:
        stub.add_client_error("get_vocabulary", "BadRequestException", NOT_FOUND, 400)
        stub.add_response("create_vocabulary", _described("PENDING"), {"VocabularyName": ANY, "LanguageCode": ANY,
                                                                       "Phrases": ANY})
        stub.add_response("get_vocabulary", _described("FAILED", FailureReason="bad character"),
                          {"VocabularyName": EN.name})
        with pytest.raises(ops.VocabularyFailed, match="bad character"):
            ops.ensure_all(tr, [EN], timeout_s=5, poll_s=0.0)


def test_the_deploy_check_wants_every_vocabulary_ready_in_its_language():
    from vomage_dagster.operations import deploy_check

    tr = client("transcribe", "us-east-1", STUB)
    with Stubber(tr) as stub:
        stub.add_response("get_vocabulary", _described("READY"), {"VocabularyName": "vomage-en-US"})
        stub.add_response("get_vocabulary", {**_described("FAILED", FailureReason="bad entry"),
                                             "VocabularyName": "vomage-ja-JP", "LanguageCode": "ja-JP"},
                          {"VocabularyName": "vomage-ja-JP"})
        stub.add_client_error("get_vocabulary", "BadRequestException", NOT_FOUND, 400)
        probes = deploy_check.vocabularies(tr, {"en-US": "vomage-en-US", "ja-JP": "vomage-ja-JP",
                                                "zh-CN": "vomage-zh-CN"})
    assert [p.ok for p in probes] == [True, False, False]
    assert "bad entry" in probes[1].detail and "couldn't be found" in probes[2].detail


# --- streams: the URL and the local endpoint's checks ------------------------------------------
CREDS = Credentials("AKIDEXAMPLE", "secret-example")
HOST = "127.0.0.1:9999"
NAMES = {language: f"vomage-{language}" for language in LANGUAGE_OPTIONS}


def _query(params):
    url = presign.presign(f"ws://{HOST}{presign.PATH}", params, CREDS, "us-east-1")
    return url.split(HOST, 1)[1]


def _ready_store():
    store = Vocabularies(processing_s=0.0)
    for language, name in NAMES.items():
        store.create({"VocabularyName": name, "LanguageCode": language,
                      "Phrases": list(vocab.load(language, name).phrases)})
    return store


def test_the_url_names_the_vocabularies_and_asks_for_stable_partials():
    one = presign.stream_params("en-US", LANGUAGE_OPTIONS, vocabularies=NAMES, stability="high")
    assert one["vocabulary-name"] == "vomage-en-US" and "vocabulary-names" not in one
    assert one["enable-partial-results-stabilization"] == "true" and one["partial-results-stability"] == "high"
    several = presign.stream_params(None, LANGUAGE_OPTIONS, vocabularies=NAMES)
    assert several["vocabulary-names"] == "vomage-zh-CN,vomage-en-US,vomage-ja-JP"
    assert "vocabulary-name" not in several and "partial-results-stability" not in several


@pytest.mark.parametrize("changes, reason", [
    ({"vocabulary-name": "vomage-xx"}, "couldn't be found"),
    ({"vocabulary-names": "vomage-en-US"}, "needs identify-language"),
    ({"partial-results-stability": "very"}, "partial-results-stability"),
    ({"enable-partial-results-stabilization": "yes"}, "true or false"),
])
def test_the_local_endpoint_refuses_what_transcribe_refuses(changes, reason):
    store = _ready_store()
    params = {**presign.stream_params("en-US", LANGUAGE_OPTIONS, vocabularies=NAMES, stability="high"), **changes}
    with pytest.raises(presign.Refused) as err:
        check_request(_query(params), HOST, {"AKIDEXAMPLE": "secret-example"}, None, store)
    assert err.value.status == 400 and err.value.code == "BadRequestException" and reason in err.value.message
    identify = {**presign.stream_params(None, LANGUAGE_OPTIONS, vocabularies=NAMES), "vocabulary-name": "vomage-en-US"}
    with pytest.raises(presign.Refused, match="vocabulary-names"):
        check_request(_query(identify), HOST, {"AKIDEXAMPLE": "secret-example"}, None, store)


def test_a_pending_vocabulary_is_refused_until_ready():
    store = Vocabularies(processing_s=60.0)
    store.create({"VocabularyName": "vomage-en-US", "LanguageCode": "en-US", "Phrases": ["Vomage"]})
    params = presign.stream_params("en-US", LANGUAGE_OPTIONS, vocabularies={"en-US": "vomage-en-US"})
    with pytest.raises(presign.Refused, match="PENDING"):
        check_request(_query(params), HOST, {"AKIDEXAMPLE": "secret-example"}, None, store)


def test_the_local_store_fails_a_vocabulary_with_bad_entries_and_refuses_a_second_create():
    store = Vocabularies(processing_s=0.0)
    store.create({"VocabularyName": "v", "LanguageCode": "en-US", "Phrases": ["Los Angeles"]})
    found = store.get("v", "http://h")
    assert found["VocabularyState"] == "FAILED" and "space" in found["FailureReason"]
    assert found["DownloadUri"] == "http://h/vocabulary-files/v"
    with pytest.raises(Exception, match="already exists"):
        store.create({"VocabularyName": "v", "LanguageCode": "en-US", "Phrases": ["Vomage"]})


def _item(content, start, end):
    return {"Content": content, "Type": "pronunciation", "StartTime": start, "EndTime": end, "Confidence": 0.9}


def test_stable_items_settle_once_two_passes_agree_and_then_never_change():
    session = Session(None, {"language-code": "en-US", "enable-partial-results-stabilization": "true",
                             "partial-results-stability": "high"}, lambda frame: None)
    try:
        first = [_item("I'm", 0.0, 0.3), _item("so", 0.3, 0.5)]
        out = session._stabilised({"start": 0.0, "end": 0.5, "text": "I'm so", "items": first}, "en-US", 1.0)
        assert [i["Stable"] for i in out["items"]] == [False, False]  # nothing agreed yet
        second = [_item("I'm", 0.0, 0.3), _item("so", 0.3, 0.5), _item("hap", 0.5, 1.8)]
        out = session._stabilised({"start": 0.0, "end": 1.8, "text": "I'm so hap", "items": second}, "en-US", 2.0)
        assert [i["Stable"] for i in out["items"]] == [True, True, False]
        third = [_item("Im", 0.0, 0.3), _item("sew", 0.3, 0.5), _item("happy", 0.5, 1.9)]  # a pass that wavers
        out = session._stabilised({"start": 0.0, "end": 1.9, "text": "Im sew happy", "items": third}, "en-US", 3.0)
        assert [i["Content"] for i in out["items"]] == ["I'm", "so", "happy"] and out["text"] == "I'm so happy"
    finally:
        session.stop()


# --- the real path on the local stack -----------------------------------------------------------
def test_the_stack_provisioned_every_vocabulary_ready(settings, local_stack):
    tr = client("transcribe", settings.region)
    for language, name in settings.vocabulary_names.items():
        found = tr.get_vocabulary(VocabularyName=name)
        assert found["VocabularyState"] == "READY" and found["LanguageCode"] == language
        served = ops.deployed_digest(found, ops._fetch)
        assert served == vocab.load(language, name).digest
    assert local_stack["vocabularies"] == list(settings.vocabulary_names.values())


def test_vomage_deploy_vocabularies_on_the_stack_changes_nothing(local_stack):
    import os
    import subprocess
    import sys
    from pathlib import Path

    vomage = Path(sys.executable).parent / "vomage"
    out = subprocess.run([str(vomage), "deploy", "vocabularies"], capture_output=True, text=True,
                         env=dict(os.environ), timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.count("unchanged, READY") == len(LANGUAGE_OPTIONS)


def test_a_batch_job_with_an_unknown_vocabulary_is_refused(settings, local_stack):
    tr = client("transcribe", settings.region)
    base = {"Media": {"MediaFileUri": f"s3://{settings.bucket}/uploads/u/none.m4a"},
            "OutputBucketName": settings.bucket}
    with pytest.raises(tr.exceptions.BadRequestException, match="couldn't be found"):
        tr.start_transcription_job(TranscriptionJobName="vomage-vocab-unknown", LanguageCode="en-US",
                                   Settings={"VocabularyName": "vomage-xx"}, **base)
    with pytest.raises(tr.exceptions.BadRequestException, match="couldn't be found"):
        tr.start_transcription_job(TranscriptionJobName="vomage-vocab-unknown-2", IdentifyLanguage=True,
                                   LanguageOptions=["en-US", "ja-JP"],
                                   LanguageIdSettings={"en-US": {"VocabularyName": "nope"}}, **base)


def test_a_recording_transcribes_through_its_vocabulary_as_the_processing_role(resources, samples, settings):
    """The production path, with the template's grants only: the resource names the
    vocabularies, the local Transcribe (behind the stack's IAM) takes them."""
    from helpers import acting_as

    from vomage_dagster.domain.hashing import sha256_bytes

    speech = resources["speech"]
    assert speech.vocabulary_prefix == "vomage-"
    data = samples["en_joy"]["path"].read_bytes()
    key = "media/vocab-test.m4a"
    resources["store"].s3.put_object(Bucket=settings.bucket, Key=key, Body=data)
    with acting_as("ProcessingRunRole"):
        result = speech.transcribe(key, sha256_bytes(data), None)
        job = client("transcribe", settings.region).get_transcription_job(
            TranscriptionJobName=job_name(sha256_bytes(data), None))["TranscriptionJob"]
    assert result.language == "en-US" and "happy" in result.text.lower()
    assert job["LanguageIdSettings"]["en-US"] == {"VocabularyName": "vomage-en-US"}


@pytest.mark.parametrize("role", ["ProcessingRunRole", "LiveViewRole", "AppStreamingRole"])
def test_no_platform_role_may_change_a_vocabulary(settings, local_stack, role):
    """Creating and updating them is the deployer's, not a running service's."""
    from botocore.exceptions import ClientError
    from helpers import acting_as

    with acting_as(role):
        tr = client("transcribe", settings.region)
        with pytest.raises(ClientError) as err:
            tr.update_vocabulary(VocabularyName="vomage-en-US", LanguageCode="en-US", Phrases=["hijacked"])
    assert err.value.response["Error"]["Code"] == "AccessDeniedException"
    assert client("transcribe", settings.region).get_vocabulary(VocabularyName="vomage-en-US")["VocabularyState"] \
        == "READY"


@pytest.mark.slow
def test_a_stream_with_vocabulary_and_stabilisation_gives_stable_items(settings, samples):
    from vomage_dagster.domain.audio import decode
    from vomage_dagster.streaming.client import pcm16, stream
    from vomage_dagster.streaming.urls import stream_url

    url = stream_url(settings, "u-vocab", "en-US")
    assert "vocabulary-name=vomage-en-US" in url and "partial-results-stability=high" in url
    seen: list[dict] = []
    result = stream(url, pcm16(decode(samples["en_joy"]["path"].read_bytes()).samples), realtime=True,
                    on_result=seen.append)
    assert "happy" in result.transcript.lower()
    partial_items = [i for r in seen if r["IsPartial"] for i in r["Alternatives"][0]["Items"]]
    assert partial_items and all("Stable" in i for i in partial_items)
    assert any(i["Stable"] for i in partial_items), json.dumps(seen)[:2000]


def test_a_stream_naming_an_unknown_vocabulary_is_refused_at_the_handshake(settings):
    from websockets.exceptions import InvalidStatus
    from websockets.sync.client import connect

    from vomage_dagster.streaming.urls import _credentials, endpoint

    params = presign.stream_params("en-US", LANGUAGE_OPTIONS, vocabularies={"en-US": "vomage-missing"})
    url = presign.presign(endpoint(settings), params, _credentials(settings, "u"), settings.region,
                          now=dt.datetime.now(dt.UTC))
    with pytest.raises(InvalidStatus) as err:
        connect(url).close()
    assert err.value.response.status_code == 400
    assert json.loads(err.value.response.body)["code"] == "BadRequestException"
