"""The live view's fan-out without Redis or sockets: one render per change for every
follower, a newest-only mailbox, followers that never read or leave mid-push, a view of
another user's upload never sent, and the per-user token bucket."""

from __future__ import annotations

import asyncio
import json

import pytest
from starlette.websockets import WebSocketDisconnect

from vomage_dagster.app import views
from vomage_dagster.app.follow import ABORT, Followers
from vomage_dagster.app.hub import Mailbox, StatusHub, rendered
from vomage_dagster.app.limits import RateLimiter, retry_after

RID = "rec-20261207-aaaaaaaa"


def item(stage: str, rank: int, user: str = "alice", at: str = "", attempt: int = 1, **extra) -> dict:
    return {"recording_id": RID, "stage": stage, "stage_rank": rank, "attempt": attempt, "progress": rank * 25,
            "updated_at": at or f"2026-12-07T08:00:0{rank}", "upload_key": f"uploads/{user}/{RID}.m4a", **extra}


class FakeSocket:
    """What `Followers` uses of a Starlette WebSocket; `stuck`: sends never finish (a peer
    that stopped reading); `gone_after`: the peer leaves after this many messages."""

    def __init__(self, stuck: bool = False, gone_after: int | None = None):
        self.sent: list[dict] = []
        self.closed_with: int | None = None
        self.aborted = False
        self.stuck, self.gone_after = stuck, gone_after
        self.left = asyncio.Event()
        self.scope = {ABORT: self.abort}

    def abort(self) -> None:
        self.aborted = True
        self.left.set()

    async def send_text(self, text: str) -> None:
        if self.stuck:
            await asyncio.Event().wait()
        if self.gone_after is not None and len(self.sent) >= self.gone_after:
            self.left.set()
            raise WebSocketDisconnect(1001)
        self.sent.append(json.loads(text))

    async def send_json(self, data: dict) -> None:
        await self.send_text(json.dumps(data))

    async def close(self, code: int = 1000, reason: str | None = None) -> None:
        if self.stuck:
            await asyncio.Event().wait()
        self.closed_with = code

    async def receive(self) -> dict:
        await self.left.wait()
        return {"type": "websocket.disconnect", "code": 1001}


def hub_and_renders() -> tuple[StatusHub, list[dict]]:
    renders: list[dict] = []

    def render(found: dict) -> dict:
        renders.append(found)
        return views.view_of(found, image_link="https://img" if found["stage"] == "complete" else None)

    return StatusHub(read_many=lambda ids: {}, render=render), renders


def test_a_mailbox_keeps_only_the_newest_view_and_never_an_older_one():
    async def run() -> None:
        box = Mailbox()
        for stage, rank in (("transcribing", 1), ("analyzing", 2), ("generating", 3)):
            box.offer(rendered(item(stage, rank), {"stage": stage}))
        box.offer(rendered(item("transcribing", 1), {"stage": "transcribing"}))  # late, older: ignored
        got = await box.next(timeout=0.1)
        assert got is not None and json.loads(got.text)["stage"] == "generating" and box.holding == 0
        assert await box.next(timeout=0.01) is None
        box.offer(rendered(item("complete", 4), {"stage": "complete"}))
        box.offer(rendered(item("generating", 3), {"stage": "generating"}))  # the final is never replaced
        final = await box.next(timeout=0.1)
        assert final is not None and final.final
        # Two changes in the same millisecond at the same stage: the later one is kept; the
        # very same view offered again (a follower's read and the fan-out) is not sent twice.
        same = Mailbox()
        first = rendered(item("analyzing", 2), {"stage": "analyzing"})
        second = rendered(item("analyzing", 2, mood={"primary_emotion": "joy"}), {"stage": "analyzing", "mood": 1})
        same.offer(first)
        assert await same.next(timeout=0.1) is first
        same.offer(first)
        assert await same.next(timeout=0.01) is None
        same.offer(second)
        assert await same.next(timeout=0.1) is second

    asyncio.run(run())


