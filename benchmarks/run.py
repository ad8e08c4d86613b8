"""Upload → complete on the embedded stack, through the real ingest path (SQS, the ingest service, the daemon).

    ./scripts/bench.sh            (or: .venv/bin/python -m benchmarks.run)

Measures, in one run on a private stack: single arrivals (one upload at a time),
a burst (all at once), the compute floor (the same models called directly in one warm
process over the burst's clips), a cached repeat (same audio again: model calls must be
0), and peak memory. Prints a table and writes benchmarks/results/latest.json.

The levers are options, so each can be measured against the defaults, e.g.
`./scripts/bench.sh --max-batch 1` (every recording its own run), `--sqs-wait 0`
(no long poll), `--launch immediate` (no run queue), `--max-runs 1`, `--compute-logs local`
(Dagster's per-run compute-log capture back on), `--runs spawn` (a process per run instead
of the warm run worker).

Scale: `--preload-partitions 0,10000,100000` adds that many `recordings` partitions to the
instance, level by level, and measures single arrivals and a burst again at each level
(`--scale-singles`, `--scale-burst`), so a per-recording cost that grows with the
partition count shows as a ratio to level 0.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import threading
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from benchmarks.stacks import start_stack

RESULTS = Path(__file__).resolve().parent / "results"
PROFILES = Path(__file__).resolve().parent / "profiles"
MODEL_STAGES = ("transcript", "mood", "mood_image")


def stage_seconds(record: dict) -> float:
    """The seconds a recording spent in its stages' own work on the critical path: decode,
    then transcript beside context (the longer counts), mood, image. Upload→complete minus
    this is the platform's share: sensor, queue, run start, Dagster's bookkeeping, status
    and record writes."""
    sec = record["seconds"]
    return (sec.get("raw_recording", 0) + max(sec.get("transcript", 0), sec.get("recording_context", 0))
            + sec.get("mood", 0) + sec.get("mood_image", 0))


def pg_sessions() -> int | None:
    """Connections Postgres has accepted so far (pg_stat_database.sessions, PG 14+), on the
    cluster; None without one."""
    if "DAGSTER_PG_PORT" not in os.environ:
        return None
    import psycopg2

    with psycopg2.connect(host=os.environ["DAGSTER_PG_HOST"], port=os.environ["DAGSTER_PG_PORT"],
                          user=os.environ["DAGSTER_PG_USER"], password=os.environ["DAGSTER_PG_PASSWORD"],
                          dbname=os.environ["DAGSTER_PG_DB"]) as conn, conn.cursor() as cur:
        cur.execute("SELECT sessions FROM pg_stat_database WHERE datname = current_database()")
        return int(cur.fetchone()[0])


def preload_partitions(home: Path, total: int) -> int:
    """Bring the instance's `recordings` partitions to at least `total` (fake ids that no
    upload names), in chunks; the number there is afterwards."""
    os.environ["DAGSTER_HOME"] = str(home)
    from dagster import DagsterInstance

    from vomage_dagster.assets.partitions import recordings

    with DagsterInstance.get() as instance:
        have = len(instance.get_dynamic_partitions(recordings.name))
        while have < total:
            chunk = [f"rec-preload-{i:07d}" for i in range(have, min(total, have + 10_000))]
            instance.add_dynamic_partitions(recordings.name, chunk)
            have += len(chunk)
        return len(instance.get_dynamic_partitions(recordings.name))


def pct(values: list[float], q: float) -> float:
    return round(float(np.percentile(values, q)), 2) if values else float("nan")


def make_clips(n: int, seed: int = 7) -> list[tuple[str, bytes, str | None]]:
    """n distinct 5–15 s clips (name, m4a bytes, language hint): a sample repeated with
    different pauses and gain, so no two share an audio hash."""
    from vomage_dagster.domain.audio import SAMPLE_RATE, decode
    from vomage_dagster.local.demo.samples import SAMPLES_DIR, sample_manifest
    from vomage_dagster.testing.audio_files import encode

    rng = np.random.default_rng(seed)
    sources = [(m, decode((SAMPLES_DIR / m["file"]).read_bytes()).samples) for m in sample_manifest()]
    clips = []
    for i in range(n):
        meta, pcm = sources[i % len(sources)]
        parts, total = [], 0.0
        while total < 5.0:
            gap = np.zeros(int(rng.uniform(0.2, 0.8) * SAMPLE_RATE), np.float32)
            parts += [pcm * rng.uniform(0.6, 1.0), gap]
            total += (len(pcm) + len(gap)) / SAMPLE_RATE
        audio = np.concatenate(parts)[: 15 * SAMPLE_RATE]
        clips.append((f"{Path(meta['file']).stem}-{i}", encode(audio, SAMPLE_RATE, "m4a"), meta.get("lang")))
    return clips


class MemoryWatch(threading.Thread):
    """Peak resident memory of the run workers: the processes of the daemon's process
    group other than the daemon and its code server, sampled from /proc."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.peak_run_mb = 0.0
        self.group: int | None = None
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.wait(0.2):
            if self.group is None:
                continue
            for pid in os.listdir("/proc"):
                if not pid.isdigit() or int(pid) == self.group:
                    continue
                try:
                    pgrp = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[2])
                    if pgrp != self.group or b"grpc" in Path(f"/proc/{pid}/cmdline").read_bytes():
                        continue
                    rss = _status_kb(int(pid), "VmRSS")
                except (OSError, IndexError, ValueError):
                    continue
                self.peak_run_mb = max(self.peak_run_mb, rss / 1024)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def group_cpu_seconds(pgid: int) -> float:
    """CPU time of a process group so far: its live processes and the children they
    have reaped (run processes of the code server, Postgres backends of the postmaster)."""
    total = 0
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid:
            total += sum(int(f) for f in fields[11:15])
    return total / os.sysconf("SC_CLK_TCK")


