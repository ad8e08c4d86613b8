"""The live view's routes (Starlette): the page, sign-in, the upload form, the user's
feed, status, retry, the image's rating, and a WebSocket per recording fed by Redis
through the process's one subscription (`hub.py`, `follow.py`). Every API call's time
goes to CloudWatch by route (`metrics.py`, `timing.py`); each user's calls are limited
per process (`limits.py`: 429 with Retry-After past the rate).

The page and its sign-in (`POST /api/sign-in`, relayed to the app's Cognito user pool,
`sign_in.py`) are open; every other route but the health check wants an access token of
that pool (`auth.Verifier`): `Authorization: Bearer` on the API, `?token=` on the
WebSocket (a browser cannot set headers there). A user's first checked token writes
their item in the users table (once: a conditional put). A refusal is an HTTP status
with a JSON `{"error": reason}` (on the WebSocket, an `error` message then a close code:
4401 token, 4403 not yours, 4404 unknown), never a traceback.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import logging
from collections.abc import AsyncIterator
from pathlib import Path

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from vomage_dagster.app import feed, ratings, views
from vomage_dagster.app.auth import AuthError, Identity, KeysUnavailable, Verifier
from vomage_dagster.app.follow import Abortable, Followers, refuse
from vomage_dagster.app.hub import StatusHub
from vomage_dagster.app.limits import RateLimiter, retry_after
from vomage_dagster.app.metrics import ApiMetrics
from vomage_dagster.app.sign_in import SignInError, password_sign_in
from vomage_dagster.app.timing import Timed
from vomage_dagster.domain.keys import RECORDING_ID, new_recording_id
from vomage_dagster.operations.retry import retry
from vomage_dagster.resources.build import build_resources
from vomage_dagster.resources.cache import redis_tls_options
from vomage_dagster.resources.store import ObjectStore
from vomage_dagster.resources.tracker import ProcessingTracker
from vomage_dagster.resources.users import UsersTable
from vomage_dagster.settings import LANGUAGE_OPTIONS, Settings
from vomage_dagster.streaming.urls import stream_url
from vomage_dagster.telemetry import tracing

log = logging.getLogger("vomage.app")
PAGE = Path(__file__).with_name("page.html")
# With Redis unreachable the live view polls the status table instead, this often.
POLL_S = 1.0
# Users whose item this process has written (or found) already: no write per request.
KNOWN_USERS = 100_000


async def json_object(request: Request) -> dict:
    """The request's body as a JSON object; 400 saying what it is not."""
    try:
        body = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise views.Refused(400, "the body must be JSON") from None
    if not isinstance(body, dict):
        raise views.Refused(400, "the body must be a JSON object")
    return body


