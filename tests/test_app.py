"""The live view's API and WebSocket, served by uvicorn on the local stack: sign-in through
the stack's Cognito user pool and its real tokens, uploads through a presigned POST,
results as they come, the user's own feed, and every refusal with a reason."""

from __future__ import annotations

import asyncio
import json
import threading
import time

import pytest
import requests
from dagster import DagsterInstance, materialize

from vomage_dagster.app.sign_in import Tokens
from vomage_dagster.assets.recording import ASSETS
from vomage_dagster.domain.keys import new_recording_id, parse_upload_key, upload_key
from vomage_dagster.ingest.planner import plan_runs
from vomage_dagster.local.aws.stack import free_port
from vomage_dagster.local.client.user_pool import sign_in_as

# Each test user signs in once per module (the pool's tokens last an hour).
_SIGNED_IN: dict[str, Tokens] = {}


@pytest.fixture(scope="module")
def app(settings, local_stack):
    """`vomage app` on the session's stack, as the live view's role."""
    from pathlib import Path

    from vomage_dagster.local.deployment.live_view import running_live_view

    port = free_port()
    # API response times go to CloudWatch every second here (a minute by default).
    with running_live_view(Path(local_stack["state_dir"]), port, {"VOMAGE_APP_METRICS_INTERVAL_S": "1"}) as base:
        yield {"base": base, "ws": f"ws://127.0.0.1:{port}", "settings": settings}


def signed_in(app, user: str) -> Tokens:
    """`user` made in the stack's pool and signed in, as the page signs in."""
    if user not in _SIGNED_IN:
        _SIGNED_IN[user] = sign_in_as(app["settings"], user)
    return _SIGNED_IN[user]


def uid(app, user: str) -> str:
    """The platform's id of `user`: their token's `sub`, which their upload keys carry."""
    return signed_in(app, user).user_id


def auth(app, user: str) -> dict:
    return {"Authorization": f"Bearer {signed_in(app, user).access_token}"}


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


def follow(app, user: str, rid: str, timeout: float = 120,
           token_override: str | None = None) -> tuple[list[dict], int]:
    """Every message the WebSocket sends for the recording, and its close code."""
    import websockets

    async def run() -> tuple[list[dict], int]:
        token = signed_in(app, user).access_token if token_override is None else token_override
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
    assert resp.status_code == 401 and resp.json()["error"] in ("no token", "malformed token")


def _moto_pool_key():
    """The private key moto signs every pool's tokens with (public in moto's package): a
    token signed with it is one the stack's pool could have issued."""
    import jwt
    from moto.utilities.utils import load_resource

    return jwt.algorithms.RSAAlgorithm.from_jwk(json.dumps(load_resource("cognitoidp/resources/jwks-private.json")))


def _pool_token(app, key=None, kid: str = "dummy", **claims) -> str:
    import jwt

    real = jwt.decode(signed_in(app, "app-alice").access_token, options={"verify_signature": False})
    return jwt.encode({**real, **claims}, key or _moto_pool_key(), algorithm="RS256", headers={"kid": kid})


def test_forged_expired_and_foreign_tokens_are_refused_with_their_reason(app, settings):
    import boto3
    from cryptography.hazmat.primitives.asymmetric import rsa

    from vomage_dagster.app.sign_in import password_sign_in
    from vomage_dagster.local.aws import stack
    from vomage_dagster.local.client.user_pool import new_password

    me = requests.get(f"{app['base']}/api/me", headers=auth(app, "app-alice"), timeout=5)
    assert me.status_code == 200 and me.json()["user_id"] == uid(app, "app-alice")
    assert me.json()["username"] == "app-alice"
    another_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    # Another pool of the same moto: its token is genuine, and not this app's.
    info = stack.read_info(settings)
    idp = boto3.client("cognito-idp", region_name=settings.region,
                       endpoint_url=f"http://127.0.0.1:{info['ports']['moto']}", aws_access_key_id="testing",
                       aws_secret_access_key="testing")
    other = idp.create_user_pool(PoolName="not-the-app")["UserPool"]["Id"]
    other_client = idp.create_user_pool_client(UserPoolId=other, ClientName="x",
                                               ExplicitAuthFlows=["ALLOW_USER_PASSWORD_AUTH"])
    password = new_password()
    idp.admin_create_user(UserPoolId=other, Username="eve", MessageAction="SUPPRESS")
    idp.admin_set_user_password(UserPoolId=other, Username="eve", Password=password, Permanent=True)
    foreign = password_sign_in(settings.region, other_client["UserPoolClient"]["ClientId"], "eve", password)
    cases = {
        _pool_token(app, exp=int(time.time()) - 60): "token expired",
        _pool_token(app, key=another_key): "bad signature",
        _pool_token(app, key=another_key, kid="not-the-pools"): "token signed by an unknown key",
        _pool_token(app, client_id="another-client"): "token for another app client",
        _pool_token(app, token_use="id"): "not an access token",
        foreign.access_token: "token from another user pool",
    }
    for token, reason in cases.items():
        resp = requests.get(f"{app['base']}/api/me", headers={"Authorization": f"Bearer {token}"}, timeout=5)
        assert resp.status_code == 401 and resp.json() == {"error": reason}, (reason, resp.text)
    # The WebSocket says the same, then closes with 4401.
    messages, code = follow(app, "app-alice", "rec-any", timeout=10, token_override=foreign.access_token)
    assert code == 4401 and messages == [{"type": "error", "status": 401, "error": "token from another user pool"}]