def machine_busy_seconds() -> float:
    """CPU time spent by everything on the machine, all cores (from /proc/stat)."""
    user, nice, system, _idle, _iowait, irq, softirq, steal = map(int, Path("/proc/stat").read_text().split()[1:9])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def _status_kb(pid: int, field: str) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return float(line.split()[1])
    return 0.0


def _group_peak_mb(pgid: int) -> float:
    """The largest peak RSS among a process group's processes (a Celery worker is a
    launcher, the worker and its pool process; the pool process does the work)."""
    peak = 0.0
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            if int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[2]) == pgid:
                peak = max(peak, _status_kb(int(pid), "VmHWM") / 1024)
        except (OSError, IndexError, ValueError):
            continue
    return round(peak, 1)


def model_calls(info: dict) -> dict:
    with urllib.request.urlopen(f"http://127.0.0.1:{info['ports']['models']}/stats", timeout=5) as r:
        return json.loads(r.read())["calls"]


class StatusWatch(threading.Thread):
    """When each recording became complete or failed, as the app learns it: from the
    `status:<id>` Redis channel the tracker publishes on. Waiting this way costs the
    stack nothing, where polling the status table would load moto with the harness's own
    requests."""

    def __init__(self, redis_url: str) -> None:
        import redis

        super().__init__(daemon=True)
        self.pubsub = redis.Redis.from_url(redis_url).pubsub(ignore_subscribe_messages=True)
        self.pubsub.psubscribe("status:*")
        self.final_at: dict[str, float] = {}

    def run(self) -> None:
        import redis

        try:
            for message in self.pubsub.listen():
                self.seen(json.loads(message["data"]))
        except redis.ConnectionError:  # the stack stopped
            return

    def seen(self, item: dict) -> None:
        from vomage_dagster.domain.lifecycle import FINAL as TERMINAL

        if item.get("stage") in TERMINAL:
            self.final_at.setdefault(item["recording_id"], time.time())


def upload_and_wait(settings, clips, timeout_s: float, watch: StatusWatch) -> list:
    from vomage_dagster.local.client.uploads import upload_file
    from vomage_dagster.local.demo.samples import Upload, wait_until_final

    uploads = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, data, lang in clips:
            path = Path(tmp) / f"{name}.m4a"
            path.write_bytes(data)
            rid = upload_file(settings, path, "bench", lang=lang, tz="UTC")
            uploads.append(Upload(rid, path, time.time()))
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and any(u.recording_id not in watch.final_at for u in uploads):
        time.sleep(0.02)
    wait_until_final(settings, uploads, timeout_s=60, poll_s=1)  # fills status and record
    for u in uploads:  # the moment it became final, not when the table was read
        u.finished_at = watch.final_at.get(u.recording_id, u.finished_at)
    return uploads


