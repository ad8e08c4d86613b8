"""A picture of one's own, and a status that tells the truth, measured through the real
ingest path (SQS, the ingest service, the daemon) on a private embedded stack.

    ./scripts/bench.sh --personal [--n 20]

N users each upload their own recording of the same words (the same sample, each copy
at its own volume: N different files, one transcript, one mood, one place and hour, so
one image prompt). Reports how many distinct images came out (the target: N), and, for
every recording, the ETA the status showed when it was registered against the time it
really took from then to complete. Prints a table and writes
benchmarks/results/personal.json.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import tempfile
import threading
import time
from pathlib import Path

from benchmarks.run import RESULTS, dagster_processes, pct
from benchmarks.stacks import start_stack

SAMPLE = "en_joy"


class EtaWatch(threading.Thread):
    """Every status the tracker pushed, with the moment it arrived: what a live view saw."""

    def __init__(self, redis_url: str) -> None:
        import redis

        super().__init__(daemon=True)
        self.pubsub = redis.Redis.from_url(redis_url).pubsub(ignore_subscribe_messages=True)
        self.pubsub.psubscribe("status:*")
        self.seen: dict[str, list[tuple[float, dict]]] = {}

    def run(self) -> None:
        import redis

        try:
            for message in self.pubsub.listen():
                item = json.loads(message["data"])
                self.seen.setdefault(item["recording_id"], []).append((time.time(), item))
        except redis.ConnectionError:
            return

    def final_at(self, rid: str) -> float | None:
        return next((t for t, item in self.seen.get(rid, []) if item.get("stage") in ("complete", "failed")), None)


def variants(n: int) -> list[bytes]:
    """`n` different WAV files of the same words: the sample at `n` volumes."""
    from vomage_dagster.domain.audio import SAMPLE_RATE, decode
    from vomage_dagster.local.demo.samples import SAMPLES_DIR, sample_manifest
    from vomage_dagster.testing.audio_files import encode

    (entry,) = [m for m in sample_manifest() if Path(m["file"]).stem == SAMPLE]
    samples = decode((SAMPLES_DIR / entry["file"]).read_bytes()).samples
    return [encode(samples * (0.95 - 0.01 * i), SAMPLE_RATE, "wav") for i in range(n + 1)]


def upload_one(settings, data: bytes, user: str, watch: EtaWatch, timeout_s: float = 300) -> str:
    from vomage_dagster.local.client.uploads import upload_file

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "clip.wav"
        path.write_bytes(data)
        rid = upload_file(settings, path, user, lat="35.68", lon="139.69", tz="Asia/Tokyo")
    deadline = time.monotonic() + timeout_s
    while watch.final_at(rid) is None and time.monotonic() < deadline:
        time.sleep(0.02)
    return rid


def eta_row(rid: str, watch: EtaWatch) -> dict | None:
    """The ETA shown at registration against the seconds it then took to complete."""
    seen = watch.seen.get(rid, [])
    first = next(((t, item) for t, item in seen if item.get("eta_seconds") is not None), None)
    done = watch.final_at(rid)
    if first is None or done is None:
        return None
    shown_at, item = first
    return {"recording_id": rid, "stage": item["stage"], "eta_s": float(item["eta_seconds"]),
            "took_s": round(done - shown_at, 2), "error_s": round(float(item["eta_seconds"]) - (done - shown_at), 2)}


def main() -> int:
    from vomage_dagster.cli.common import exit_on_sigterm

    exit_on_sigterm()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20, help="users, each with their own recording")
    parser.add_argument("--out", default=str(RESULTS / "personal.json"))
    args = parser.parse_args()

    from vomage_dagster.local.aws import stack
    from vomage_dagster.resources.build import build_resources
    from vomage_dagster.settings import load_settings

    state = Path(tempfile.mkdtemp(prefix="vomage-bench-personal-"))
    os.environ.update({"VOMAGE_STATE_DIR": str(state), "VOMAGE_ENV": "local"})
    clips = variants(args.n)
    info, settings = start_stack()
    watch = EtaWatch(settings.redis_url)
    watch.start()
    how = argparse.Namespace(cluster=0, max_runs=2, launch="queued", compute_logs="none", runs="warm")
    try:
        with dagster_processes(state, how, {}):
            upload_one(settings, clips[0], "bench-warm-up", watch)  # the first run pays the imports
            rids = [upload_one(settings, data, f"bench-user-{i:03d}", watch) for i, data in enumerate(clips[1:])]
            res = build_resources(settings)
            records = [res["records"].get(rid) for rid in rids]
            images = [hashlib.sha256(res["store"].get_bytes(r["image_key"])).hexdigest() for r in records if r]
            prompts = {r["mood"]["image_prompt"] for r in records if r}
            moods = {r["mood"]["primary_emotion"] for r in records if r}
    finally:
        stack.down(load_settings())
    rows = [row for rid in rids if (row := eta_row(rid, watch))]
    learned = rows[3:]  # the first recordings are estimated from typical values, the rest from measured ones
    out = {
        "n": args.n, "complete": len(images), "distinct_images": len(set(images)),
        "distinct_prompts": len(prompts), "moods": sorted(moods),
        "eta": rows,
        "eta_abs_error_p50_s": pct([abs(r["error_s"]) for r in rows], 50),
        "eta_abs_error_learned_p50_s": pct([abs(r["error_s"]) for r in learned], 50) if learned else None,
        "eta_abs_error_learned_p95_s": pct([abs(r["error_s"]) for r in learned], 95) if learned else None,
        "eta_over_took_learned_p50": (round(statistics.median(r["eta_s"] / r["took_s"] for r in learned
                                                              if r["took_s"] > 0), 2) if learned else None),
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=2))
    print(f"{args.n} users, one sample's words at {args.n} volumes: moods {out['moods']}, "
          f"{out['distinct_prompts']} distinct prompt(s), {out['complete']} complete")
    print(f"distinct images: {out['distinct_images']} of {out['complete']}")
    print(f"{'#':>3} {'shown at':>12} {'ETA s':>7} {'took s':>7} {'error s':>8}")
    for i, r in enumerate(rows):
        print(f"{i + 1:>3} {r['stage']:>12} {r['eta_s']:>7.1f} {r['took_s']:>7.2f} {r['error_s']:>8.2f}")
    print(f"|ETA error| p50 {out['eta_abs_error_p50_s']} s; from measured stages (after the first 3): "
          f"p50 {out['eta_abs_error_learned_p50_s']} s, p95 {out['eta_abs_error_learned_p95_s']} s, "
          f"ETA/took p50 {out['eta_over_took_learned_p50']}")
    print(f"wrote {args.out}")
    return 0 if out["distinct_images"] == out["complete"] == args.n else 1


if __name__ == "__main__":
    raise SystemExit(main())
