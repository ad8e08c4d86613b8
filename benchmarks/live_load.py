"""A thousand phones on one live view: the API's latency under their load, and how soon
each of them sees the final status after it is written.

    ./scripts/bench.sh --live-load [--followers 1000] [--recordings 10] [--probe-rate 20]

On a private local stack, `vomage app serve` runs as it runs there (one uvicorn process,
its template role, `running_live_view`). `--recordings` users are made in the stack's
user pool and signed in (their real access tokens); each has one recording, registered
through the platform's `ProcessingTracker`. In a process of its own, one asyncio client
opens `--followers` WebSockets at once, spread evenly over the recordings, each with its
owner's token; in a third, a prober calls the HTTP API open-loop at `--probe-rate` calls
a second (GET /api/recordings/<id> and /api/me, round robin over `--probe-users` users),
from before the followers connect until the last final status is in.

No pipeline runs: this process plays it, walking every recording through its stages with
the real tracker (the status table's conditional write, then the `status:<id>` key and
publish, as a run does), the final write last. The delay measured is from the moment the
final status write starts (before its DynamoDB call) to each follower's receipt of it.

Reported: API p50/p95/p99 over the whole run, followers connected, those that got the
final status, its delay p50/p95/p99, errors (a failed connect, an error message, a close
other than 1000, no final status, an API answer other than 200), and the live-view
process's peak RSS. Targets: API p99 ≤ 200 ms, final status p99 ≤ 250 ms after its write,
every follower, no error. Writes benchmarks/results/live_load.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import platform
import resource
import tempfile
import time
from pathlib import Path

from benchmarks.run import RESULTS, _status_kb, pct
from benchmarks.stacks import start_stack

OUT = RESULTS / "live_load.json"
TARGETS = {"api_p99_ms": 200.0, "final_p99_ms": 250.0}
STEP_S = 0.5  # between two status changes of a recording, about a fast run's pace
OPEN_FILES = 8192
PROBE_CONNECTIONS = 32


def more_open_files() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = OPEN_FILES if hard == resource.RLIM_INFINITY else min(OPEN_FILES, hard)
    if soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))


# --- the followers (a process of their own) ---------------------------------------------


async def _follow(url: str, rid: str, connected: list, total: int, all_in: asyncio.Event) -> dict:
    from websockets.asyncio.client import connect
    from websockets.exceptions import ConnectionClosed

    row: dict = {"rid": rid, "error": None, "final_at": None, "code": None, "messages": 0}
    try:
        async with connect(url, open_timeout=120, ping_interval=None, close_timeout=10) as ws:
            try:
                while True:
                    message = json.loads(await ws.recv())
                    now = time.time()
                    row["messages"] += 1
                    if row["messages"] == 1:
                        connected.append(now)
                        if len(connected) == total:
                            all_in.set()
                    if message.get("type") == "error":
                        row["error"] = f"error message {message.get('status')}"
                    elif message.get("stage") in ("complete", "failed") and row["final_at"] is None:
                        row["final_at"] = now
            except ConnectionClosed as closed:
                row["code"] = closed.rcvd.code if closed.rcvd else 1006
    except Exception as exc:  # noqa: BLE001 - every failure is the row's error, reported
        row["error"] = type(exc).__name__
    if row["error"] is None and row["code"] != 1000:
        row["error"] = f"closed with {row['code']}"
    if row["error"] is None and row["final_at"] is None:
        row["error"] = "no final status"
    return row


def followers_main(ws_base: str, plan: list[tuple[str, str]], per_recording: int, go, ready, done) -> None:
    """Open every follower at once when `go` is set (this process started and its modules
    loaded before, so its start-up is not measured); say on `ready` when all have their
    first status, and put every follower's row on `done` once all have closed."""
    more_open_files()
    from websockets.asyncio.client import connect  # noqa: F401 - loaded now, not in the storm

    ready.put({"loaded": True})
    go.wait()

    async def run() -> list:
        connected: list = []
        all_in = asyncio.Event()
        total = len(plan) * per_recording
        started = time.time()
        tasks = [asyncio.create_task(_follow(f"{ws_base}/ws/recordings/{rid}?token={token}", rid, connected,
                                             total, all_in))
                 for rid, token in plan for _ in range(per_recording)]
        try:
            await asyncio.wait_for(all_in.wait(), 180)
        except TimeoutError:
            pass
        ready.put({"connected": len(connected), "seconds": round(time.time() - started, 2), "started_at": started,
                   "all_in_at": max(connected, default=time.time())})
        finished, _ = await asyncio.wait(tasks, timeout=120)
        return [t.result() for t in finished] + [{"rid": "", "error": "still open", "final_at": None}
                                                 for t in tasks if t not in finished]

    try:  # the client's own loop as light as the server's, so the client is not the bottleneck
        import uvloop
    except ImportError:
        done.put(asyncio.run(run()))
    else:
        done.put(uvloop.run(run()))


# --- the API prober (a process of its own) ----------------------------------------------


