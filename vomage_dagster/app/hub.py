"""One Redis subscription per live-view process, its changes fanned out to the followers.

The tracker publishes every status change on `status:<id>` with the status item itself
(`resources/tracker.py`). The hub holds one pub/sub connection, subscribed to the channel
of each recording someone in this process follows: SUBSCRIBE when its first follower
arrives, UNSUBSCRIBE when its last leaves. Channels on demand rather than one pattern
(`status:*`): with a pattern every process would receive and parse every status change
of the whole platform, followed or not; with channels it receives only what its own
followers watch, for one command per recording followed.

Each change is turned into the page's view once per recording (`render`, off the event
loop: a complete view signs the image link), serialised once, and offered to every
follower's `Mailbox` (`FANOUT_BATCH` of them a turn of the event loop), so a thousand
followers of ten recordings cost ten renders a change, not a thousand table reads and
signatures. A mailbox holds only the newest view (each view is a whole snapshot), and
the fan-out never waits for a socket: sending is each follower's own task (`follow.py`).

What pub/sub cannot promise is read from the status table (the truth), once per
recording rather than per follower: every `poll_s` while Redis is unreachable, once
after every (re)connection for every recording followed, and every `resync_s` for
those not final (a publish the writer could not make; the old per-follower loop read
again after 5 quiet seconds too). Versions (attempt, then the time of the change) keep an
older item from replacing a newer one, whichever way it came.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from vomage_dagster.domain import lifecycle as life
from vomage_dagster.domain.keys import parse_upload_key

log = logging.getLogger("vomage.app.hub")
CHANNEL_PREFIX = "status:"
# Always subscribed, so the connection has something to wait on while nobody follows.
IDLE_CHANNEL = "status:__live-view__"
# How long a follower waits for its channel's subscription to be confirmed before it
# reads the table anyway (the resync covers the rest).
SUBSCRIBE_WAIT_S = 2.0
RECONNECT_MAX_S = 5.0
# Followers woken per turn of the event loop: a change for a thousand of them is sent in
# turns, so an API request that arrives meanwhile waits for one turn, not for all.
FANOUT_BATCH = 64


def version(item: dict) -> tuple:
    """Newer items compare greater: a retry's attempt, then the time of the last change."""
    return (int(item.get("attempt", 1) or 1), str(item.get("updated_at") or ""), int(item.get("stage_rank", 0) or 0))


def owner_of(item: dict) -> str | None:
    """The user whose upload the item is of: who alone may see it."""
    parsed = parse_upload_key(str(item.get("upload_key") or ""))
    return parsed.user_id if parsed is not None else None


@dataclass(frozen=True)
class Rendered:
    """One version of a recording's view, serialised once for all its followers."""

    version: tuple
    owner: str | None
    text: str
    final: bool


def rendered(item: dict, view: dict) -> Rendered:
    return Rendered(version(item), owner_of(item), json.dumps({"type": "status", **view}, default=str),
                    item.get("stage") in life.FINAL)


class Mailbox:
    """What one follower has not been sent yet: the newest view only, never a queue."""

    def __init__(self) -> None:
        self._pending: Rendered | None = None
        self._offered: Rendered | None = None
        self._ready = asyncio.Event()
        self.closed = False

    def offer(self, view: Rendered) -> None:
        """Keep `view` unless it was offered already or a newer one was (a final one is
        never replaced: nothing of the same attempt is newer). Two changes within the same
        millisecond have the same version: the later one offered wins."""
        if self._offered is not None and (view is self._offered or view.version < self._offered.version):
            return
        self._pending = self._offered = view
        self._ready.set()

    def close(self) -> None:
        """The follower left: wake its task, which ends."""
        self.closed = True
        self._ready.set()

    async def next(self, timeout: float) -> Rendered | None:
        """The newest view not sent yet; None after `timeout` seconds without one, or closed."""
        if self._pending is None and not self.closed:
            try:
                async with asyncio.timeout(timeout):
                    await self._ready.wait()
            except TimeoutError:
                return None
        view, self._pending = self._pending, None
        if not self.closed:
            self._ready.clear()
        return view

    @property
    def holding(self) -> int:
        return 0 if self._pending is None else 1


@dataclass
class _Recording:
    followers: set[Mailbox] = field(default_factory=set)
    confirmed: asyncio.Event = field(default_factory=asyncio.Event)
    owner: str | None = None  # the user a follower's authorised read found it is of
    item: dict | None = None  # the newest item rendered or being rendered
    latest: Rendered | None = None
    waiting: dict | None = None  # the newest item not rendered yet
    renderer: asyncio.Task | None = None
    reading: asyncio.Task | None = None  # the table read the followers connecting now share