def floor_seconds(clips) -> float:
    """The models alone, warm, in this process, over the same clips."""
    from vomage_dagster.domain import prompts
    from vomage_dagster.domain.audio import decode
    from vomage_dagster.local.models.asr import SpeechModel
    from vomage_dagster.local.models.mood_model import MoodModel
    from vomage_dagster.local.models.painter import paint

    speech, mood = SpeechModel(), MoodModel()
    started = time.perf_counter()
    for _name, data, lang in clips:
        results = speech.transcribe(decode(data).samples, lang)
        text = results["transcripts"][0]["transcript"]
        analysis = mood.analyze(text, results["language_code"])
        paint(f"Abstract expressive painting of {analysis['primary_emotion']}, {prompts.PALETTES['joy']}")
    return time.perf_counter() - started


def run_phases(home: Path, groups: dict[str, list]) -> dict:
    """Where the time of each group's runs went, from the Dagster event log: upload →
    run created (sensor), created → launched (queue), launched → started (run process
    start), started → finished (the steps); medians over the group's runs."""
    os.environ["DAGSTER_HOME"] = str(home)
    from dagster import DagsterEventType, DagsterInstance, RunsFilter

    from vomage_dagster.domain.run_tags import recordings_of_run

    uploaded = {u.recording_id: u.uploaded_at for us in groups.values() for u in us}
    group_of = {u.recording_id: g for g, us in groups.items() for u in us}
    phases: dict[str, dict[str, list[float]]] = {g: {} for g in groups}
    with DagsterInstance.get() as instance:
        for rec in instance.get_run_records(RunsFilter(job_name="process_recording")):
            rids = list(recordings_of_run(rec.dagster_run.tags))
            group = next((group_of[r] for r in rids if r in group_of), None)
            if group is None:
                continue
            created = rec.create_timestamp.timestamp()
            marks = {}
            for kind in (DagsterEventType.PIPELINE_STARTING, DagsterEventType.PIPELINE_START,
                         DagsterEventType.PIPELINE_SUCCESS, DagsterEventType.PIPELINE_FAILURE):
                found = instance.get_records_for_run(rec.dagster_run.run_id, of_type=kind, limit=1).records
                if found:
                    marks[kind] = found[0].timestamp
            end = marks.get(DagsterEventType.PIPELINE_SUCCESS) or marks.get(DagsterEventType.PIPELINE_FAILURE)
            launched = marks.get(DagsterEventType.PIPELINE_STARTING)
            started = marks.get(DagsterEventType.PIPELINE_START)
            p = phases[group]
            p.setdefault("recordings_per_run", []).append(len(rids))
            p.setdefault("sensor_s", []).extend(created - uploaded[r] for r in rids if r in uploaded)
            if launched:
                p.setdefault("queue_s", []).append(launched - created)
            if launched and started:
                p.setdefault("process_start_s", []).append(started - launched)
            if started and end:
                p.setdefault("steps_s", []).append(end - started)
    return {g: {**{k: pct(v, 50) for k, v in p.items()}, "runs": len(p.get("recordings_per_run", []))}
            for g, p in phases.items()}


@contextmanager
def dagster_processes(state: Path, args: argparse.Namespace, env: dict[str, str]):
    """The daemon alone (runs execute their steps in-process) or the whole cluster
    (steps on Celery workers); yields the instance home and the pids worth watching."""
    if not args.cluster:
        from vomage_dagster.local.deployment.daemon import running_daemon

        with running_daemon(state, env, args.max_runs, args.launch, args.compute_logs, args.runs) as daemon:
            pids = {"daemon": daemon.proc.pid, "runs": daemon.proc.pid}
            if daemon.run_worker is not None:  # the runs execute in its process group
                pids |= {"run-worker": daemon.run_worker.pid, "runs": daemon.run_worker.pid}
            pids |= {"ingest": daemon.ingest.pid}
            yield daemon.home, pids
        return
    from vomage_dagster.local.deployment.cluster import running_cluster

    with running_cluster(state, args.cluster, args.max_runs, env) as info:
        os.environ.update(info["env"])  # the instance reads DAGSTER_PG_* from the environment
        pids = dict(info["pids"])
        yield Path(info["home"]), {**pids, "runs": pids["code-server"]}


