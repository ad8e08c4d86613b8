"""From the end of speech to the words, the mood and the image, three ways in one run.

    ./scripts/bench.sh --speech [--clips 10] [--modes local,aws,aws-batch,aws-nova-micro]

The simulated app (`vomage_dagster/local/client/speaking_app.py`) streams each clip to the
streaming endpoint at real-time pace while "recording", uploads at the end of speech and
puts the streamed transcript beside it; the platform's status channel (`status:<id>` on
Redis, what the live view follows) says when the transcript, the mood and the image exist.
Modes, each on a fresh private stack with the daemon, its warm run worker and the ingest
service:

- `local`: the local models as they are, the clip streamed at real-time pace to the
  local endpoint (its Whisper on these 2 cores sets when the final result comes);
- `aws`: under `benchmarks/profiles/aws.json` (AWS's published latencies: a simulation);
  the streamed words arrive at the profile's streaming delay after the end of speech, as
  Transcribe's would (`speak_as_on_aws`), and every managed service call is held to its
  figure;
- `aws-batch`: the same profile, no streaming: the upload alone, the Transcribe batch job;
- `aws-live-stream` (opt-in): the profile with the clip streamed live to the local
  endpoint, so the local Whisper's timing, not Transcribe's, sets the words;
- `aws-nova-micro` (opt-in): the `aws` mode with Nova Micro as the mood model;
- `aws-haiku-5-5` (opt-in): the `aws` mode with Claude Haiku 5.5 as the mood model (its
  latency figures in the profile are assumptions: none is published);
- `aws-untraced`, `aws-collector-down` (opt-in): the `aws` mode with tracing off, and with
  every process exporting its spans to a port nobody listens on: what tracing costs, and
  what an unreachable collector costs (`--modes aws,aws-untraced,aws-collector-down`).

Each clip is one of the bundled samples with its own pauses and gain (no two share an
audio hash), and the cache is emptied before each, so every clip pays every model call.
Each mode also gets a latency budget from the recordings' traces (`benchmarks/budget.py`):
every span's median start, end and duration after the end of speech.
Writes benchmarks/results/speech.json and merges its keys into latest.json.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.stacks import start_stack

from . import budget
from .run import RESULTS, StatusWatch, make_clips, pct

PROFILES = Path(__file__).resolve().parent / "profiles"
# stream: "live" (real-time to the local endpoint, its Whisper's timing), "aws" (the words
# from the local endpoint, their arrival at the profile's streaming delay), or None (batch).
MODES = {
    "local": {"profile": None, "stream": "live", "env": {}},
    "aws": {"profile": "aws", "stream": "aws", "env": {}},
    "aws-batch": {"profile": "aws", "stream": None, "env": {}},
    "aws-live-stream": {"profile": "aws", "stream": "live", "env": {}},
    "aws-nova-micro": {"profile": "aws", "stream": "aws",
                       "env": {"VOMAGE_ANALYSIS_MODEL_ID": "amazon.nova-micro-v1:0"}},
    "aws-haiku-5-5": {"profile": "aws", "stream": "aws",
                      "env": {"VOMAGE_ANALYSIS_MODEL_ID": "anthropic.claude-haiku-5-5"}},
    "aws-untraced": {"profile": "aws", "stream": "aws", "env": {"VOMAGE_TRACES_ENDPOINT": "off"}},
    # Port 9 (discard) on loopback: nothing listens, every export is refused.
    "aws-collector-down": {"profile": "aws", "stream": "aws",
                           "env": {"VOMAGE_TRACES_ENDPOINT": "http://127.0.0.1:9/v1/traces"}},
}
LANGUAGES = {"en": "en-US", "zh": "zh-CN", "ja": "ja-JP"}


class Milestones(StatusWatch):
    """When each recording's status first carried its transcript, its mood, and became
    final (time.monotonic(), the clock the simulated app stamps the end of speech with)."""

    def __init__(self, redis_url: str) -> None:
        super().__init__(redis_url)
        self.milestones: dict[str, dict[str, float]] = {}

    def seen(self, item: dict) -> None:
        now = time.monotonic()
        mine = self.milestones.setdefault(item["recording_id"], {})
        if item.get("transcript"):
            mine.setdefault("transcript", now)
        if item.get("mood"):
            mine.setdefault("mood", now)
        if item.get("stage") in ("complete", "failed"):
            mine.setdefault(item["stage"], now)


def run_mode(name: str, clips: list, timeout_s: float, launch: str = "queued") -> dict:
    import redis

    from vomage_dagster.local.aws import stack
    from vomage_dagster.local.client.speaking_app import speak, speak_as_on_aws
    from vomage_dagster.local.client.uploads import upload_file
    from vomage_dagster.local.deployment.daemon import running_daemon
    from vomage_dagster.resources import latency
    from vomage_dagster.resources.aws import clear_clients
    from vomage_dagster.settings import load_settings

    mode = MODES[name]
    state = Path(tempfile.mkdtemp(prefix=f"vomage-speech-{name}-"))
    saved = dict(os.environ)
    os.environ.update({"VOMAGE_STATE_DIR": str(state), "VOMAGE_ENV": "local", **mode["env"]})
    os.environ.pop("VOMAGE_LATENCY_PROFILE", None)
    if mode["profile"]:
        os.environ["VOMAGE_LATENCY_PROFILE"] = str(PROFILES / f"{mode['profile']}.json")
    rows, placed = [], []
    profile = latency.load(os.environ["VOMAGE_LATENCY_PROFILE"]) if mode["profile"] else None
    try:
        _info, settings = start_stack(mode["env"])
        watch = Milestones(settings.redis_url)
        watch.start()
        cache = redis.Redis.from_url(settings.redis_url)
        env = {**mode["env"], **({"VOMAGE_LATENCY_PROFILE": os.environ["VOMAGE_LATENCY_PROFILE"]}
                                 if mode["profile"] else {})}
        with running_daemon(state, env, launch=launch):
            with tempfile.TemporaryDirectory() as tmp:
                for i, (clip, data, _hint) in enumerate([clips[0], *clips]):  # the first warms up
                    path = Path(tmp) / f"{clip}.m4a"
                    path.write_bytes(data)
                    language = LANGUAGES[clip.split("_")[0]]
                    for kind in ("transcribe", "analysis", "image"):  # every clip pays every model call
                        for key in cache.scan_iter(match=f"{kind}:*"):
                            cache.delete(key)
                    if mode["stream"] == "live":
                        spoken = speak(settings, path, "bench", language=language, realtime=True, tz="UTC")
                        rid, end, heard = spoken.recording_id, spoken.end_of_speech, spoken.transcript_at
                    elif mode["stream"] == "aws":
                        delay = profile.seconds("transcribe_streaming_final_s")
                        spoken = speak_as_on_aws(settings, path, "bench", delay, language=language, tz="UTC")
                        rid, end, heard = spoken.recording_id, spoken.end_of_speech, spoken.transcript_at
                    else:  # the app records, then uploads; nothing streamed
                        end = time.monotonic()
                        rid = upload_file(settings, path, "bench", lang=language, tz="UTC", notify=True)
                        heard = None
                    end_wall_ns = time.time_ns() - int((time.monotonic() - end) * 1e9)
                    deadline = time.monotonic() + timeout_s
                    final = {"complete", "failed"}
                    while time.monotonic() < deadline and not final & set(watch.milestones.get(rid, ())):
                        time.sleep(0.02)
                    seen = watch.milestones.get(rid, {})
                    if i == 0:
                        continue
                    heard = heard if heard is not None else seen.get("transcript")
                    rows.append({
                        "clip": clip, "recording_id": rid, "final": "complete" if "complete" in seen else
                        "failed" if "failed" in seen else "timeout",
                        "to_transcript_s": round(heard - end, 3) if heard else None,
                        "to_mood_s": round(seen["mood"] - end, 3) if "mood" in seen else None,
                        "to_image_s": round(seen["complete"] - end, 3) if "complete" in seen else None,
                        "end_of_speech_ns": end_wall_ns,
                    })
                    print(f"  {name} {clip}: {rows[-1]}", flush=True)
            status = _sources(settings, [r["recording_id"] for r in rows])
            time.sleep(2)  # the processes' last span batches reach the collector
            placed = [budget.placed(budget.fetch_spans(settings.traces_endpoint, r["recording_id"]),
                                    r["end_of_speech_ns"]) for r in rows]
    finally:
        stack.down(load_settings())
        os.environ.clear()
        os.environ.update(saved)
        clear_clients()
    for r in rows:
        r["transcript_source"] = status.get(r["recording_id"])
    out = summarize(name, rows)
    out["budget"] = budget.budget(placed)
    return out


def _sources(settings, rids: list[str]) -> dict[str, str | None]:
    from vomage_dagster.resources.store import ObjectStore

    store = ObjectStore(bucket=settings.bucket, region_name=settings.region)
    return {rid: (store.get_json_or_none(f"processed/{rid}/transcript.json") or {}).get("source") for rid in rids}


def summarize(name: str, rows: list[dict]) -> dict:
    out: dict = {"mode": name, "n": len(rows), "complete": sum(r["final"] == "complete" for r in rows),
                 "profile": MODES[name]["profile"], "stream": MODES[name]["stream"],
                 "simulation": MODES[name]["profile"] is not None,
                 "transcript_sources": sorted({str(r.get("transcript_source")) for r in rows})}
    for key, label in (("to_transcript_s", "transcript"), ("to_mood_s", "mood"), ("to_image_s", "image")):
        values = [r[key] for r in rows if r[key] is not None]
        out[f"speech_end_to_{label}_p50_s"] = pct(values, 50)
        out[f"speech_end_to_{label}_p95_s"] = pct(values, 95)
    gaps = [r["to_mood_s"] - r["to_transcript_s"] for r in rows if r["to_mood_s"] and r["to_transcript_s"]]
    out["transcript_to_mood_p50_s"] = pct(gaps, 50)
    out["rows"] = rows
    return out


def main() -> int:
    from vomage_dagster.cli.common import exit_on_sigterm

    exit_on_sigterm()  # a stopped benchmark stops what it started
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=8)
    parser.add_argument("--modes", default="local,aws,aws-batch,aws-live-stream")
    parser.add_argument("--timeout", type=float, default=120)
    parser.add_argument("--launch", choices=("queued", "immediate"), default="queued",
                        help="runs through the run queue (default) or launched at once (a lever)")
    parser.add_argument("--out", default=str(RESULTS / "speech.json"))
    args = parser.parse_args()
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    unknown = set(modes) - set(MODES)
    if unknown:
        parser.error(f"unknown modes: {', '.join(sorted(unknown))}")
    clips = make_clips(args.clips, seed=11)
    suffix = "" if args.launch == "queued" else f"+{args.launch}"
    results = {m + suffix: run_mode(m, clips, args.timeout, args.launch) for m in modes}
    print("\nEnd of speech → (s), p50 / p95. Modes under a profile are a SIMULATION of AWS, not a measurement.")
    print(f"{'mode':<22} {'n':>3} {'complete':>8}  {'transcript':>13}  {'mood':>13}  {'image':>13}")
    for m, r in results.items():
        cells = [f"{r[f'speech_end_to_{k}_p50_s']} / {r[f'speech_end_to_{k}_p95_s']}"
                 for k in ("transcript", "mood", "image")]
        print(f"{m + (' (sim)' if r['simulation'] else ''):<22} {r['n']:>3} {r['complete']:>8}  "
              + "  ".join(f"{c:>13}" for c in cells))
    for m, r in results.items():
        if r["budget"]:
            print(f"\n{m}: each span's median start, end and duration, in s after the end of speech (traces)")
            print(budget.table(r["budget"]))
    report = {"when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "modes": results, "launch": args.launch,
              "note": "modes with a profile apply AWS's published latencies locally: a simulation"}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=1) + "\n")
    latest = RESULTS / "latest.json"
    merged = json.loads(latest.read_text()) if latest.exists() else {}
    merged.setdefault("speech", {}).update({m: {k: v for k, v in r.items() if k != "rows"}
                                            for m, r in results.items()})
    latest.write_text(json.dumps(merged, indent=1) + "\n")
    print(f"\nwrote {args.out} and the speech keys of {latest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
