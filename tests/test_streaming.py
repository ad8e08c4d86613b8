"""Transcribe streaming: the event-stream codec and presigned URLs (pure), then the local
model server's WebSocket endpoint driven by the project's client and by raw frames."""

from __future__ import annotations

import datetime as dt
import json
import struct
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import pytest
from botocore.credentials import Credentials

from vomage_dagster.domain.audio import decode
from vomage_dagster.streaming import event_stream, presign
from vomage_dagster.streaming.client import StreamError, pcm16, stream
from vomage_dagster.streaming.urls import stream_url

CREDS = Credentials("AKIDEXAMPLE", "secret-example")
SECRETS = {"AKIDEXAMPLE": "secret-example"}
ENDPOINT = "ws://127.0.0.1:9999/stream-transcription-websocket"
HOST = "127.0.0.1:9999"


# --- event-stream frames -----------------------------------------------------------------
def test_frames_round_trip():
    frame = event_stream.audio_event(b"\x01\x02" * 100)
    msg = event_stream.decode(frame)
    assert msg.message_type == "event" and msg.event_type == "AudioEvent" and msg.payload == b"\x01\x02" * 100
    out = event_stream.decode(event_stream.transcript_event([{"ResultId": "r", "IsPartial": True}]))
    assert out.json()["Transcript"]["Results"][0]["ResultId"] == "r"
    exc = event_stream.decode(event_stream.exception_event("BadRequestException", "no"))
    assert exc.message_type == "exception" and exc.event_type == "BadRequestException"


@pytest.mark.parametrize("damage", ["crc", "truncated", "two", "prelude", "empty"])
def test_malformed_frames_are_refused(damage):
    frame = event_stream.audio_event(b"abcd")
    bad = {"crc": frame[:-1] + bytes([frame[-1] ^ 1]), "truncated": frame[:-3], "two": frame + frame,
           "prelude": struct.pack("!I", 10**6) + frame[4:], "empty": b""}[damage]
    with pytest.raises(event_stream.FrameError):
        event_stream.decode(bad)


# --- presigned URLs ------------------------------------------------------------------------
def signed(expires=300, now=None, params=None):
    return presign.presign(ENDPOINT, params or presign.stream_params("en-US", ("en-US", "ja-JP")), CREDS,
                           "us-east-1", expires, now)


def check(url, now=None):
    parts = urlsplit(url)
    return presign.check(f"http://{HOST}{parts.path}?{parts.query}", HOST, SECRETS, now)


def test_a_presigned_url_checks_and_carries_its_parameters():
    url = signed()
    assert url.startswith("ws://127.0.0.1:9999/stream-transcription-websocket?")
    query = dict(parse_qsl(urlsplit(url).query))
    assert query["X-Amz-Credential"].endswith("/us-east-1/transcribe/aws4_request")
    assert query["X-Amz-Expires"] == "300" and query["sample-rate"] == "16000"
    checked = check(url)
    assert checked.params["language-code"] == "en-US" and checked.access_key == "AKIDEXAMPLE"


def test_the_aws_url_is_transcribes_endpoint():
    url = presign.presign(presign.aws_endpoint("eu-west-1"), presign.stream_params(None, ("en-US", "ja-JP")),
                          Credentials("AK", "SK", "TOKEN"), "eu-west-1")
    parts = urlsplit(url)
    assert parts.scheme == "wss" and parts.netloc == "transcribestreaming.eu-west-1.amazonaws.com:8443"
    query = dict(parse_qsl(parts.query))
    assert query["X-Amz-Security-Token"] == "TOKEN" and query["identify-language"] == "true"
    assert query["language-options"] == "en-US,ja-JP"


def _replace(url, **changes):
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query))
    query.update(changes)
    return urlunsplit(parts._replace(query=urlencode(query)))


@pytest.mark.parametrize("case, code", [
    ("expired", "AccessDeniedException"),
    ("forged signature", "InvalidSignatureException"),
    ("parameter changed after signing", "InvalidSignatureException"),
    ("other secret", "InvalidSignatureException"),
    ("unknown key", "UnrecognizedClientException"),
    ("no signature", "AccessDeniedException"),
])
def test_bad_urls_are_refused(case, code):
    url, now = signed(), None
    if case == "expired":
        now = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=301)
    elif case == "forged signature":
        url = _replace(url, **{"X-Amz-Signature": "0" * 64})
    elif case == "parameter changed after signing":
        url = _replace(url, **{"sample-rate": "8000"})
    elif case == "other secret":
        url = presign.presign(ENDPOINT, presign.stream_params("en-US", ("en-US",)),
                              Credentials("AKIDEXAMPLE", "guessed"), "us-east-1")
    elif case == "unknown key":
        url = presign.presign(ENDPOINT, presign.stream_params("en-US", ("en-US",)),
                              Credentials("AKIDOTHER", "x"), "us-east-1")
    else:
        parts = urlsplit(url)
        url = urlunsplit(parts._replace(query="&".join(p for p in parts.query.split("&")
                                                       if not p.startswith("X-Amz-Signature"))))
    with pytest.raises(presign.Refused) as err:
        check(url, now)
    assert err.value.status == 403 and err.value.code == code


def test_a_url_valid_for_longer_than_transcribe_allows_is_not_made():
    with pytest.raises(ValueError):
        signed(expires=301)


# --- the local endpoint ----------------------------------------------------------------------
@pytest.fixture(scope="module")
def pcm(samples):
    return {name: pcm16(decode(item["path"].read_bytes()).samples) for name, item in samples.items()}


