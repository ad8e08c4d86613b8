"""One follower: a WebSocket showing one recording's status until it is final.

Authorised at the connect (the token, then the recording's owner, by the caller's read
of the status table) and again on every view it is offered: a view of an item whose
upload is not this user's is never sent, whatever reaches the channel. The views come
from the process's `StatusHub`; this task only sends them, at the follower's own pace.
A follower that stops reading holds its mailbox's one view (the newest), and a send
that takes longer than `send_timeout_s` drops it (its connection aborted, its buffer
freed), so it costs the others nothing. A follower that goes away is noticed at once
(a task reads the socket) and leaves the hub.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.websockets import WebSocket, WebSocketDisconnect

from vomage_dagster.app import views
from vomage_dagster.app.hub import Mailbox, StatusHub, rendered

log = logging.getLogger("vomage.app.follow")
CLOSE_CODES = {401: 4401, 403: 4403, 404: 4404}
# How long a follower waits for the ingest to register an upload it can see in S3.
REGISTER_WAIT_S = 30.0
# A send (or the closing handshake) that takes longer drops the follower: a page reads
# a status in milliseconds; one that does not read for this long is not reading.
SEND_TIMEOUT_S = 5.0
# How long a follower of a registered recording sleeps without a view (a bound, not a
# tick: a view or its leaving wakes it at once).
IDLE_WAIT_S = 60.0
# Followers set up at once (the token, the subscription, the first read and send); the
# others wait their turn parked, so a thousand connecting in the same second do not
# keep an API request waiting behind all of their work.
SETUPS = 8
ABORT = "vomage.abort"
_SOCKET_GONE = (WebSocketDisconnect, RuntimeError, OSError)


class Gone(Exception):
    """The follower went away, or was dropped for not reading."""


class Abortable:
    """ASGI layer that gives a WebSocket a way to drop its connection (`scope["vomage.abort"]`).

    uvicorn gives an application no way to drop a connection: closing one whose peer reads
    nothing waits, with its buffer, for a flush that never comes. Its protocol's transport
    can (`abort`), and this layer still holds uvicorn's own `send`, a method of it."""

    def __init__(self, app: Any):
        self.app = app

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] == "websocket":
            transport = getattr(getattr(send, "__self__", None), "transport", None)
            if transport is not None:
                scope[ABORT] = transport.abort
        await self.app(scope, receive, send)


async def refuse(ws: WebSocket, status: int, reason: str) -> None:
    """An `error` message, then the close code that says why."""
    try:
        async with asyncio.timeout(SEND_TIMEOUT_S):
            await ws.send_json({"type": "error", "status": status, "error": reason})
        async with asyncio.timeout(SEND_TIMEOUT_S):
            await ws.close(code=CLOSE_CODES.get(status, 4400), reason=reason)
    except (TimeoutError, *_SOCKET_GONE):
        _abort(ws)


def _abort(ws: WebSocket) -> None:
    abort: Callable[[], None] | None = ws.scope.get(ABORT)
    if abort is not None:
        abort()


class Followers:
    """The process's followers: how many were dropped for not reading."""

    def __init__(self, hub: StatusHub, send_timeout_s: float = SEND_TIMEOUT_S,
                 register_wait_s: float = REGISTER_WAIT_S):
        self.hub, self.send_timeout_s, self.register_wait_s = hub, send_timeout_s, register_wait_s
        self.dropped = 0
        self.admission = asyncio.Semaphore(SETUPS)

    async def _send(self, ws: WebSocket, text: str) -> None:
        try:
            async with asyncio.timeout(self.send_timeout_s):
                await ws.send_text(text)
        except TimeoutError:
            self.dropped += 1
            _abort(ws)
            raise Gone("not reading") from None
        except _SOCKET_GONE as exc:
            raise Gone(type(exc).__name__) from None

    async def _close(self, ws: WebSocket, code: int) -> None:
        try:
            async with asyncio.timeout(self.send_timeout_s):
                await ws.close(code=code)
        except TimeoutError:
            _abort(ws)
        except _SOCKET_GONE:
            pass

    async def follow(self, ws: WebSocket, user_id: str, rid: str,
                     read: Callable[[], Awaitable[dict | None]]) -> None:
        """Send `rid`'s view now and at every change until it is final. `read`: the
        recording's status item if it is this user's (None: their upload, not registered
        yet), else `views.Refused`; called once subscribed, so nothing falls between."""
        mailbox = Mailbox()
        reader = asyncio.get_running_loop().create_task(_read_until_gone(ws, mailbox))
        try:
            async with self.admission:
                await self.hub.join(rid, mailbox)
                try:
                    item = await read()
                except views.Refused as exc:
                    await refuse(ws, exc.status, exc.reason)
                    return
                if item is None:
                    await self._send(ws, json.dumps({"type": "status", **views.waiting_view(rid)}))
                else:
                    # The item's owner, not the upload in S3 a not-yet-registered follower
                    # has: the page chooses a streamed recording's id, so two users' uploads
                    # may carry the same one until the first is registered.
                    self.hub.owned_by(rid, user_id)
                    current = await self.hub.seen(rid, item)
                    if current is None:  # the hub could not build it: this follower tries once itself
                        current = rendered(item, await asyncio.to_thread(self.hub.render, item))
                    mailbox.offer(current)
            await self._run(ws, user_id, rid, mailbox, registered=item is not None)
        except Gone:
            return
        except _SOCKET_GONE:
            return
        finally:
            reader.cancel()
            self.hub.leave(rid, mailbox)

    async def _run(self, ws: WebSocket, user_id: str, rid: str, mailbox: Mailbox, registered: bool) -> None:
        registered_by = time.monotonic() + self.register_wait_s
        while not mailbox.closed:
            # Only a follower still waiting for the ingest needs to wake up on its own.
            view = await mailbox.next(timeout=1.0 if not registered else IDLE_WAIT_S)
            if view is None:
                if not registered and time.monotonic() > registered_by:
                    await self._send(ws, json.dumps({"type": "error", "status": 504,
                                                     "error": "the upload was not picked up; try again"}))
                    await self._close(ws, 4408)
                    return
                continue
            if view.owner != user_id:
                log.warning("a status pushed for a followed recording is another user's upload: not sent")
                continue
            registered = True
            await self._send(ws, view.text)
            if view.final:
                await self._close(ws, 1000)
                return


async def _read_until_gone(ws: WebSocket, mailbox: Mailbox) -> None:
    """Read (and ignore) what the follower sends, to see it leave."""
    try:
        while True:
            message = await ws.receive()
            if message["type"] == "websocket.disconnect":
                break
    except Exception:  # noqa: BLE001 - any failure to read is a follower gone
        pass
    mailbox.close()