def test_one_change_is_rendered_once_for_every_follower():
    async def run() -> None:
        hub, renders = hub_and_renders()
        boxes = [Mailbox() for _ in range(50)]
        for box in boxes:
            await hub.join(RID, box)
        hub.offer_item(RID, item("analyzing", 2))
        await hub.seen(RID, item("analyzing", 2))  # the same item read again: no second render
        got = [await box.next(timeout=1) for box in boxes]
        assert len(renders) == 1 and all(g is got[0] for g in got)
        hub.offer_item("rec-20261207-bbbbbbbb", item("complete", 4))  # another recording's: nobody follows it
        hub.offer_item(RID, {**item("complete", 4), "recording_id": "rec-20261207-bbbbbbbb"})  # wrong channel
        assert len(renders) == 1
        for box in boxes:
            hub.leave(RID, box)
        await asyncio.sleep(0)
        assert hub.stats()["recordings"] == 0

    asyncio.run(run())


async def _follow_all(hub: StatusHub, followers: Followers, sockets: list[FakeSocket],
                      user: str = "alice") -> list[asyncio.Task]:
    tasks = [asyncio.create_task(followers.follow(ws, user, RID, read=_read(item("transcribing", 1))))
             for ws in sockets]
    while hub.stats()["followers"] < len(sockets) or any(not ws.sent and not ws.stuck for ws in sockets):
        await asyncio.sleep(0.01)
    return tasks


def _read(found: dict | None):
    async def read() -> dict | None:
        return found

    return read


def test_a_follower_that_never_reads_does_not_hold_back_the_others_and_is_dropped():
    async def run() -> None:
        hub, _ = hub_and_renders()
        followers = Followers(hub, send_timeout_s=0.5)
        stuck, readers = FakeSocket(stuck=True), [FakeSocket() for _ in range(20)]
        tasks = await _follow_all(hub, followers, [stuck, *readers])
        hub.offer_item(RID, item("generating", 3))
        hub.offer_item(RID, item("complete", 4))
        await asyncio.wait_for(asyncio.gather(*tasks[1:]), 5)
        # Every reader has its final status and a normal close while the stuck one still waits.
        assert not tasks[0].done() and not stuck.aborted
        assert all(ws.sent[-1]["stage"] == "complete" and ws.closed_with == 1000 for ws in readers)
        await asyncio.wait_for(tasks[0], 5)
        assert stuck.aborted and followers.dropped == 1 and hub.stats()["followers"] == 0

    asyncio.run(run())


def test_a_follower_gone_mid_push_does_not_break_the_others():
    async def run() -> None:
        hub, _ = hub_and_renders()
        followers = Followers(hub)
        leaving = [FakeSocket(gone_after=1) for _ in range(5)]
        staying = [FakeSocket() for _ in range(5)]
        tasks = await _follow_all(hub, followers, [*leaving, *staying])
        for stage, rank in (("analyzing", 2), ("generating", 3), ("complete", 4)):
            hub.offer_item(RID, item(stage, rank))
            await asyncio.sleep(0.01)
        await asyncio.wait_for(asyncio.gather(*tasks), 5)
        assert all(ws.sent[-1]["stage"] == "complete" and ws.closed_with == 1000 for ws in staying)
        assert all(len(ws.sent) == 1 and ws.closed_with is None for ws in leaving)

    asyncio.run(run())


def test_a_pushed_item_of_another_users_upload_is_never_sent():
    async def run() -> None:
        hub, _ = hub_and_renders()
        followers = Followers(hub)
        ws = FakeSocket()
        (task,) = await _follow_all(hub, followers, [ws])
        hub.offer_item(RID, item("complete", 4, user="mallory", message="not alices"))
        await asyncio.sleep(0.05)
        hub.offer_item(RID, item("complete", 4, user="alice", at="2026-12-07T08:00:09"))
        await asyncio.wait_for(task, 5)
        assert all(m.get("message") != "not alices" for m in ws.sent)
        assert ws.sent[-1]["stage"] == "complete" and ws.closed_with == 1000

    asyncio.run(run())


def test_an_upload_not_registered_in_time_is_closed_with_504_and_a_refused_read_with_its_code():
    async def run() -> None:
        hub, _ = hub_and_renders()
        ws = FakeSocket()
        await Followers(hub, register_wait_s=0.2).follow(ws, "alice", RID, read=_read(None))
        assert ws.sent[0]["stage"] == "uploaded" and ws.sent[-1]["status"] == 504 and ws.closed_with == 4408

        async def refused() -> dict:
            raise views.Refused(403, "this recording is not yours")

        other = FakeSocket()
        await Followers(hub).follow(other, "mallory", RID, read=refused)
        assert other.sent == [{"type": "error", "status": 403, "error": "this recording is not yours"}]
        assert other.closed_with == 4403 and hub.stats()["followers"] == 0

    asyncio.run(run())