def test_streaming_a_recording_gives_partial_then_final_results(settings, samples, pcm):
    seen = []
    result = stream(stream_url(settings, "u-stream", "en-US"), pcm["en_joy"], realtime=True, on_result=seen.append)
    assert result.language == "en-US" and "happy" in result.transcript.lower()
    assert result.partials >= 1 and result.finals and not seen[-1]["IsPartial"]
    assert [r["IsPartial"] for r in seen].index(False) > 0  # partial results came first
    final = result.finals[-1]
    assert final["EndTime"] <= result.audio_seconds + 0.5 and final["Alternatives"][0]["Items"]


def test_language_identification_over_the_apps_languages(settings, pcm):
    result = stream(stream_url(settings, "u-stream"), pcm["ja_tired"], realtime=False)
    assert result.language == "ja-JP" and result.transcript


def _raw(url, frames):
    """Open `url`, send raw WebSocket messages, return every frame the server sent back."""
    from websockets.exceptions import ConnectionClosed
    from websockets.sync.client import connect

    got = []
    with connect(url, compression=None) as ws:
        for f in frames:
            ws.send(f)
        try:
            for raw in ws:
                got.append(event_stream.decode(raw))
        except ConnectionClosed:
            pass
    return got


def test_a_malformed_frame_ends_the_stream_with_an_exception(settings):
    frame = event_stream.audio_event(b"\x00\x01" * 800)
    got = _raw(stream_url(settings, "u-stream", "en-US"), [frame, frame[:-1] + b"\x00"])
    assert got[-1].message_type == "exception" and got[-1].event_type == "BadRequestException"
    assert "malformed" in got[-1].json()["Message"]


@pytest.mark.parametrize("frame, reason", [
    (event_stream.encode({":message-type": "event", ":event-type": "ConfigurationEvent"}, b"{}"), "AudioEvent"),
    (event_stream.audio_event(b"\x00" * 3), "16-bit"),
    ("text", "binary"),
])
def test_frames_that_are_not_audio_are_refused(settings, frame, reason):
    got = _raw(stream_url(settings, "u-stream", "en-US"), [frame])
    assert got[-1].message_type == "exception" and reason in got[-1].json()["Message"]


def _handshake(url):
    from websockets.exceptions import InvalidStatus
    from websockets.sync.client import connect

    with pytest.raises(InvalidStatus) as err:
        connect(url).close()
    return err.value.response.status_code, json.loads(err.value.response.body)


def test_bad_urls_are_refused_at_the_handshake(settings, local_stack):
    url = stream_url(settings, "u-stream", "en-US")
    assert _handshake(_replace(url, **{"X-Amz-Signature": "f" * 64}))[0] == 403
    expired = presign.presign(url.split("?")[0], presign.stream_params("en-US", ("en-US",)),
                              Credentials("testing", "testing"), settings.region, 300,
                              dt.datetime.now(dt.UTC) - dt.timedelta(seconds=400))
    status, body = _handshake(expired)
    assert status == 403 and "expired" in body["message"]


def test_a_wrong_sample_rate_is_refused_with_the_reason(settings):
    from vomage_dagster.streaming.urls import _credentials, endpoint

    params = {**presign.stream_params("en-US", ("en-US",)), "sample-rate": "44100"}
    url = presign.presign(endpoint(settings), params, _credentials(settings, "u"), settings.region)
    status, body = _handshake(url)
    assert status == 400 and "16000" in body["message"]


def test_a_stream_cut_mid_way_leaves_the_endpoint_serving(settings, pcm):
    with pytest.raises(StreamError) as err:
        stream(stream_url(settings, "u-stream", "en-US"), pcm["en_joy"], realtime=False, cut_after_s=1.0)
    assert err.value.code == "StreamCut"
    again = stream(stream_url(settings, "u-stream", "en-US"), pcm["en_joy"], realtime=False)
    assert "happy" in again.transcript.lower()


def test_vomage_stream_url_prints_a_url_the_endpoint_accepts(local_stack):
    import os
    import subprocess
    import sys
    from pathlib import Path

    vomage = Path(sys.executable).parent / "vomage"
    out = subprocess.run([str(vomage), "stream-url", "--user", "u-cli", "--lang", "ja-JP"], capture_output=True,
                         text=True, check=True, env=dict(os.environ), timeout=60).stdout.strip()
    parts = urlsplit(out)
    from vomage_dagster.local.models.authorization import Authorizer
    from vomage_dagster.local.models.streaming_server import check_request

    params = check_request(f"{parts.path}?{parts.query}", parts.netloc, {}, Authorizer.from_env())
    assert params["language-code"] == "ja-JP" and "u-cli" not in out  # no user id in the URL
    bad = subprocess.run([str(vomage), "stream-url", "--user", "../x"], capture_output=True, text=True,
                         env=dict(os.environ), timeout=60)
    assert bad.returncode == 2 and "user id" in bad.stderr


def test_a_users_streaming_session_is_reused_while_it_outlives_a_url(settings, local_stack, pcm):
    """One STS session per user while it lasts, not one per recording; a session too close
    to its end to outlive a URL signed now is replaced."""
    import os

    from vomage_dagster.streaming import urls

    assert os.environ.get(urls.ROLE_ENV)  # the stack's streaming role, as on AWS

    def key_id(url: str) -> str:
        return dict(parse_qsl(urlsplit(url).query))["X-Amz-Credential"].split("/")[0]

    first, again = stream_url(settings, "u-session", "en-US"), stream_url(settings, "u-session", "en-US")
    other = stream_url(settings, "u-session-2", "en-US")
    assert key_id(first) == key_id(again) != key_id(other)
    result = stream(again, pcm["en_joy"][: 16_000 * 2 * 2])  # the reused session's URL is accepted
    assert result.audio_seconds > 1
    near_end = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=urls.SESSION_S) - urls.KEEP_MARGIN
    assert urls._credentials(settings, "u-session", now=near_end).access_key != key_id(first)