def prober_main(base: str, calls: list[tuple[str, str]], rate: float, stop, done, started) -> None:
    """Call the API open-loop at `rate` a second (each call on its time, whatever the last
    one's latency) until `stop`; put (route, status, ms) rows on `done`."""
    import queue
    from concurrent.futures import ThreadPoolExecutor

    import requests

    rows: list = []
    # A client's connections, opened before the measure (a phone's are open already): a
    # first connection would otherwise wait behind the storm of WebSocket handshakes.
    sessions: queue.SimpleQueue = queue.SimpleQueue()
    for _ in range(PROBE_CONNECTIONS):
        session = requests.Session()
        session.get(f"{base}/health", timeout=60)
        sessions.put(session)

    def call(path: str, token: str) -> None:
        session = sessions.get()
        started = time.perf_counter()
        try:
            status = session.get(f"{base}{path}", headers={"Authorization": f"Bearer {token}"},
                                 timeout=60).status_code
        except requests.RequestException:
            status = 0
        sessions.put(session)
        rows.append(("/api/me" if path == "/api/me" else "/api/recordings/{id}", status,
                     (time.perf_counter() - started) * 1000, time.time()))

    for path, token in calls:  # each user's first call (their first sign-in write) is not measured
        requests.get(f"{base}{path}", headers={"Authorization": f"Bearer {token}"}, timeout=60)
    started.put(True)
    with ThreadPoolExecutor(PROBE_CONNECTIONS) as pool:
        next_at, i = time.perf_counter(), 0
        while not stop.is_set():
            pool.submit(call, *calls[i % len(calls)])
            i += 1
            next_at += 1 / rate
            time.sleep(max(0.0, next_at - time.perf_counter()))
    done.put(rows)


# --- the pipeline's part: status writes through the platform's tracker -------------------


def drive(tracker, rids: list[str]) -> dict[str, float]:
    """Every recording from uploaded to complete, stage by stage; when each final write started."""
    owner = "live-load-run"
    shown = {"transcribing": {}, "analyzing": {"transcript": {"text": "a load test of the live view",
                                                              "language": "en-US", "source": "streaming"}},
             "generating": {"mood": {"primary_emotion": "joy", "summary": "light", "valence": 0.6}}}
    for rid in rids:
        assert tracker.own(rid, 1, owner) is not None, rid
    time.sleep(STEP_S)
    for stage, extra in shown.items():
        for rid in rids:
            assert tracker.advance(rid, stage, 1, owner, **extra), (rid, stage)
        time.sleep(STEP_S)
    written: dict[str, float] = {}
    for rid in rids:
        written[rid] = time.time()
        assert tracker.complete(rid, 1, owner), rid
    return written


def live_view_pid(port: int) -> int | None:
    """The `vomage app serve` process below this one listening on `port`."""
    from vomage_dagster.local import processes

    for pid in processes.descendants(os.getpid()):
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"serve" in argv and str(port).encode() in argv and any(a.endswith(b"vomage") for a in argv[:2]):
            return pid
    return None


def summarize(args, ready: dict, followers: list, probes: list, written: dict[str, float],
              peak_mb: float) -> dict:
    delays = [(f["final_at"] - written[f["rid"]]) * 1000 for f in followers
              if f.get("final_at") and f["rid"] in written]
    api = [row[2] for row in probes]
    errors = [f["error"] for f in followers if f["error"]] + [f"API {row[1]}" for row in probes if row[1] != 200]
    by_route = {route: pct([row[2] for row in probes if row[0] == route], 99) for route in {r[0] for r in probes}}
    # Each call by when it started: before the followers, while they connect, while they follow.
    phases: dict[str, list[float]] = {"before": [], "connecting": [], "following": []}
    for _route, _status, ms, ended in probes:
        began = ended - ms / 1000
        phase = ("before" if began < ready.get("started_at", 0) else
                 "connecting" if began <= ready.get("all_in_at", 0) else "following")
        phases[phase].append(ms)
    return {
        "followers": args.followers, "recordings": args.recordings, "probe_rate_per_s": args.probe_rate,
        "connected": ready.get("connected", 0), "all_connected_s": ready.get("seconds"),
        "api_calls": len(api), "api_p50_ms": pct(api, 50), "api_p95_ms": pct(api, 95), "api_p99_ms": pct(api, 99),
        "api_p99_ms_by_route": by_route,
        "api_by_phase": {phase: {"calls": len(v), "p50_ms": pct(v, 50), "p99_ms": pct(v, 99), "max_ms":
                                 round(max(v), 1) if v else None} for phase, v in phases.items()},
        "got_final": sum(1 for f in followers if f.get("final_at")),
        "final_p50_ms": pct(delays, 50), "final_p95_ms": pct(delays, 95), "final_p99_ms": pct(delays, 99),
        "final_max_ms": round(max(delays), 1) if delays else None,
        "errors": len(errors), "error_kinds": sorted(set(errors))[:5], "live_view_peak_rss_mb": peak_mb,
    }


