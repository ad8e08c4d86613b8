"""The live view measured in a real browser: stop → words on screen, stop → mood, stop → image.

    ./scripts/bench_browser.sh [--runs 5]

A stack of its own, the daemon with its run worker and the ingest service, `vomage app`'s
server, and headless Chromium whose fake microphone plays each bundled English and
Chinese sample in turn: the page records it at real-time pace, stops, uploads through the
presigned POST and follows the WebSocket, signed in with a token of the stack's Cognito
user pool. The page itself measures from the click on Stop
(`window.vomage.timings`), so the figures include MediaRecorder's encoding, the upload,
the ingest, the run and the WebSocket, as a user would see them. Prints a table (median,
p95) and writes benchmarks/results/browser.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
from pathlib import Path

from benchmarks.stacks import start_stack
from vomage_dagster.local.aws import stack
from vomage_dagster.local.demo.samples import SAMPLES_DIR, sample_manifest
from vomage_dagster.local.deployment.daemon import running_daemon
from vomage_dagster.settings import load_settings
from vomage_dagster.testing.browser import chromium, fake_microphone, microphone_wav, record_and_watch

RESULTS = Path(__file__).parent / "results" / "browser.json"


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> int:
    from vomage_dagster.cli.common import exit_on_sigterm

    exit_on_sigterm()  # a stopped benchmark stops what it started
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="recordings to make (samples in turn)")
    args = parser.parse_args()
    from vomage_dagster.local.client.user_pool import sign_in_as
    from vomage_dagster.local.deployment.live_view import running_live_view

    work = Path(tempfile.mkdtemp(prefix="vomage-browser-bench-"))
    os.environ.update({"VOMAGE_STATE_DIR": str(work / "state"), "VOMAGE_ENV": "local"})
    info, settings = start_stack()
    samples = [m for m in sample_manifest() if m["file"][:3] in ("en_", "zh_")]
    rows = []
    try:
        with running_daemon(work / "state", {}), running_live_view(work / "state", stack.free_port()) as base:
            for i in range(args.runs):
                sample = samples[i % len(samples)]
                wav = work / f"mic-{i}.wav"
                seconds = microphone_wav(SAMPLES_DIR / sample["file"], wav)
                # A real pool token for each run (the user is made in the stack's pool).
                token = sign_in_as(settings, "bench-user").access_token
                with chromium(fake_microphone(wav)) as driver:
                    seen = record_and_watch(driver, f"{base}/?token={token}", "bench-user", seconds + 0.8)
                t = seen["timings"]
                rows.append({"sample": sample["file"], "clip_s": round(seconds, 2), "stage": seen["stage"],
                             **{f"stop_to_{k}_s": round(t[k] / 1000, 3) for k in ("words", "mood", "image")
                                if k in t}})
                print(f"  {sample['file']:<16} {seen['stage']:<9} " + "  ".join(
                    f"{k} {t[k] / 1000:.2f} s" for k in ("words", "mood", "image") if k in t), flush=True)
    finally:
        stack.down(load_settings())
    done = [r for r in rows if r["stage"] == "complete"]
    summary = {}
    print(f"\n{'stop →':<10}{'median':>9}{'p95':>9}   ({len(done)} of {len(rows)} complete)")
    for what in ("words", "mood", "image"):
        values = [r[f"stop_to_{what}_s"] for r in done]
        if values:
            summary[f"stop_to_{what}_p50_s"] = round(statistics.median(values), 3)
            summary[f"stop_to_{what}_p95_s"] = round(pct(values, 0.95), 3)
            print(f"{what:<10}{summary[f'stop_to_{what}_p50_s']:>8.2f}s{summary[f'stop_to_{what}_p95_s']:>8.2f}s")
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps({"machine": f"{platform.machine()}, {os.cpu_count()} cores",
                                   "local_models": True, "runs": rows, **summary}, indent=1))
    print(f"\nwritten: {RESULTS.relative_to(Path.cwd()) if RESULTS.is_relative_to(Path.cwd()) else RESULTS}")
    return 0 if len(done) == len(rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
