"""The live view under many followers and a flood of calls, on the local stack: one Redis
subscription however many follow, a follower that never reads or leaves mid-push costs
the others nothing, 200 followers connecting at once all get the final status, another
user's item on the channel is never sent, and one token's flood gets 429 while another
user is served."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import socket
from pathlib import Path

import pytest
import requests

from vomage_dagster.domain.keys import new_recording_id, upload_key
from vomage_dagster.local.aws.stack import free_port
from vomage_dagster.local.client.user_pool import sign_in_as

OWNER = "live-load-run"


@pytest.fixture(scope="module")
def live(settings, local_stack):
    """A live view of its own with a low rate limit, so a flood is quick to make."""
    from vomage_dagster.local.deployment.live_view import running_live_view

    port = free_port()
    env = {"VOMAGE_API_RATE_PER_S": "2", "VOMAGE_API_BURST": "5"}
    with running_live_view(Path(local_stack["state_dir"]), port, env) as base:
        yield {"base": base, "ws": f"ws://127.0.0.1:{port}", "port": port,
               "users": {u: sign_in_as(settings, u) for u in ("hub-alice", "hub-bob")}}


def registered(live, resources, user: str = "hub-alice") -> str:
    rid = new_recording_id()
    resources["tracker"].register(rid, upload_key(live["users"][user].user_id, rid, "m4a"))
    resources["tracker"].own(rid, 1, OWNER)
    return rid


def advance_to_complete(resources, rid: str) -> None:
    tracker = resources["tracker"]
    assert tracker.advance(rid, "transcribing", 1, OWNER)
    assert tracker.advance(rid, "analyzing", 1, OWNER, transcript={"text": "hello", "language": "en-US"})
    assert tracker.advance(rid, "generating", 1, OWNER, mood={"primary_emotion": "joy"})
    assert tracker.complete(rid, 1, OWNER)


async def _follow(url: str, connected: list, leave_after: int | None = None) -> tuple[list[dict], int]:
    import websockets

    messages: list[dict] = []
    async with websockets.connect(url, open_timeout=60, ping_interval=None) as ws:
        try:
            while True:
                messages.append(json.loads(await asyncio.wait_for(ws.recv(), 60)))
                if len(messages) == 1:
                    connected.append(1)
                if leave_after is not None and len(messages) >= leave_after:
                    return messages, 0
        except websockets.ConnectionClosed as closed:
            return messages, closed.rcvd.code if closed.rcvd else 1006


def silent_follower(live, rid: str, user: str = "hub-alice") -> socket.socket:
    """A WebSocket opened by hand that never reads a byte after its handshake is sent."""
    token = live["users"][user].access_token
    sock = socket.create_connection(("127.0.0.1", live["port"]))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall((f"GET /ws/recordings/{rid}?token={token} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                  f"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                  "Sec-WebSocket-Version: 13\r\n\r\n").encode())
    return sock


def numsub(settings, rid: str) -> int:
    import redis

    client = redis.Redis.from_url(settings.redis_url)
    try:
        return dict(client.pubsub_numsub(f"status:{rid}"))[f"status:{rid}".encode()]
    finally:
        client.close()


def run_followers(live, rid: str, n: int, resources, settings, leave_after: int | None = None,
                  extra: int = 0) -> tuple[list, int]:
    """`n` followers (and `extra` that leave after their first message) connected at once;
    once all have their first status, the recording is walked to complete. The results,
    and how many Redis subscriptions `status:<id>` had meanwhile."""
    url = f"{live['ws']}/ws/recordings/{rid}?token={live['users']['hub-alice'].access_token}"

    async def run() -> tuple[list, int]:
        connected: list = []
        tasks = [asyncio.create_task(_follow(url, connected)) for _ in range(n)]
        tasks += [asyncio.create_task(_follow(url, connected, leave_after=1)) for _ in range(extra)]
        while len(connected) < n + extra:
            await asyncio.sleep(0.05)
            assert not any(t.done() and t.exception() for t in tasks)
        subscriptions = await asyncio.to_thread(numsub, settings, rid)
        await asyncio.to_thread(advance_to_complete, resources, rid)
        return await asyncio.wait_for(asyncio.gather(*tasks), 60), subscriptions

    return asyncio.run(run())


def test_200_followers_at_once_all_get_the_final_status_over_one_subscription(live, resources, settings):
    rid = registered(live, resources)
    results, subscriptions = run_followers(live, rid, 200, resources, settings)
    assert subscriptions == 1  # the live view's hub, not one per follower
    assert all(code == 1000 and messages[-1]["stage"] == "complete" for messages, code in results)
    assert all(messages[-1]["transcript"]["text"] == "hello" and messages[-1]["image_url"] for messages, _ in results)
    # One presigned link for all of them: the view was built once for the change.
    assert len({messages[-1]["image_url"] for messages, _ in results}) == 1
    health = requests.get(f"{live['base']}/health", timeout=5).json()["live"]
    assert health["redis"] is True and health["renders"] < 20


def test_a_silent_follower_and_ones_that_leave_mid_push_do_not_hold_back_the_others(live, resources, settings):
    rid = registered(live, resources)
    silent = [silent_follower(live, rid) for _ in range(3)]
    try:
        results, _ = run_followers(live, rid, 20, resources, settings, extra=10)
    finally:
        for sock in silent:
            sock.close()
    stayed = [r for r in results if r[1] != 0]
    assert len(stayed) == 20
    assert all(code == 1000 and messages[-1]["stage"] == "complete" for messages, code in stayed)


def test_an_item_of_another_users_upload_pushed_on_the_channel_is_never_sent(live, resources, settings):
    import redis

    rid = registered(live, resources)
    forged = {**resources["tracker"].status.get(rid), "stage": "complete", "stage_rank": 4, "attempt": 9,
              "message": "forged", "upload_key": upload_key(live["users"]["hub-bob"].user_id, rid, "m4a")}
    url = f"{live['ws']}/ws/recordings/{rid}?token={live['users']['hub-alice'].access_token}"

    async def run() -> tuple[list[dict], int]:
        connected: list = []
        task = asyncio.create_task(_follow(url, connected))
        while not connected:
            await asyncio.sleep(0.05)
        client = redis.Redis.from_url(settings.redis_url)
        client.publish(f"status:{rid}", json.dumps(forged))
        client.close()
        await asyncio.sleep(0.3)
        await asyncio.to_thread(advance_to_complete, resources, rid)
        return await asyncio.wait_for(task, 10)

    messages, code = asyncio.run(run())
    # Never sent, and it did not stand in for the real (older-looking) final one either.
    assert all(m.get("message") != "forged" for m in messages)
    assert code == 1000 and messages[-1]["stage"] == "complete" and messages[-1]["attempt"] == 1


def test_a_flood_from_one_token_gets_429_with_retry_after_while_another_user_is_served(live):
    alice = {"Authorization": f"Bearer {live['users']['hub-alice'].access_token}"}
    bob = {"Authorization": f"Bearer {live['users']['hub-bob'].access_token}"}
    with requests.Session() as session:
        answers = [session.get(f"{live['base']}/api/me", headers=alice, timeout=10) for _ in range(30)]
        limited = [a for a in answers if a.status_code == 429]
        assert limited and all(a.status_code in (200, 429) for a in answers)
        assert int(limited[0].headers["Retry-After"]) >= 1 and "slow down" in limited[0].json()["error"]
        assert session.get(f"{live['base']}/api/me", headers=bob, timeout=10).status_code == 200
        # The health check and the page are not limited, nor counted.
        assert all(session.get(f"{live['base']}{path}", timeout=10).status_code == 200
                   for path in ("/health", "/") for _ in range(10))