def test_the_page_signs_in_with_a_username_and_password_and_the_user_is_written_once(app, settings):
    from vomage_dagster.local.client.user_pool import new_password, set_user
    from vomage_dagster.resources.users import UsersTable

    page = requests.get(f"{app['base']}/", timeout=5)
    assert page.status_code == 200 and 'id="sign-in"' in page.text and "MediaRecorder" in page.text
    password = new_password()
    set_user(settings, "app-frank", password)
    wrong = requests.post(f"{app['base']}/api/sign-in", json={"username": "app-frank", "password": "nope-123456"},
                          timeout=10)
    assert wrong.status_code == 401 and wrong.json() == {"error": "wrong username or password"}
    assert requests.post(f"{app['base']}/api/sign-in", json=[1], timeout=10).status_code == 400
    users = UsersTable(table_name=settings.users_table, region_name=settings.region)
    firsts = []
    for _ in range(2):
        resp = requests.post(f"{app['base']}/api/sign-in", json={"username": "app-frank", "password": password},
                             timeout=10)
        assert resp.status_code == 200, resp.text
        body = resp.json()
        assert body["username"] == "app-frank" and body["access_token"].count(".") == 2
        me = requests.get(f"{app['base']}/api/me", headers={"Authorization": f"Bearer {body['access_token']}"},
                          timeout=5)
        assert me.json()["user_id"] == body["user_id"]
        item = users.get(body["user_id"])
        assert item["username"] == "app-frank"
        firsts.append(item["first_sign_in_at"])
    assert firsts[0] == firsts[1]  # written at the first sign-in only
    assert [u["user_id"] for u in users.by_username("app-frank")] == [body["user_id"]]