def create_app(settings: Settings, metrics: ApiMetrics | None = None) -> Timed:
    """The live view; `metrics`: where API response times go (default: CloudWatch, every
    `app_metrics_interval_s`)."""
    resources = build_resources(settings)
    verifier = Verifier(settings.region, settings.user_pool_id, settings.user_pool_client_id)
    users = UsersTable(table_name=settings.users_table, region_name=settings.region)
    known: dict[str, None] = {}  # insertion-ordered: the oldest is forgotten first
    first_writes: dict[str, asyncio.Task] = {}
    records = resources["records"]
    metrics = metrics or ApiMetrics(settings.region, settings.app_metrics_interval_s)
    store: ObjectStore = resources["store"]
    tracker: ProcessingTracker = resources["tracker"]
    status = tracker.status
    queue = resources["queue"]
    limiter = RateLimiter(settings.api_rate_per_s, settings.api_burst)
    hub = StatusHub(status.get_many, lambda item: views.render(store, item, settings.images_base_url),
                    settings.redis_url, redis_tls_options(settings.redis_url, settings.redis_password or None,
                                                          settings.redis_ca_file or None), poll_s=POLL_S,
                    read_one=status.get)
    followers = Followers(hub)

    async def grant(token: str | None) -> Identity:
        """The token's user (401 with the reason, 503 if the pool's keys cannot be read),
        their item written in the users table at the first token this process sees."""
        try:
            who = (await asyncio.to_thread(verifier.verify, token) if verifier.would_fetch(token)
                   else verifier.verify(token))
        except AuthError as exc:
            raise views.Refused(401, str(exc)) from None
        except KeysUnavailable:
            raise views.Refused(503, "sign-in cannot be checked right now; try again") from None
        if who.user_id not in known:
            # One write however many of the user's calls (a page's sockets) arrive at once.
            writing = first_writes.get(who.user_id)
            if writing is None:
                writing = first_writes[who.user_id] = asyncio.get_running_loop().create_task(
                    asyncio.to_thread(users.first_sign_in, who.user_id, who.username))
                writing.add_done_callback(lambda _: first_writes.pop(who.user_id, None))
            try:
                await asyncio.shield(writing)
            except Exception as exc:  # noqa: BLE001 - not the caller's fault; tried at their next call
                log.warning("the users table was not written (%s)", type(exc).__name__)
                return who
            known[who.user_id] = None
            if len(known) > KNOWN_USERS:
                known.pop(next(iter(known)))
        return who

    async def bearer(request: Request) -> Identity:
        """The caller, within their rate (429 past it)."""
        header = request.headers.get("authorization", "")
        who = await grant(header[7:].strip() if header.lower().startswith("bearer ") else None)
        wait = limiter.take(who.user_id)
        if wait > 0:
            raise views.Refused(429, "too many requests; slow down", {"Retry-After": retry_after(wait)})
        return who

    def recording_id(request_or_ws: Request | WebSocket) -> str:
        rid = request_or_ws.path_params["recording_id"]
        if not RECORDING_ID.fullmatch(rid):
            raise views.Refused(404, "unknown recording")
        return rid

    async def page(request: Request) -> Response:
        """Open to all: the page signs its user in itself (a form, or `?token=` for tools)."""
        return HTMLResponse(PAGE.read_text())

    async def sign_in(request: Request) -> Response:
        """Username and password → the pool's tokens (relayed to Cognito; nothing kept)."""
        body = await json_object(request)
        username, password = str(body.get("username") or "")[:128], str(body.get("password") or "")[:256]
        try:
            tokens = await asyncio.to_thread(password_sign_in, settings.region, settings.user_pool_client_id,
                                             username, password)
        except SignInError as exc:
            raise views.Refused(exc.status, exc.reason) from None
        who = await grant(tokens.access_token)  # checked as any token; the first sign-in written
        return JSONResponse({"access_token": tokens.access_token, "id_token": tokens.id_token,
                             "expires_in": tokens.expires_in, "user_id": who.user_id, "username": who.username})

    async def me(request: Request) -> Response:
        who = await bearer(request)
        return JSONResponse({"user_id": who.user_id, "username": who.username, "expires_at": who.expires_at})

    async def own_recordings(request: Request) -> Response:
        who = await bearer(request)
        limit = feed.page_size(request.query_params.get("limit"))
        return JSONResponse(await asyncio.to_thread(feed.feed, status, store, who.user_id,
                                                    settings.images_base_url, limit))

    async def new_upload(request: Request) -> Response:
        who = await bearer(request)
        body = await json_object(request)
        content_type, extension = views.content_type_extension(body.get("content_type"))
        views.check_size(body.get("size"))
        # The same checks the pipeline applies later (client_metadata): refuse nothing here
        # that it would correct, and send only what it reads.
        meta = {k: str(body[k])[:64] for k in ("tz", "lat", "lon", "lang") if body.get(k) not in (None, "")}
        style = views.chosen_style(body.get("style"))
        if style is not None:
            meta["style"] = style
        rid = new_recording_id()
        if body.get("streamed") is True:  # the page streamed it (`/api/streams`): its id, a sidecar follows
            rid = await asyncio.to_thread(views.fresh_recording_id, store, who.user_id, body.get("recording_id"))
            meta["transcript"] = "streaming"
        # The recording's trace starts with the app's request for its upload form.
        with tracing.recording_span("app: upload form", rid, attributes={"http.route": "/api/uploads"}):
            form = await asyncio.to_thread(views.presigned_upload, store, who.user_id, rid,
                                           content_type, extension, meta)
        return JSONResponse({"recording_id": form.recording_id, "url": form.url, "fields": form.fields})

    async def new_stream(request: Request) -> Response:
        """A recording about to start: its id, a presigned streaming URL, and the form for
        its streamed transcript. The audio's own form comes at the stop (`/api/uploads`)."""
        who = await bearer(request)
        try:
            body = await request.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            body = {}
        language = body.get("lang") if isinstance(body, dict) else None
        if language not in (None, "", *LANGUAGE_OPTIONS):
            raise views.Refused(400, f"lang must be one of {', '.join(LANGUAGE_OPTIONS)}")
        rid = new_recording_id()
        url = await asyncio.to_thread(stream_url, settings, who.user_id, language or None)
        sidecar = await asyncio.to_thread(views.presigned_sidecar, store, who.user_id, rid)
        return JSONResponse({"recording_id": rid, "stream_url": url,
                             "sidecar": {"url": sidecar.url, "fields": sidecar.fields}})

    async def recording(request: Request) -> Response:
        who = await bearer(request)
        view = await asyncio.to_thread(views.snapshot, status, store, who.user_id, recording_id(request),
                                        settings.images_base_url)
        return JSONResponse(view)

    async def upload_stored(request: Request) -> Response:
        """The page's word that its upload is stored: the run starts without S3's notification."""
        who = await bearer(request)
        return JSONResponse(await asyncio.to_thread(views.announce_upload, store, queue, who.user_id,
                                                    recording_id(request)))

    async def retry_recording(request: Request) -> Response:
        who = await bearer(request)
        rid = recording_id(request)
        await asyncio.to_thread(views.owned_status, status, store, who.user_id, rid)
        outcome = await asyncio.to_thread(retry, tracker, queue, rid)
        if not outcome.queued:
            raise views.Refused(409, outcome.reason)
        return JSONResponse({"recording_id": rid, "attempt": outcome.attempt, "queued": True})

    async def rate_recording(request: Request) -> Response:
        who = await bearer(request)
        rid = recording_id(request)
        try:
            body = await request.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            body = None
        score = ratings.parse_score(body)
        return JSONResponse(await asyncio.to_thread(ratings.rate, who.user_id, rid, score, records, status, store))

    async def follow(ws: WebSocket) -> None:
        """The recording's view now and at every change until final (`follow.py`); its
        owner checked at the connect by the first read, made once subscribed."""
        async with followers.admission:
            await ws.accept()
            try:
                who = await grant(ws.query_params.get("token"))
                rid = recording_id(ws)
            except views.Refused as exc:
                await refuse(ws, exc.status, exc.reason)
                return

        async def read() -> dict | None:
            item = await hub.read(rid)
            if item is None:  # S3 then, for this user's upload (`views.owned`)
                return await asyncio.to_thread(views.owned, None, store, who.user_id, rid)
            return views.owned(item, store, who.user_id, rid)

        try:
            await followers.follow(ws, who.user_id, rid, read)
        except WebSocketDisconnect:
            return

    async def health(request: Request) -> Response:
        return JSONResponse({"ok": True, "metrics": {"sent": metrics.sent, "dropped_batches": metrics.dropped},
                             "live": {**hub.stats(), "dropped_followers": followers.dropped}})

    async def refused(request: Request, exc: views.Refused) -> Response:
        return JSONResponse({"error": exc.reason}, status_code=exc.status, headers=exc.headers)

    async def unexpected(request: Request, exc: Exception) -> Response:
        log.exception("app request failed")
        return JSONResponse({"error": "internal error; try again"}, status_code=500)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        try:  # the pool's keys now, so the first request does not wait for them
            await asyncio.to_thread(verifier.prefetch)
        except KeysUnavailable as exc:  # fetched again at the first token
            log.warning("%s", exc)
        # The S3 client's first presign loads its signer and endpoint rules (≈ 0.2 s):
        # done now, not inside the first complete view every follower of it waits for.
        await asyncio.to_thread(views.image_url, store, "rec-warm-up", settings.images_base_url)
        # What start-up made (the modules of boto3, Dagster's resources, the app) lives as long
        # as the process: kept out of the collector's full passes, each of which otherwise
        # scanned it all and stopped every request for 0.1 s or more in a storm of connections.
        gc.collect()
        gc.freeze()
        metrics.start()
        hub.start()
        try:
            yield
        finally:
            await hub.stop()
            await metrics.stop()

    app = Starlette(
        routes=[
            Route("/", page),
            Route("/health", health),
            Route("/api/sign-in", sign_in, methods=["POST"]),
            Route("/api/me", me),
            Route("/api/recordings", own_recordings),
            Route("/api/uploads", new_upload, methods=["POST"]),
            Route("/api/streams", new_stream, methods=["POST"]),
            Route("/api/recordings/{recording_id}", recording),
            Route("/api/recordings/{recording_id}/retry", retry_recording, methods=["POST"]),
            Route("/api/recordings/{recording_id}/uploaded", upload_stored, methods=["POST"]),
            Route("/api/recordings/{recording_id}/rating", rate_recording, methods=["POST"]),
            WebSocketRoute("/ws/recordings/{recording_id}", follow),
        ],
        exception_handlers={views.Refused: refused, Exception: unexpected},
        lifespan=lifespan,
    )
    return Timed(Abortable(app), metrics)