def print_table(s: dict) -> None:
    print(f"\nlive view: {s['followers']} WebSockets on {s['recordings']} recordings, the API probed at "
          f"{s['probe_rate_per_s']:g}/s ({s['api_calls']} calls)\n")
    print("| measure | p50 | p95 | p99 | target |\n|---|---|---|---|---|")
    print(f"| API response (ms) | {s['api_p50_ms']} | {s['api_p95_ms']} | {s['api_p99_ms']} | p99 ≤ 200 |")
    print(f"| final status after its write (ms) | {s['final_p50_ms']} | {s['final_p95_ms']} | "
          f"{s['final_p99_ms']} | p99 ≤ 250 |")
    print(f"| connected | {s['connected']} of {s['followers']} (all in {s['all_connected_s']} s) | | | all |")
    print(f"| got the final status | {s['got_final']} of {s['followers']} | | | all |")
    print(f"| errors | {s['errors']}" + (f" ({'; '.join(s['error_kinds'])})" if s["errors"] else "") + " | | | 0 |")
    print(f"| live-view peak RSS | {s['live_view_peak_rss_mb']} MB | | | |")
    print("\nAPI by phase: " + "; ".join(f"{phase} {v['calls']} calls, p50 {v['p50_ms']} ms, p99 {v['p99_ms']} ms"
                                        for phase, v in s["api_by_phase"].items()))


def main() -> int:
    from vomage_dagster.cli.common import exit_on_sigterm

    exit_on_sigterm()  # a stopped benchmark stops what it started
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--followers", type=int, default=1000)
    parser.add_argument("--recordings", type=int, default=10)
    parser.add_argument("--probe-rate", type=float, default=20.0, help="API calls a second, over every probe user")
    parser.add_argument("--probe-users", type=int, default=5)
    args = parser.parse_args()
    more_open_files()  # the live view, started from here, inherits it

    from vomage_dagster.domain.keys import new_recording_id, upload_key
    from vomage_dagster.local.aws import stack
    from vomage_dagster.local.client.user_pool import sign_in_as
    from vomage_dagster.local.deployment.live_view import running_live_view
    from vomage_dagster.resources.build import build_resources
    from vomage_dagster.settings import load_settings

    work = Path(tempfile.mkdtemp(prefix="vomage-live-load-"))
    os.environ.update({"VOMAGE_STATE_DIR": str(work / "state"), "VOMAGE_ENV": "local"})
    info, settings = start_stack()
    spawn = multiprocessing.get_context("spawn")
    per_recording = max(1, args.followers // args.recordings)
    args.followers = per_recording * args.recordings
    try:
        port = stack.free_port()
        with running_live_view(work / "state", port) as base:
            pid = live_view_pid(port)
            tracker = build_resources(settings)["tracker"]
            plan, rids = [], []
            for i in range(args.recordings):
                tokens = sign_in_as(settings, f"live-load-{i}")
                rid = new_recording_id()
                tracker.register(rid, upload_key(tokens.user_id, rid, "webm"))
                plan.append((rid, tokens.access_token))
                rids.append(rid)
            probe = plan[:max(1, min(args.probe_users, len(plan)))]
            calls = [c for rid, token in probe for c in ((f"/api/recordings/{rid}", token), ("/api/me", token))]
            ready, done, probed, probing = spawn.Queue(), spawn.Queue(), spawn.Queue(), spawn.Queue()
            stop, go = spawn.Event(), spawn.Event()
            prober = spawn.Process(target=prober_main, args=(base, calls, args.probe_rate, stop, probed, probing))
            followers = spawn.Process(target=followers_main,
                                      args=(f"ws://127.0.0.1:{port}", plan, per_recording, go, ready, done))
            followers.start()
            ready.get(timeout=120)
            prober.start()
            probing.get(timeout=120)
            time.sleep(1.0)  # the prober's baseline before the storm
            go.set()
            connected = ready.get(timeout=300)
            print(f"{connected['connected']} followers connected in {connected['seconds']} s", flush=True)
            written = drive(tracker, rids)
            rows = done.get(timeout=300)
            stop.set()
            probes = probed.get(timeout=120)
            peak_mb = round(_status_kb(pid, "VmHWM") / 1024, 1) if pid else float("nan")
            followers.join(30)
            prober.join(30)
    finally:
        stack.down(load_settings())
    summary = summarize(args, connected, rows, probes, written, peak_mb)
    print_table(summary)
    met = (summary["api_p99_ms"] <= TARGETS["api_p99_ms"] and summary["final_p99_ms"] <= TARGETS["final_p99_ms"]
           and summary["got_final"] == args.followers and summary["errors"] == 0)
    OUT.parent.mkdir(exist_ok=True)
    OUT.write_text(json.dumps({"machine": f"{platform.machine()}, {os.cpu_count()} cores",
                               "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), **summary,
                               "targets": TARGETS, "met": met}, indent=1) + "\n")
    print(f"\nwritten: {OUT.relative_to(Path.cwd()) if OUT.is_relative_to(Path.cwd()) else OUT}; "
          f"targets {'met' if met else 'NOT met'}")
    return 0 if met else 1


if __name__ == "__main__":
    raise SystemExit(main())