def test_the_token_bucket_refuses_past_the_burst_per_user_and_says_when_to_retry():
    now = [0.0]
    limiter = RateLimiter(rate=2, burst=4, max_users=3, clock=lambda: now[0])
    assert [limiter.take("alice") for _ in range(4)] == [0, 0, 0, 0]
    wait = limiter.take("alice")
    assert wait == pytest.approx(0.5) and retry_after(wait) == "1"
    assert limiter.take("bob") == 0  # another user is untouched
    now[0] += 0.5
    assert limiter.take("alice") == 0 and limiter.take("alice") > 0
    for user in ("c", "d", "e"):
        limiter.take(user)
    assert len(limiter) == 3  # the least recent users' buckets are forgotten first
    with pytest.raises(ValueError):
        RateLimiter(rate=0, burst=1)


def _redis_server(port: int):
    import shutil
    import subprocess

    proc = subprocess.Popen([shutil.which("redis-server") or "redis-server", "--port", str(port), "--save", "",
                             "--appendonly", "no"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return proc


def test_without_redis_the_hub_polls_the_table_and_after_a_reconnection_it_reads_what_was_missed():
    import redis

    from vomage_dagster.local.aws.stack import free_port

    port = free_port()
    table: dict[str, dict] = {RID: item("transcribing", 1)}
    server = _redis_server(port)

    async def wait_for(predicate, seconds: float = 10) -> None:
        async with asyncio.timeout(seconds):
            while not predicate():
                await asyncio.sleep(0.05)

    async def run() -> None:
        nonlocal server
        hub = StatusHub(read_many=lambda ids: {i: table[i] for i in ids if i in table},
                        render=lambda found: views.view_of(found), redis_url=f"redis://127.0.0.1:{port}/0",
                        poll_s=0.2, resync_s=60)
        client = redis.Redis(port=port)
        await wait_for(lambda: _ping(client))
        hub.start()
        try:
            await wait_for(lambda: hub.connected)
            box = Mailbox()
            await hub.join(RID, box)
            assert client.pubsub_numsub(f"status:{RID}")[0][1] == 1
            client.publish(f"status:{RID}", json.dumps(item("analyzing", 2)))
            assert json.loads((await box.next(timeout=5)).text)["stage"] == "analyzing"
            server.terminate()
            server.wait()
            await wait_for(lambda: not hub.connected)
            table[RID] = item("generating", 3)  # written while Redis is down: read by the poll
            assert json.loads((await box.next(timeout=5)).text)["stage"] == "generating"
            server = _redis_server(port)
            await wait_for(lambda: hub.connected)  # subscribed again, with the followed channel
            await wait_for(lambda: client.pubsub_numsub(f"status:{RID}")[0][1] == 1)
            client.publish(f"status:{RID}", json.dumps(item("generating", 3, at="2026-12-07T08:00:05")))
            assert json.loads((await box.next(timeout=5)).text)["progress"] == 75
            # Down again, this time with no poll before it is back: the read after the
            # reconnection alone finds the final status written meanwhile.
            hub.poll_s = 60
            await asyncio.sleep(0.5)
            server.terminate()
            server.wait()
            await wait_for(lambda: not hub.connected)
            table[RID] = item("complete", 4, at="2026-12-07T08:00:06")
            server = _redis_server(port)
            final = await box.next(timeout=10)
            assert final is not None and final.final
        finally:
            await hub.stop()
            client.close()

    try:
        asyncio.run(run())
    finally:
        server.terminate()
        server.wait()


def _ping(client) -> bool:
    import redis

    try:
        return bool(client.ping())
    except redis.ConnectionError:
        return False


def test_the_rate_limit_is_set_from_the_environment_and_refuses_nonsense():
    from vomage_dagster.settings import load_settings

    assert (load_settings({}).api_rate_per_s, load_settings({}).api_burst) == (20.0, 40)
    custom = load_settings({"VOMAGE_API_RATE_PER_S": "2.5", "VOMAGE_API_BURST": "5"})
    assert (custom.api_rate_per_s, custom.api_burst) == (2.5, 5)
    for bad in ({"VOMAGE_API_RATE_PER_S": "0"}, {"VOMAGE_API_BURST": "-1"}):
        with pytest.raises(ValueError):
            load_settings(bad)