def test_vomage_app_token_prints_a_pool_token_the_live_view_takes(app):
    import os
    import subprocess
    import sys
    from pathlib import Path

    vomage = str(Path(sys.executable).parent / "vomage")
    done = subprocess.run([vomage, "app", "token", "--user", "app-ivan", "--json"], env=dict(os.environ),
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    tokens = json.loads(done.stdout)
    assert "app-ivan's password" in done.stderr and tokens["username"] == "app-ivan"
    me = requests.get(f"{app['base']}/api/me", headers={"Authorization": f"Bearer {tokens['access_token']}"},
                      timeout=5)
    assert me.status_code == 200 and me.json()["user_id"] == tokens["user_id"]
    url = subprocess.run([vomage, "app", "token", "--user", "app-ivan", "--url"], env=dict(os.environ),
                         capture_output=True, text=True, timeout=60).stdout.strip()
    assert url.startswith("http://127.0.0.1:8000/?token=") and url.count(".") >= 5


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
    head = resources["store"].head(upload_key(uid(app, "app-alice"), rid, "m4a"))
    assert head["Metadata"]["user-id"] == uid(app, "app-alice") and head["Metadata"]["tz"] == "Europe/Paris"
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
        arrival = parse_upload_key(upload_key(uid(app, "app-bob"), rid, "wav"))
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
    # The user's feed shows it complete, with its mood and a thumbnail that loads.
    mine = requests.get(f"{app['base']}/api/recordings", headers=auth(app, "app-bob"), timeout=5).json()
    (entry,) = [e for e in mine["recordings"] if e["recording_id"] == rid]
    assert entry["stage"] == "complete" and entry["mood"]["primary_emotion"]
    thumb = requests.get(entry["thumbnail_url"], timeout=10)
    assert thumb.status_code == 200 and thumb.content[:8] == b"\x89PNG\r\n\x1a\n"


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
    assert not any(rid in r or uid(app, "app-erin") in r for r in routes)  # templates, never ids
    assert "/health" not in " ".join(routes)


def test_another_users_recording_and_an_unknown_one_are_refused(app, samples, resources):
    rid = upload(app, "app-carol", samples["en_joy"]["path"])
    # Before the ingest registers it, another user learns nothing, not even that it exists.
    resp = requests.get(f"{app['base']}/api/recordings/{rid}", headers=auth(app, "app-mallory"), timeout=5)
    assert resp.status_code == 404 and resp.json() == {"error": "unknown recording"}
    resources["tracker"].register(rid, upload_key(uid(app, "app-carol"), rid, "m4a"))
    resp = requests.get(f"{app['base']}/api/recordings/{rid}", headers=auth(app, "app-mallory"), timeout=5)
    assert resp.status_code == 403 and resp.json() == {"error": "this recording is not yours"}
    messages, code = follow(app, "app-mallory", rid, timeout=10)
    assert code == 4403 and messages == [{"type": "error", "status": 403, "error": "this recording is not yours"}]
    messages, code = follow(app, "app-carol", "rec-never-uploaded", timeout=10)
    assert code == 4404 and messages[0]["error"] == "unknown recording"
    resp = requests.post(f"{app['base']}/api/recordings/{rid}/retry", headers=auth(app, "app-mallory"), timeout=5)
    assert resp.status_code == 403


def test_the_feed_lists_only_ones_own_recordings_newest_first(app, samples, resources):
    rids = []
    for _ in range(3):
        rid = upload(app, "app-gina", samples["en_joy"]["path"])
        # As the ingest registers an upload (its status item: user, time).
        resources["tracker"].register(rid, upload_key(uid(app, "app-gina"), rid, "m4a"))
        rids.append(rid)
        time.sleep(0.01)
    theirs = upload(app, "app-hank", samples["en_joy"]["path"])
    resources["tracker"].register(theirs, upload_key(uid(app, "app-hank"), theirs, "m4a"))
    resp = requests.get(f"{app['base']}/api/recordings", headers=auth(app, "app-gina"), timeout=5)
    assert resp.status_code == 200, resp.text
    listed = resp.json()["recordings"]
    assert [e["recording_id"] for e in listed] == rids[::-1]  # newest first, none of another's
    assert all(e["stage"] == "uploaded" and "thumbnail_url" not in e for e in listed)
    two = requests.get(f"{app['base']}/api/recordings?limit=2", headers=auth(app, "app-gina"), timeout=5).json()
    assert [e["recording_id"] for e in two["recordings"]] == rids[::-1][:2]
    bad = requests.get(f"{app['base']}/api/recordings?limit=0", headers=auth(app, "app-gina"), timeout=5)
    assert bad.status_code == 400 and "limit" in bad.json()["error"]
    assert requests.get(f"{app['base']}/api/recordings", timeout=5).status_code == 401
    # Another's recording stays refused by id too.
    other = requests.get(f"{app['base']}/api/recordings/{theirs}", headers=auth(app, "app-gina"), timeout=5)
    assert other.status_code == 403


def test_a_failed_recording_shows_its_error_and_only_a_retryable_one_retries(app, resources, tmp_path):
    bad = tmp_path / "corrupt.m4a"
    bad.write_bytes(b"\x00not audio" * 300)
    rid = upload(app, "app-dave", bad)
    with DagsterInstance.ephemeral() as instance:
        arrival = parse_upload_key(upload_key(uid(app, "app-dave"), rid, "m4a"))
        (request,) = plan_runs(instance, resources["tracker"], [arrival], 10).runs
        materialize(ASSETS, instance=instance, resources=resources, tags=request.tags,
                    partition_key=request.partition_key, raise_on_error=False)
    messages, code = follow(app, "app-dave", rid, timeout=30)
    assert code == 1000 and messages[-1]["stage"] == "failed"
    assert messages[-1]["error"]["code"] == "undecodable" and messages[-1]["error"]["retryable"] is False
    resp = requests.post(f"{app['base']}/api/recordings/{rid}/retry", headers=auth(app, "app-dave"), timeout=5)
    assert resp.status_code == 409 and "not retryable" in resp.json()["error"]
    # The feed shows it failed, with its error and no thumbnail.
    listed = requests.get(f"{app['base']}/api/recordings", headers=auth(app, "app-dave"), timeout=5).json()
    (entry,) = [e for e in listed["recordings"] if e["recording_id"] == rid]
    assert entry["stage"] == "failed" and entry["error"]["code"] == "undecodable" and "thumbnail_url" not in entry


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
    assert resources["store"].exists(streamed.sidecar_key(uid(app, "u-streams"), rid))
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


def test_a_stream_opened_and_never_uploaded_holds_nothing(app, resources):
    """The user streamed and put the words, then never uploaded: no recording exists (no
    status, nothing launched), the words alone are no recording, and following it is refused."""
    grant = requests.post(f"{app['base']}/api/streams", headers=auth(app, "u-gone"), json={"lang": "en-US"},
                          timeout=10).json()
    rid = grant["recording_id"]
    sent = requests.post(grant["sidecar"]["url"], data=grant["sidecar"]["fields"],
                         files={"file": ("t.json", b'{"version": 1}', "application/json")}, timeout=10)
    assert sent.status_code in (200, 204)
    assert resources["tracker"].status.get(rid) is None
    assert requests.get(f"{app['base']}/api/recordings/{rid}", headers=auth(app, "u-gone"),
                        timeout=5).status_code == 404
    assert requests.post(f"{app['base']}/api/recordings/{rid}/uploaded", headers=auth(app, "u-gone"),
                         timeout=5).status_code == 404  # a notice for it sends nothing
    messages, code = follow(app, "u-gone", rid, timeout=10)
    assert code == 4404 and messages[-1]["status"] == 404


def test_behind_the_images_cdn_an_image_has_one_stable_url(resources):
    from vomage_dagster.app.views import image_url

    rid = new_recording_id()
    stable = image_url(resources["store"], rid, "https://d111111abcdef8.cloudfront.net/")
    assert stable == f"https://d111111abcdef8.cloudfront.net/processed/{rid}/image.png"
    assert stable == image_url(resources["store"], rid, "https://d111111abcdef8.cloudfront.net")
    assert "Signature=" in image_url(resources["store"], rid)  # no CDN: presigned


def test_the_pages_upload_notice_queues_the_recording_only_for_its_own_upload(app, samples, resources, settings):
    """After its upload the page tells the platform it is stored (the run need not wait for
    S3's notification); a notice for no upload, or for another user's, sends nothing."""
    from vomage_dagster.domain.messages import parse_message
    from vomage_dagster.resources.aws import client

    rid = upload(app, "app-dave", samples["en_joy"]["path"])
    notice = f"{app['base']}/api/recordings/{rid}/uploaded"
    assert requests.post(notice, headers=auth(app, "app-mallory"), timeout=5).status_code == 404
    assert requests.post(f"{app['base']}/api/recordings/rec-20261207000000-00000000/uploaded",
                         headers=auth(app, "app-dave"), timeout=5).status_code == 404
    assert requests.post(notice, timeout=5).status_code == 401
    resp = requests.post(notice, headers=auth(app, "app-dave"), timeout=5)
    assert resp.status_code == 200 and resp.json() == {"recording_id": rid, "noticed": True}

    # On the uploads queue: the app's notice, the first attempt of the user's own upload.
    sqs, queue = client("sqs", settings.region), resources["queue"]
    seen, found = [], []
    for _ in range(30):
        got = sqs.receive_message(QueueUrl=queue.url(), MaxNumberOfMessages=10, WaitTimeSeconds=1,
                                  VisibilityTimeout=30).get("Messages", [])
        seen += got
        found = [a for m in got for a in parse_message(m["Body"], resources["store"].bucket)
                 if a.recording_id == rid and a.source == "app"]
        if found:
            break
    for m in seen:  # back for whoever else reads the queue
        sqs.change_message_visibility(QueueUrl=queue.url(), ReceiptHandle=m["ReceiptHandle"], VisibilityTimeout=0)
    assert [(a.upload.user_id, a.attempt) for a in found] == [(uid(app, "app-dave"), 1)]
