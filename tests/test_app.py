"""The live view's API and WebSocket, served by uvicorn on the local stack: tokens, uploads
through a presigned POST, results as they come, and every refusal with a reason."""

from __future__ import annotations

import asyncio
import json
import threading

import pytest
import requests
from dagster import DagsterInstance, materialize

from vomage_dagster.app.server import app_secret
from vomage_dagster.assets.recording import ASSETS
from vomage_dagster.domain import access
from vomage_dagster.domain.keys import new_recording_id, parse_upload_key, upload_key
from vomage_dagster.ingest.planner import plan_runs
from vomage_dagster.local.aws.stack import free_port


@pytest.fixture(scope="module")
def app(settings, local_stack):
    """`vomage app` on the session's stack, as the live view's role."""
    from pathlib import Path

    from vomage_dagster.local.deployment.live_view import running_live_view

    port = free_port()
    # API response times go to CloudWatch every second here (a minute by default).
    with running_live_view(Path(local_stack["state_dir"]), port, {"VOMAGE_APP_METRICS_INTERVAL_S": "1"}) as base:
        yield {"base": base, "ws": f"ws://127.0.0.1:{port}", "secret": app_secret(settings)}


def auth(app, user: str, ttl_s: int = 300) -> dict:
    return {"Authorization": f"Bearer {access.issue(app['secret'], user, ttl_s)}"}


def upload(app, user: str, path, content_type: str = "audio/mp4", **extra) -> str:
    data = path.read_bytes()
    form = requests.post(f"{app['base']}/api/uploads", headers=auth(app, user), timeout=10,
                         json={"content_type": content_type, "size": len(data), "tz": "Europe/Paris", **extra})
    assert form.status_code == 200, form.text
    body = form.json()
    stored = requests.post(body["url"], data=body["fields"], files={"file": ("clip", data, content_type)},
                           timeout=30)
    assert stored.status_code in (200, 204), stored.text
    return body["recording_id"]


def follow(app, user: str, rid: str, timeout: float = 120) -> tuple[list[dict], int]:
    """Every message the WebSocket sends for the recording, and its close code."""
    import websockets

    async def run() -> tuple[list[dict], int]:
        token = access.issue(app["secret"], user, 300)
        messages = []
        async with websockets.connect(f"{app['ws']}/ws/recordings/{rid}?token={token}") as ws:
            try:
                while True:
                    messages.append(json.loads(await asyncio.wait_for(ws.recv(), timeout)))
            except websockets.ConnectionClosed as closed:
                return messages, closed.rcvd.code if closed.rcvd else 1006

    return asyncio.run(run())


@pytest.mark.parametrize("header", [None, "Bearer ", "Bearer alice.1.x", "Basic abc"])
def test_api_calls_without_a_valid_token_are_refused_with_a_reason(app, header):
    headers = {"Authorization": header} if header else {}
    resp = requests.get(f"{app['base']}/api/me", headers=headers, timeout=5)
    assert resp.status_code == 401 and resp.json()["error"] in ("no token", "malformed token", "bad signature")


def test_an_expired_token_and_the_page_without_one_say_why(app):
    expired = access.issue(app["secret"], "alice", ttl_s=-1)
    resp = requests.get(f"{app['base']}/api/me", headers={"Authorization": f"Bearer {expired}"}, timeout=5)
    assert resp.status_code == 401 and resp.json() == {"error": "token expired"}
    page = requests.get(f"{app['base']}/", timeout=5)
    assert page.status_code == 401 and "no token" in page.text and "Traceback" not in page.text
    ok = requests.get(f"{app['base']}/?token={access.issue(app['secret'], 'alice')}", timeout=5)
    assert ok.status_code == 200 and "MediaRecorder" in ok.text