def main() -> int:
    from vomage_dagster.cli.common import exit_on_sigterm

    exit_on_sigterm()  # a stopped benchmark stops what it started
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--singles", type=int, default=20)
    parser.add_argument("--burst", type=int, default=60)
    parser.add_argument("--cached", type=int, default=5)
    parser.add_argument("--max-batch", type=int, default=None, help="recordings per run (default: the setting, 10)")
    parser.add_argument("--sqs-wait", type=int, default=None, help="the ingest's SQS long poll seconds (default 5)")
    parser.add_argument("--transcribe-poll", type=float, default=None, help="seconds (default 0.25 locally)")
    parser.add_argument("--launch", choices=("queued", "immediate"), default="queued")
    parser.add_argument("--max-runs", type=int, default=2, help="concurrent runs when queued")
    parser.add_argument("--cluster", type=int, default=0, metavar="WORKERS",
                        help="run through `vomage cluster` (Postgres, code server, daemon, this many "
                             "Celery workers) instead of the single-process daemon")
    parser.add_argument("--runs", choices=("warm", "spawn"), default="warm",
                        help="runs in the warm run worker, or a process spawned per run (Dagster's default)")
    parser.add_argument("--pg-pool", choices=("on", "off"), default=None,
                        help="cluster only: pooled Postgres connections (default on) or one per storage call")
    parser.add_argument("--compute-logs", choices=("none", "local"), default="none",
                        help="Dagster compute-log capture for runs (local: 4 helper processes per run)")
    parser.add_argument("--preload-partitions", default="", metavar="N,N,...",
                        help="partition counts to measure at, e.g. 0,10000,100000")
    parser.add_argument("--scale-singles", type=int, default=10)
    parser.add_argument("--scale-burst", type=int, default=20)
    parser.add_argument("--profile", default="", metavar="NAME|PATH",
                        help="a latency profile (benchmarks/profiles/NAME.json): AWS's published latencies "
                             "applied by the stack, a simulation")
    parser.add_argument("--out", default=str(RESULTS / "latest.json"))
    args = parser.parse_args()
    levels = [int(n) for n in args.preload_partitions.split(",") if n.strip()]
    levers = {"VOMAGE_MAX_BATCH": args.max_batch, "VOMAGE_SQS_WAIT_SECONDS": args.sqs_wait,
              "VOMAGE_TRANSCRIBE_POLL_SECONDS": args.transcribe_poll, "VOMAGE_PG_POOL": args.pg_pool}
    levers = {k: str(v) for k, v in levers.items() if v is not None}

    from vomage_dagster.local import processes
    from vomage_dagster.local.aws import stack
    from vomage_dagster.settings import load_settings

    state = Path(tempfile.mkdtemp(prefix="vomage-bench-"))
    os.environ.update({"VOMAGE_STATE_DIR": str(state), "VOMAGE_ENV": "local", **levers})
    if args.profile:
        found = Path(args.profile) if args.profile.endswith(".json") else PROFILES / f"{args.profile}.json"
        levers["VOMAGE_LATENCY_PROFILE"] = str(found.resolve())
        os.environ["VOMAGE_LATENCY_PROFILE"] = levers["VOMAGE_LATENCY_PROFILE"]
        print(f"SIMULATION: every managed service held to the latencies of {found.name} (not a measurement)")
    per_level = args.scale_singles + args.scale_burst
    clips = make_clips(args.singles + args.burst + per_level * len(levels))
    singles, burst = clips[: args.singles], clips[args.singles: args.singles + args.burst]
    level_clips = clips[args.singles + args.burst:]
    scale: list[dict] = []
    info, settings = start_stack()
    watch = MemoryWatch()
    watch.start()
    status_watch = StatusWatch(settings.redis_url)
    status_watch.start()
    out: dict = {}
    try:
        with dagster_processes(state, args, levers) as (home, pids):
            watch.group = pids["runs"]
            upload_and_wait(settings, singles[:1], 300, status_watch)  # warm-up: first run pays imports
            single = []
            for clip in singles:
                single += upload_and_wait(settings, [clip], 300, status_watch)
            dagster = {n: p for n, p in pids.items() if n != "runs"}
            cpu_before = {n: group_cpu_seconds(p) for n, p in info["pids"].items()}
            cpu_before |= {n: group_cpu_seconds(p) for n, p in dagster.items()}
            busy_before = machine_busy_seconds()
            sessions_before = pg_sessions()
            t0 = time.time()
            burst_uploads = upload_and_wait(settings, burst, 1800, status_watch)
            sessions_after = pg_sessions()
            burst_cpu = {n: round(group_cpu_seconds(p) - cpu_before[n], 1) for n, p in info["pids"].items()}
            burst_cpu |= {n: round(group_cpu_seconds(p) - cpu_before[n], 1) for n, p in dagster.items()}
            burst_cpu["everything else (this harness, other work)"] = round(
                machine_busy_seconds() - busy_before - sum(burst_cpu.values()), 1)
            # `--burst 0`: single arrivals only (the burst's rows then say 0).
            burst_wall = max((u.finished_at for u in burst_uploads if u.finished_at), default=t0) - t0
            before = model_calls(info)
            cached = []
            for clip in singles[: args.cached]:
                cached += upload_and_wait(settings, [clip], 300, status_watch)
            cached_calls = sum(model_calls(info).values()) - sum(before.values())
            daemon_mb = _status_kb(processes.command_pid(pids["daemon"]) or pids["daemon"], "VmHWM") / 1024
            stack_mb = {n: round(_status_kb(processes.command_pid(p) or p, "VmHWM") / 1024, 1)
                        for n, p in info["pids"].items()}
            stack_mb.update({n: _group_peak_mb(p) for n, p in pids.items()
                             if n.startswith("worker-") or n in ("postgres", "webserver")})
            if "code-server" in pids:
                server = processes.command_pid(pids["code-server"]) or pids["code-server"]
                stack_mb["code-server"] = round(_status_kb(server, "VmHWM") / 1024, 1)
            phases = run_phases(home, {"single": single, "burst": burst_uploads, "cached": cached})
            for i, level in enumerate(levels):
                mine = level_clips[i * per_level:(i + 1) * per_level]
                started = time.perf_counter()
                present = preload_partitions(home, level)
                preload_s = time.perf_counter() - started
                ones = []
                for clip in mine[: args.scale_singles]:
                    ones += upload_and_wait(settings, [clip], 300, status_watch)
                t1 = time.time()
                many = upload_and_wait(settings, mine[args.scale_singles:], 1800, status_watch)
                scale.append({
                    "preloaded": level, "partitions": present, "preload_s": round(preload_s, 1),
                    "single_p50_s": pct([u.wall_s for u in ones if u.wall_s is not None], 50),
                    "burst_n": len(many),
                    "burst_wall_s": round(max(u.finished_at for u in many if u.finished_at) - t1, 2),
                    "complete": sum(1 for u in ones + many if (u.status or {}).get("stage") == "complete"),
                })
    finally:
        watch.stop.set()
        stack.down(load_settings())
    floor = floor_seconds(burst) if burst else 0.0

    lat = [u.wall_s for u in single if u.wall_s is not None]
    stage_p50 = {s: pct([u.record["seconds"].get(s, 0) for u in single if u.record], 50)
                 for s in ("raw_recording", "transcript", "recording_context", "mood", "mood_image",
                           "published_record")}
    model_share = [sum(u.record["seconds"].get(s, 0) for s in MODEL_STAGES) / u.wall_s
                   for u in single if u.record and u.wall_s]
    share = [u.wall_s - stage_seconds(u.record) for u in single if u.record and u.wall_s]
    for row in scale:
        row["single_ratio"] = round(row["single_p50_s"] / scale[0]["single_p50_s"], 2)
        row["burst_ratio"] = round(row["burst_wall_s"] / scale[0]["burst_wall_s"], 2)
    out = {
        "single_n": len(lat), "single_p50_s": pct(lat, 50), "single_p95_s": pct(lat, 95),
        "single_stage_p50_s": stage_p50,
        "orchestration_share_p50": round(1 - statistics.median(model_share), 3) if model_share else None,
        "dagster_share_p50_s": pct(share, 50), "dagster_share_p95_s": pct(share, 95),
        "burst_n": len(burst), "burst_wall_s": round(burst_wall, 2),
        "burst_complete": sum(1 for u in burst_uploads if (u.status or {}).get("stage") == "complete"),
        "recordings_per_minute": round(60 * len(burst) / burst_wall, 1) if burst_wall else None,
        "burst_cpu_s": burst_cpu,
        "floor_s": round(floor, 2), "burst_over_floor": round(burst_wall / floor, 2) if floor else None,
        "pg_connections_per_recording": (round((sessions_after - sessions_before) / len(burst), 1)
                                         if sessions_before is not None and burst else None),
        "cached_n": len(cached), "cached_model_calls": cached_calls,
        "cached_p50_s": pct([u.wall_s for u in cached if u.wall_s is not None], 50),
        "peak_rss_mb": round(max(watch.peak_run_mb, daemon_mb, *stack_mb.values()), 1),
        "peak_rss_run_mb": round(watch.peak_run_mb, 1), "peak_rss_daemon_mb": round(daemon_mb, 1),
        "peak_rss_stack_mb": stack_mb,
        "phases_p50_s": phases,
        "scale": scale,
        "levers": {"launch": args.launch, "max_concurrent_runs": args.max_runs,
                   "compute_logs": args.compute_logs, "runs": args.runs, **levers},
        "setup": f"cluster, {args.cluster} Celery workers" if args.cluster else "single process",
        "machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0],
                    "platform": platform.platform(), "processor": platform.processor() or platform.machine(),
                    "memory_gb": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)},
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        # Under a profile the model stages are held to AWS's figures: a simulation. The
        # compute floor is the local models called directly, so burst/floor then means little.
        "simulation": {"profile": args.profile} if args.profile else None,
    }
    previous = Path(args.out)
    if previous.exists():  # keep the speech benchmark's keys (benchmarks/speech.py)
        kept = json.loads(previous.read_text()).get("speech")
        if kept:
            out["speech"] = kept
    rows = [("single arrivals p50 / p95 (s)", f"{out['single_p50_s']} / {out['single_p95_s']}"),
            ("  stage p50 (s)", ", ".join(f"{k} {v}" for k, v in stage_p50.items())),
            ("  orchestration share p50", out["orchestration_share_p50"]),
            ("  Dagster's share p50 / p95 (s)", f"{out['dagster_share_p50_s']} / {out['dagster_share_p95_s']}"),
            (f"burst of {len(burst)}: wall (s)", out["burst_wall_s"]),
            ("  recordings per minute", out["recordings_per_minute"]),
            ("  CPU seconds by process", ", ".join(f"{k} {v}" for k, v in burst_cpu.items())),
            ("compute floor (s)", out["floor_s"]), ("burst / floor", out["burst_over_floor"]),
            *((("  Postgres connections per recording (burst)", out["pg_connections_per_recording"]),)
              if out["pg_connections_per_recording"] is not None else ()),
            ("cached repeat: model calls", out["cached_model_calls"]), ("cached p50 (s)", out["cached_p50_s"]),
            *((f"  {g} runs: p50 phases (s)", ", ".join(f"{k} {v}" for k, v in p.items()))
              for g, p in phases.items()),
            *((f"at {row['partitions']} partitions: single p50, burst of {row['burst_n']} (s)",
               f"{row['single_p50_s']} ({row['single_ratio']}x), {row['burst_wall_s']} ({row['burst_ratio']}x)")
              for row in scale),
            ("peak RSS (MB): run / daemon", f"{out['peak_rss_run_mb']} / {out['peak_rss_daemon_mb']}"),
            ("peak RSS (MB): stack", ", ".join(f"{k} {v}" for k, v in stack_mb.items()))]
    if args.profile:
        rows.insert(0, ("SIMULATION under latency profile", args.profile))
    width = max(len(k) for k, _ in rows)
    print("\n".join(f"{k:<{width}}  {v}" for k, v in rows))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=1) + "\n")
    print(f"\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