class StatusHub:
    """`read_many(ids) → {id: item}` reads the status table, `read_one(id) → item | None`
    one item of it; `render(item) → view` builds what the page shows (all blocking: they
    run in threads)."""

    def __init__(self, read_many: Callable[[list[str]], dict[str, dict]], render: Callable[[dict], dict],
                 redis_url: str | None = None, redis_options: dict | None = None,
                 poll_s: float = 1.0, resync_s: float = 5.0,
                 read_one: Callable[[str], dict | None] | None = None):
        self.read_many, self.render = read_many, render
        self.read_one = read_one or (lambda rid: read_many([rid]).get(rid))
        self.redis_url, self.redis_options = redis_url, redis_options or {}
        self.poll_s, self.resync_s = poll_s, resync_s
        self.connected = False
        self.pushes = self.reads = self.renders = 0
        self._recordings: dict[str, _Recording] = {}
        self._pubsub: Any = None
        self._subscribed: set[str] = set()
        self._commands = asyncio.Lock()  # one (un)subscribe at a time, decided on the state when sent
        self._tasks: list[asyncio.Task] = []
        self._fanout: deque[tuple[Mailbox, Rendered]] = deque()
        self._waker: asyncio.Task | None = None

    # --- lifecycle ---

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        if self.redis_url:
            self._tasks.append(loop.create_task(self._listen()))
        self._tasks.append(loop.create_task(self._sweep()))

    async def stop(self) -> None:
        if self._waker is not None:
            self._tasks.append(self._waker)
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []

    def stats(self) -> dict:
        followers = [m for rec in self._recordings.values() for m in rec.followers]
        return {"redis": self.connected, "recordings": len(self._recordings), "followers": len(followers),
                "held_views": sum(m.holding for m in followers), "pushes": self.pushes, "reads": self.reads,
                "renders": self.renders}

    # --- followers ---

    async def join(self, rid: str, mailbox: Mailbox) -> None:
        """Follow `rid`. Returns once its channel is subscribed (confirmed by Redis), so a
        table read after this misses nothing; at once while Redis is unreachable (polled)."""
        rec = self._recordings.setdefault(rid, _Recording())
        rec.followers.add(mailbox)
        if not self.connected:
            return
        if rid not in self._subscribed:
            await self._subscribe(rid)
        try:
            async with asyncio.timeout(SUBSCRIBE_WAIT_S):
                await rec.confirmed.wait()
        except TimeoutError:
            pass  # the caller reads the table all the same; the resync reads it again

    def leave(self, rid: str, mailbox: Mailbox) -> None:
        rec = self._recordings.get(rid)
        if rec is None:
            return
        rec.followers.discard(mailbox)
        if not rec.followers:
            asyncio.get_running_loop().create_task(self._drop(rid))

    async def read(self, rid: str) -> dict | None:
        """`rid`'s item in the status table, one read shared by the followers that join
        meanwhile (a hundred phones opening the same recording cost one read, not a
        hundred). Each compares its owner with its own user itself. Joined first: a read
        shared with an earlier follower started after the channel was confirmed for it,
        and what changed since is in the hub's newest view, which every follower is given."""
        rec = self._recordings.get(rid)
        if rec is None:
            return await asyncio.to_thread(self.read_one, rid)
        if rec.reading is None or rec.reading.done():
            rec.reading = asyncio.get_running_loop().create_task(asyncio.to_thread(self.read_one, rid))
        return await asyncio.shield(rec.reading)

    def owned_by(self, rid: str, user_id: str) -> None:
        """A follower's read of the status table found `rid` is `user_id`'s: from now on an
        item of another user's upload on its channel is dropped here, so it cannot stand in
        for a newer version of the real one."""
        rec = self._recordings.get(rid)
        if rec is None or rec.owner == user_id:
            return
        rec.owner = user_id
        if rec.waiting is not None and owner_of(rec.waiting) != user_id:
            rec.waiting = None
        if rec.item is not None and owner_of(rec.item) != user_id:
            rec.item = rec.latest = None

    async def seen(self, rid: str, item: dict) -> Rendered | None:
        """A follower's own read of `rid`: offered as any change, then the recording's newest view."""
        self.offer_item(rid, item)
        rec = self._recordings.get(rid)
        if rec is None:
            return None
        while rec.renderer is not None and not rec.renderer.done():
            await asyncio.shield(rec.renderer)
        return rec.latest

    # --- changes ---

    def offer_item(self, rid: str, item: dict) -> None:
        """A status item of `rid` (pushed or read): rendered once and fanned out if newer."""
        rec = self._recordings.get(rid)
        if rec is None or item.get("recording_id") != rid:
            return
        if rec.owner is not None and owner_of(item) != rec.owner:
            log.warning("a status pushed for a followed recording is another user's upload: dropped")
            return
        newest = rec.waiting or rec.item
        if newest is not None and (version(item) < version(newest) or item == newest):
            return
        rec.waiting = item
        if rec.renderer is None or rec.renderer.done():
            rec.renderer = asyncio.get_running_loop().create_task(self._render_loop(rid, rec))

    async def _render_loop(self, rid: str, rec: _Recording) -> None:
        while rec.waiting is not None:
            item, rec.waiting = rec.waiting, None
            try:
                view = await asyncio.to_thread(self.render, item)
            except Exception as exc:  # noqa: BLE001 - the next change or the resync renders again
                log.warning("a status view could not be built (%s)", type(exc).__name__)
                continue
            self.renders += 1
            rec.item, rec.latest = item, rendered(item, view)
            self._fanout.extend((mailbox, rec.latest) for mailbox in rec.followers)
            if self._waker is None or self._waker.done():
                self._waker = asyncio.get_running_loop().create_task(self._wake())

    async def _wake(self) -> None:
        """Offer the views waiting in `_fanout`, `FANOUT_BATCH` a turn of the loop."""
        while self._fanout:
            for _ in range(min(FANOUT_BATCH, len(self._fanout))):
                mailbox, view = self._fanout.popleft()
                if not mailbox.closed:
                    mailbox.offer(view)
            await asyncio.sleep(0)

    async def _read(self, rids: list[str]) -> None:
        """Read `rids` from the table, 100 a call, and offer what was found."""
        for i in range(0, len(rids), 100):
            try:
                found = await asyncio.to_thread(self.read_many, rids[i:i + 100])
            except Exception as exc:  # noqa: BLE001 - the table is the fallback: tried again at the next sweep
                log.warning("status read failed (%s)", type(exc).__name__)
                return
            self.reads += len(found)
            for rid, item in found.items():
                self.offer_item(rid, item)

    def _open(self) -> list[str]:
        return [rid for rid, rec in self._recordings.items() if rec.latest is None or not rec.latest.final]

    async def _sweep(self) -> None:
        """Read the recordings not final: every `poll_s` without Redis, every `resync_s` with it."""
        last = time.monotonic()
        while True:
            await asyncio.sleep(self.poll_s)
            if self.connected and time.monotonic() - last < self.resync_s:
                continue
            last = time.monotonic()
            await self._read(self._open())

    # --- Redis ---

    async def _subscribe(self, rid: str) -> None:
        async with self._commands:
            if self._pubsub is None or rid in self._subscribed or rid not in self._recordings:
                return
            try:
                await self._pubsub.subscribe(CHANNEL_PREFIX + rid)
                self._subscribed.add(rid)
            except Exception as exc:  # noqa: BLE001 - the listener sees the connection fail and reconnects
                log.debug("subscribe failed: %s", type(exc).__name__)

    async def _drop(self, rid: str) -> None:
        """Forget a recording nobody follows any more, and its channel."""
        async with self._commands:
            rec = self._recordings.get(rid)
            if rec is None or rec.followers:
                return
            del self._recordings[rid]
            if rid in self._subscribed and self._pubsub is not None:
                self._subscribed.discard(rid)
                try:
                    await self._pubsub.unsubscribe(CHANNEL_PREFIX + rid)
                except Exception as exc:  # noqa: BLE001 - as above
                    log.debug("unsubscribe failed: %s", type(exc).__name__)

    async def _listen(self) -> None:
        import redis.asyncio as aioredis

        backoff, lost = 0.25, False
        while True:
            client = aioredis.Redis.from_url(self.redis_url, socket_connect_timeout=2, health_check_interval=15,
                                             **self.redis_options)
            pubsub = client.pubsub()
            try:
                async with self._commands:
                    self._subscribed = set(self._recordings)
                    await pubsub.subscribe(IDLE_CHANNEL, *(CHANNEL_PREFIX + rid for rid in self._subscribed))
                    self._pubsub = pubsub
                if lost:
                    log.warning("status channel back; reading the followed recordings once")
                self.connected, backoff, lost = True, 0.25, False
                # What changed while the channel was away (or before it first came up).
                asyncio.get_running_loop().create_task(self._read(list(self._recordings)))
                while True:
                    message = await pubsub.get_message(timeout=1.0)
                    if message is not None:
                        self._received(message)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - Redis away: the sweep polls the table, we reconnect
                if self.connected:
                    log.warning("status channel lost (%s); polling the status table until it is back",
                                type(exc).__name__)
                lost = True
            finally:
                self.connected, self._pubsub, self._subscribed = False, None, set()
                for rec in self._recordings.values():
                    rec.confirmed.clear()
                try:
                    await client.aclose()
                except Exception:  # noqa: BLE001 - a connection already gone
                    pass
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, RECONNECT_MAX_S)

    def _received(self, message: dict) -> None:
        channel = message.get("channel")
        channel = channel.decode() if isinstance(channel, bytes) else str(channel)
        rec = self._recordings.get(channel[len(CHANNEL_PREFIX):])
        if rec is None:
            return
        if message["type"] == "subscribe":
            rec.confirmed.set()
        elif message["type"] == "message":
            try:
                item = json.loads(message["data"])
            except (TypeError, ValueError):
                return
            if isinstance(item, dict):
                self.pushes += 1
                self.offer_item(channel[len(CHANNEL_PREFIX):], item)