@pytest.mark.parametrize("body, status, reason", [
    ({"content_type": "video/mp4", "size": 10}, 415, "not an audio type"),
    ({"content_type": "audio/webm", "size": 60 * 1024 * 1024}, 413, "over the"),
    ({"content_type": "audio/webm", "size": 0}, 400, "size"),
    ({"content_type": "audio/webm", "size": "12"}, 400, "size"),
    ([1, 2], 400, "JSON object"),
    ({"content_type": "audio/webm", "size": 10, "style": "watercolour"}, 400,
     "photographic, digital-art, cinematic, anime, fantasy-art"),
    ({"content_type": "audio/webm", "size": 10, "style": 3}, 400, "style must be one of"),
])
def test_uploads_of_the_wrong_type_or_size_are_refused_before_anything_is_stored(app, body, status, reason):
    resp = requests.post(f"{app['base']}/api/uploads", headers=auth(app, "alice"), json=body, timeout=5)
    assert resp.status_code == status and reason in resp.json()["error"]


def test_a_presigned_upload_is_the_users_own_key_and_metadata(app, samples, resources):
    rid = upload(app, "app-alice", samples["en_joy"]["path"])
    head = resources["store"].head(upload_key("app-alice", rid, "m4a"))
    assert head["Metadata"]["user-id"] == "app-alice" and head["Metadata"]["tz"] == "Europe/Paris"
    assert head["ContentType"] == "audio/mp4"


def test_results_come_as_they_exist_then_the_image(app, samples, resources, settings):
    from vomage_dagster.domain.audio import SAMPLE_RATE, decode
    from vomage_dagster.testing.audio_files import encode

    # Audio no other test sends, and words test_assets does not, so its caches stay cold.
    path = settings.state_dir / "app-live-view.wav"
    path.write_bytes(encode(decode(samples["en_angry"]["path"].read_bytes()).samples * 0.91, SAMPLE_RATE, "wav"))
    rid = upload(app, "app-bob", path, "audio/wav", style="fantasy-art", lat="48.85", lon="2.35")
    got: dict = {}
    def listen() -> None:
        got["messages"], got["code"] = follow(app, "app-bob", rid)

    listener = threading.Thread(target=listen)
    listener.start()
    with DagsterInstance.ephemeral() as instance:
        arrival = parse_upload_key(upload_key("app-bob", rid, "wav"))
        (request,) = plan_runs(instance, resources["tracker"], [arrival], 10).runs
        assert materialize(ASSETS, instance=instance, resources=resources, tags=request.tags,
                           partition_key=request.partition_key).success
    listener.join(timeout=120)
    messages, code = got["messages"], got["code"]
    assert code == 1000 and messages[-1]["stage"] == "complete"
    stages = [m["stage"] for m in messages]
    assert stages == sorted(stages, key=["uploaded", "transcribing", "analyzing", "generating",
                                         "complete"].index)  # never backwards
    first = {what: next(i for i, m in enumerate(messages) if what in m)
             for what in ("transcript", "mood", "image_url")}
    assert first["transcript"] <= first["mood"] <= first["image_url"]
    assert messages[-1]["transcript"]["text"] and messages[-1]["mood"]["primary_emotion"]
    # What went into the picture, and what each stage means, in the user's language.
    final = messages[-1]
    assert final["style"] == "fantasy-art" and final["context"]["style"] == "fantasy-art"
    assert final["context"]["place"] == "48.9,2.4" and final["context"]["weather"]["source"] == "open-meteo"
    assert final["context"]["time_of_day"] in ("morning", "afternoon", "evening", "night")
    assert final["message"] == "Your picture is ready." and final["language"] == "en-US"
    assert all(m.get("message") for m in messages if m["stage"] != "uploaded" or "attempt" in m)
    image = requests.get(messages[-1]["image_url"], timeout=10)
    assert image.status_code == 200 and image.content[:8] == b"\x89PNG\r\n\x1a\n"
    # The API says the same.
    view = requests.get(f"{app['base']}/api/recordings/{rid}", headers=auth(app, "app-bob"), timeout=5).json()
    assert view["stage"] == "complete" and view["transcript"] == messages[-1]["transcript"]

    # The user rates their picture; nobody else can, and only "up" or "down".
    rate = f"{app['base']}/api/recordings/{rid}/rating"
    assert requests.post(rate, json={"score": "up"}, headers=auth(app, "app-mallory"), timeout=5).status_code == 403
    bad = requests.post(rate, json={"score": "meh"}, headers=auth(app, "app-bob"), timeout=5)
    assert bad.status_code == 400 and "up" in bad.json()["error"]
    for score in ("up", "down"):  # a second rating replaces the first
        resp = requests.post(rate, json={"score": score}, headers=auth(app, "app-bob"), timeout=5)
        assert resp.status_code == 200 and resp.json()["rating"] == score, resp.text
    record = resources["records"].get(rid)
    assert record["rating"] == "down" and record["rated_at"] == resp.json()["rated_at"]


def test_api_response_times_go_to_cloudwatch_by_route_template(app, samples, resources, settings):
    import time

    import boto3

    rid = upload(app, "app-erin", samples["en_joy"]["path"])
    requests.get(f"{app['base']}/api/recordings/{rid}", headers=auth(app, "app-erin"), timeout=5)
    resp = requests.post(f"{app['base']}/api/recordings/{rid}/rating", json={"score": "up"},
                         headers=auth(app, "app-erin"), timeout=5)
    assert resp.status_code == 409 and "not complete" in resp.json()["error"]  # not published yet
    cloudwatch = boto3.client("cloudwatch", region_name=settings.region)
    deadline = time.monotonic() + 30
    while True:
        found = cloudwatch.list_metrics(Namespace="Vomage/Performance", MetricName="APIResponseTime")["Metrics"]
        routes = {d["Value"] for m in found for d in m["Dimensions"]}
        if {"POST /api/uploads", "GET /api/recordings/{recording_id}",
                "POST /api/recordings/{recording_id}/rating"} <= routes or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert {"POST /api/uploads", "GET /api/recordings/{recording_id}",
            "POST /api/recordings/{recording_id}/rating"} <= routes, routes
    assert all(m["Dimensions"][0]["Name"] == "Route" and len(m["Dimensions"]) == 1 for m in found)
    assert not any(rid in r or "app-erin" in r for r in routes)  # templates, never ids
    assert "/health" not in " ".join(routes)


def test_another_users_recording_and_an_unknown_one_are_refused(app, samples, resources):
    rid = upload(app, "app-carol", samples["en_joy"]["path"])
    # Before the ingest registers it, another user learns nothing, not even that it exists.
    resp = requests.get(f"{app['base']}/api/recordings/{rid}", headers=auth(app, "app-mallory"), timeout=5)
    assert resp.status_code == 404 and resp.json() == {"error": "unknown recording"}
    resources["tracker"].register(rid, upload_key("app-carol", rid, "m4a"))
    resp = requests.get(f"{app['base']}/api/recordings/{rid}", headers=auth(app, "app-mallory"), timeout=5)
    assert resp.status_code == 403 and resp.json() == {"error": "this recording is not yours"}
    messages, code = follow(app, "app-mallory", rid, timeout=10)
    assert code == 4403 and messages == [{"type": "error", "status": 403, "error": "this recording is not yours"}]
    messages, code = follow(app, "app-carol", "rec-never-uploaded", timeout=10)
    assert code == 4404 and messages[0]["error"] == "unknown recording"
    resp = requests.post(f"{app['base']}/api/recordings/{rid}/retry", headers=auth(app, "app-mallory"), timeout=5)
    assert resp.status_code == 403


def test_a_failed_recording_shows_its_error_and_only_a_retryable_one_retries(app, resources, tmp_path):
    bad = tmp_path / "corrupt.m4a"
    bad.write_bytes(b"\x00not audio" * 300)
    rid = upload(app, "app-dave", bad)
    with DagsterInstance.ephemeral() as instance:
        arrival = parse_upload_key(upload_key("app-dave", rid, "m4a"))
        (request,) = plan_runs(instance, resources["tracker"], [arrival], 10).runs
        materialize(ASSETS, instance=instance, resources=resources, tags=request.tags,
                    partition_key=request.partition_key, raise_on_error=False)
    messages, code = follow(app, "app-dave", rid, timeout=30)
    assert code == 1000 and messages[-1]["stage"] == "failed"
    assert messages[-1]["error"]["code"] == "undecodable" and messages[-1]["error"]["retryable"] is False
    resp = requests.post(f"{app['base']}/api/recordings/{rid}/retry", headers=auth(app, "app-dave"), timeout=5)
    assert resp.status_code == 409 and "not retryable" in resp.json()["error"]


def test_a_stream_grant_gives_a_streaming_url_and_the_transcripts_form(app, samples, resources, settings):
    from urllib.parse import urlsplit

    from vomage_dagster.domain import streamed
    from vomage_dagster.local.models import streaming_server
    from vomage_dagster.local.models.authorization import Authorizer
    from vomage_dagster.streaming import presign

    grant = requests.post(f"{app['base']}/api/streams", headers=auth(app, "u-streams"), json={"lang": "en-US"},
                          timeout=10)
    assert grant.status_code == 200, grant.text
    body = grant.json()
    parts = urlsplit(body["stream_url"])
    # Signed by the streaming role's session, and IAM (the stack's) lets that session stream.
    found = presign.read(f"http://{parts.netloc}{parts.path}?{parts.query}", parts.netloc)
    assert found.token and found.params["language-code"] == "en-US"
    streaming_server.verify(found, {}, Authorizer.from_env())
    rid = body["recording_id"]
    # The transcript form takes JSON for exactly this recording's sidecar key.
    sent = requests.post(body["sidecar"]["url"], data=body["sidecar"]["fields"],
                         files={"file": ("t.json", b'{"version": 1}', "application/json")}, timeout=10)
    assert sent.status_code in (200, 204)
    assert resources["store"].exists(streamed.sidecar_key("u-streams", rid))
    # The audio's form at the stop names the streamed recording and promises the sidecar.
    data = samples["en_joy"]["path"].read_bytes()
    form = requests.post(f"{app['base']}/api/uploads", headers=auth(app, "u-streams"), timeout=10,
                         json={"content_type": "audio/mp4", "size": len(data), "streamed": True, "recording_id": rid})
    assert form.status_code == 200 and form.json()["recording_id"] == rid
    assert form.json()["fields"]["x-amz-meta-transcript"] == "streaming"
    stored = requests.post(form.json()["url"], data=form.json()["fields"],
                           files={"file": ("clip", data, "audio/mp4")}, timeout=30)
    assert stored.status_code in (200, 204)
    again = requests.post(f"{app['base']}/api/uploads", headers=auth(app, "u-streams"), timeout=10,
                          json={"content_type": "audio/mp4", "size": 10, "streamed": True, "recording_id": rid})
    assert again.status_code == 409  # an uploaded recording is not overwritten
    bad = requests.post(f"{app['base']}/api/uploads", headers=auth(app, "u-streams"), timeout=10,
                        json={"content_type": "audio/mp4", "size": 10, "streamed": True, "recording_id": "../x"})
    assert bad.status_code == 400
    wrong = requests.post(f"{app['base']}/api/streams", headers=auth(app, "u-streams"), json={"lang": "fr-FR"},
                          timeout=10)
    assert wrong.status_code == 400 and "lang" in wrong.json()["error"]
    assert requests.post(f"{app['base']}/api/streams", timeout=10).status_code == 401


def test_behind_the_images_cdn_an_image_has_one_stable_url(resources):
    from vomage_dagster.app.views import image_url

    rid = new_recording_id()
    stable = image_url(resources["store"], rid, "https://d111111abcdef8.cloudfront.net/")
    assert stable == f"https://d111111abcdef8.cloudfront.net/processed/{rid}/image.png"
    assert stable == image_url(resources["store"], rid, "https://d111111abcdef8.cloudfront.net")
    assert "Signature=" in image_url(resources["store"], rid)  # no CDN: presigned
