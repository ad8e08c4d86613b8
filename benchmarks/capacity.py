"""Capacity: the highest steady rate of recordings this machine sustains, streamed transcripts, AWS profile.

    ./scripts/bench.sh --capacity [--rates 0.5,1,2,3,5,8] [--window 60] [--storage sqlite|postgres|both]
    ./scripts/bench.sh --capacity --quick          (rates 1,2,3,5, 20 s each)

A SIMULATION of the AWS deployment's timing on this machine, not a measurement on AWS:

- every managed service call is held to `benchmarks/profiles/aws.json` (as `--profile aws`);
- the models run on AWS in production, so here the local model server answers mood and
  image calls from cheap rules and a reused full-size PNG after the profile's latency
  (`VOMAGE_SIMULATED_MODELS=1`, `vomage_dagster/local/models/simulated.py`): the cores
  are left to the platform's own processes;
- each recording is what the app sends when it streamed the words while recording
  (`speaking_app.speak_as_on_aws`): at the end of speech the upload (S3, then the upload
  notice on SQS), and the streamed transcript's sidecar at the profile's streaming delay
  after it. The words are the sample's known text with the recording's number (no two
  recordings share a transcript, and each is its own user, so no cache answers a model
  call); the audio is one of a pool of distinct clips.

The ingest service, the Dagster runs on the warm run workers, the status channel: all
real. Offered-load steps: `--rates` recordings per second, each for `--window` seconds,
then up to `--drain` seconds for that step's recordings to finish. A step passes when
every recording is `complete`, none ran in two runs, and end of speech → image p95 is at
most `--p95-limit` (10 s); the highest passing step is `recordings_per_s`. Steps stop at
the first failure (`--all-steps` runs them all).

During each step the CPU seconds of every process group are read from /proc: per
recording, by service, grouped as Dagster (daemon, code server, webserver), run workers
(Dagster's run machinery and the platform's stages), storage (Postgres), the platform's
ingest, Redis, and the local AWS stand-ins (moto, the model server, the trace collector:
NOT production cost, reported apart). Also per recording: Dagster events, Postgres row
writes, Redis commands, model calls.

`--storage sqlite` runs the single-machine deployment (`local/deployment/daemon.py`,
SQLite storage); `postgres` the production-shaped cluster (`local/deployment/cluster.py`,
Postgres, dagster-celery run workers). Writes benchmarks/results/capacity.json (the
storages' results merged into what is there; the top-level figures are Postgres's, the
production storage's).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from benchmarks.stacks import start_stack

from .run import RESULTS, group_cpu_seconds, machine_busy_seconds, model_calls, pct
from .speech import LANGUAGES, Milestones

PROFILE = Path(__file__).resolve().parent / "profiles" / "aws.json"
OUT = RESULTS / "capacity.json"
# Which process belongs to which kind of service (names as the stacks record them).
GROUPS = {
    "dagster": ("daemon", "code-server", "webserver"),
    "run_workers": ("run-worker", "worker-"),
    "storage": ("postgres",),
    "platform": ("ingest",),
    "redis": ("redis", "broker"),
    "stand_ins": ("moto", "models", "traces"),
}


def group_of(name: str) -> str:
    for group, names in GROUPS.items():
        if any(name == n or (n.endswith("-") and name.startswith(n)) or name.startswith(n + "-") for n in names):
            return group
    return "other"


def make_pool(n: int, seed: int = 5) -> list[dict]:
    """n distinct clips (m4a bytes, duration, the sample's text said k times, language)."""
    from vomage_dagster.domain.audio import SAMPLE_RATE, decode
    from vomage_dagster.local.demo.samples import SAMPLES_DIR, sample_manifest
    from vomage_dagster.testing.audio_files import encode

    rng = np.random.default_rng(seed)
    sources = [(m, decode((SAMPLES_DIR / m["file"]).read_bytes()).samples) for m in sample_manifest()]
    pool = []
    for i in range(n):
        meta, pcm = sources[i % len(sources)]
        parts, spans, total = [], [], 0.0
        while total < 5.0 and total + len(pcm) / SAMPLE_RATE <= 15.0:
            gap = np.zeros(int(rng.uniform(0.2, 0.8) * SAMPLE_RATE), np.float32)
            parts += [pcm * rng.uniform(0.6, 1.0), gap]
            spans.append((total, total + len(pcm) / SAMPLE_RATE))
            total += (len(pcm) + len(gap)) / SAMPLE_RATE
        audio = np.concatenate(parts)
        language = LANGUAGES[Path(meta["file"]).stem.split("_")[0]]
        pool.append({"data": encode(audio, SAMPLE_RATE, "m4a"), "seconds": len(audio) / SAMPLE_RATE,
                     "text": meta["expected_text"], "spans": spans, "language": language,
                     "hint": meta.get("lang")})
    return pool


def sidecar_results(clip: dict, number: int) -> list[dict]:
    """Transcribe streaming's final results for the clip: the text once per repetition,
    the recording's number after the last (digits are neutral to the script check)."""
    out = []
    for j, (start, end) in enumerate(clip["spans"]):
        text = clip["text"] + (f" {number}" if j == len(clip["spans"]) - 1 else "")
        out.append({"ResultId": f"r{j}", "StartTime": round(start, 3), "EndTime": round(end, 3),
                    "IsPartial": False, "Alternatives": [{"Transcript": text, "Items": []}]})
    return out


class Load:
    """Offered load: one recording every 1/rate seconds, each from its own thread pair
    (the upload, and the sidecar at the streaming delay), as many apps would."""

    def __init__(self, settings, pool: list[dict], profile, tmp: Path) -> None:
        self.settings, self.pool, self.profile, self.tmp = settings, pool, profile, tmp
        self.paths = []
        for i, clip in enumerate(pool):
            path = tmp / f"clip-{i}.m4a"
            path.write_bytes(clip["data"])
            self.paths.append(path)
        self.executor = ThreadPoolExecutor(max_workers=96, thread_name_prefix="app")
        self.number = 0
        self.lock = threading.Lock()
        self.errors: list[str] = []

    def one(self, end: float) -> tuple[str, float]:
        """A recording whose speech ends at `end` (time.monotonic()); its id."""
        from vomage_dagster.domain import streamed
        from vomage_dagster.domain.keys import new_recording_id
        from vomage_dagster.local.client.uploads import upload_file
        from vomage_dagster.resources.build import build_resources

        with self.lock:
            self.number += 1
            number = self.number
        clip = self.pool[number % len(self.pool)]
        path = self.paths[number % len(self.pool)]
        rid, user = new_recording_id(), f"cap-{number:06d}"
        delay = self.profile.seconds("transcribe_streaming_final_s")

        def upload() -> None:
            try:
                upload_file(self.settings, path, user, recording_id=rid, streamed=True, lang=clip["hint"],
                            notify=True, tz="UTC")
            except Exception as exc:  # noqa: BLE001 — a failed upload is a lost recording, counted
                self.errors.append(f"{rid}: upload {type(exc).__name__}: {exc}")

        def sidecar() -> None:
            time.sleep(max(0.0, end + delay - time.monotonic()))
            doc = streamed.build(rid, clip["language"], sidecar_results(clip, number), clip["seconds"])
            try:
                build_resources(self.settings)["store"].put_bytes(
                    streamed.sidecar_key(user, rid), json.dumps(doc, ensure_ascii=False).encode(),
                    "application/json")
            except Exception as exc:  # noqa: BLE001
                self.errors.append(f"{rid}: sidecar {type(exc).__name__}: {exc}")

        self.executor.submit(upload)
        self.executor.submit(sidecar)
        return rid, end

    def step(self, rate: float, window_s: float) -> dict[str, float]:
        """Offer `rate` recordings a second for `window_s`; recording id → end of speech."""
        sent: dict[str, float] = {}
        start = time.monotonic() + 0.2
        n = max(1, int(round(rate * window_s)))
        for k in range(n):
            at = start + k / rate
            time.sleep(max(0.0, at - time.monotonic()))
            rid, end = self.one(time.monotonic())
            sent[rid] = end
        return sent


def queue_depth(settings) -> dict[str, int]:
    """The uploads queue's messages as SQS counts them: visible, in flight, delayed. After a
    step has finished, anything here is a message the ingest left behind."""
    from vomage_dagster.resources.aws import client

    sqs = client("sqs", settings.region)
    url = sqs.get_queue_url(QueueName=settings.uploads_queue)["QueueUrl"]
    attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    return {name: int(attrs.get(f"ApproximateNumberOfMessages{suffix}", 0))
            for name, suffix in (("visible", ""), ("in_flight", "NotVisible"), ("delayed", "Delayed"))}


def _kind(entry) -> str:
    """An event log entry's Dagster event type, or "log" for a plain message."""
    return entry.dagster_event_type.value if entry.dagster_event_type else "log"


def runs_of(recordings: set[str]) -> dict:
    """From the instance: the runs that covered these recordings, how many times each
    recording ran, and the events those runs wrote."""
    from dagster import DagsterInstance, RunsFilter

    from vomage_dagster.domain.run_tags import recordings_of_run

    seen: dict[str, int] = {}
    runs = events = 0
    waits, durations = [], []  # created → started, started → ended (seconds)
    covering: dict[str, list[str]] = {}  # recording → the runs that covered it (status, how launched)
    milestones: dict[str, list[float]] = {}  # event type → when each run first wrote it, after its creation
    examples: list[list] = []  # the first events of two batch runs, for reading
    with DagsterInstance.get() as instance:
        for rec in instance.get_run_records(RunsFilter(job_name="process_recording"), limit=5000):
            mine = set(recordings_of_run(rec.dagster_run.tags)) & recordings
            if not mine:
                continue
            runs += 1
            for rid in mine:
                seen[rid] = seen.get(rid, 0) + 1
                covering.setdefault(rid, []).append(
                    f"{rec.dagster_run.status.value}{' retry' if rec.dagster_run.parent_run_id else ''}"
                    f" by {rec.dagster_run.tags.get('vomage/launched-by', '?')}")
            logs = instance.all_logs(rec.dagster_run.run_id)
            events += len(logs)
            created = rec.create_timestamp.timestamp()
            firsts: dict[str, float] = {}
            for entry in logs:
                firsts.setdefault(_kind(entry), entry.timestamp - created)
            if len(examples) < 2 and len(mine) > 1:
                examples.append([(_kind(entry), round(entry.timestamp - created, 3), (entry.message or "")[:90])
                                 for entry in logs[:40]])
            for kind, at in firsts.items():
                milestones.setdefault(kind, []).append(at)
            if rec.start_time:
                waits.append(rec.start_time - created)
                if rec.end_time:
                    durations.append(rec.end_time - rec.start_time)
    return {"runs": runs, "ran_twice": sum(1 for c in seen.values() if c > 1),
            "ran_twice_runs": [covering[rid] for rid, c in seen.items() if c > 1][:10],
            "example_runs": examples,
            "recordings_per_run": round(len(seen) / runs, 2) if runs else None,
            "run_wait_p50_s": pct(waits, 50), "run_wait_p95_s": pct(waits, 95),
            "run_seconds_p50": pct(durations, 50), "run_seconds_p95": pct(durations, 95),
            "run_events_after_creation_p50_s": dict(sorted(((kind, pct(at, 50)) for kind, at in milestones.items()),
                                                           key=lambda kv: kv[1])),
            "events": events}


def pg_counters() -> dict | None:
    """Postgres's own counters for the database (rows written, commits), or None without it."""
    if "DAGSTER_PG_PORT" not in os.environ:
        return None
    import psycopg2

    with psycopg2.connect(host=os.environ["DAGSTER_PG_HOST"], port=os.environ["DAGSTER_PG_PORT"],
                          user=os.environ["DAGSTER_PG_USER"], password=os.environ["DAGSTER_PG_PASSWORD"],
                          dbname=os.environ["DAGSTER_PG_DB"]) as conn, conn.cursor() as cur:
        cur.execute("SELECT tup_inserted, tup_updated, tup_deleted, xact_commit, tup_returned + tup_fetched"
                    " FROM pg_stat_database WHERE datname = current_database()")
        ins, upd, dele, commits, read = cur.fetchone()
        cur.execute("SELECT relname, seq_scan, seq_tup_read, coalesce(idx_scan, 0), coalesce(idx_tup_fetch, 0),"
                    " n_tup_ins + n_tup_upd + n_tup_del FROM pg_stat_user_tables")
        tables = {name: {"seq_scans": int(a), "seq_rows_read": int(b), "index_scans": int(c),
                         "index_rows_fetched": int(d), "rows_written": int(e)}
                  for name, a, b, c, d, e in cur.fetchall()}
        return {"rows_written": int(ins + upd + dele), "rows_inserted": int(ins), "commits": int(commits),
                "rows_read": int(read), "tables": tables}


def redis_commands(info: dict) -> dict[str, int]:
    import redis

    out = {}
    for name in ("redis", "broker"):
        client = redis.Redis(host="127.0.0.1", port=info["ports"][name])
        out[name] = int(client.info("stats")["total_commands_processed"])
        client.close()
    return out


def snapshot(info: dict, pids: dict[str, int]) -> dict:
    return {"at": time.monotonic(), "busy": machine_busy_seconds(), "harness": time.process_time(),
            "cpu": {n: group_cpu_seconds(p) for n, p in pids.items()},
            "calls": model_calls(info), "redis": redis_commands(info), "pg": pg_counters(),
            "load": os.getloadavg()}


def difference(before: dict, after: dict, n: int) -> dict:
    """Per-recording costs between two snapshots."""
    cpu = {k: after["cpu"][k] - before["cpu"][k] for k in after["cpu"]}
    busy = after["busy"] - before["busy"]
    per = {k: round(v / n, 4) for k, v in sorted(cpu.items())}
    groups: dict[str, float] = {}
    for k, v in cpu.items():
        groups[group_of(k)] = groups.get(group_of(k), 0.0) + v
    groups["harness"] = after["harness"] - before["harness"]  # this process: the simulated apps
    groups["other_work_on_the_machine"] = busy - sum(cpu.values()) - groups["harness"]
    out = {
        "seconds": round(after["at"] - before["at"], 1),
        "cpu_s_per_recording": per,
        "cpu_s_per_recording_by_group": {k: round(v / n, 4) for k, v in groups.items()},
        "platform_cpu_s_per_recording": round(sum(v for g, v in groups.items()
                                                  if g in ("dagster", "run_workers", "storage", "platform"))
                                              / n, 4),
        "machine_busy_share": round(busy / (after["at"] - before["at"]) / (os.cpu_count() or 1), 3),
        "model_calls_per_recording": {k: round((after["calls"][k] - before["calls"].get(k, 0)) / n, 2)
                                      for k in after["calls"]},
        "redis_commands_per_recording": {k: round((after["redis"][k] - before["redis"][k]) / n, 1)
                                         for k in after["redis"]},
        "load_average_1m": [round(before["load"][0], 2), round(after["load"][0], 2)],
    }
    if after["pg"] is not None:
        out["postgres_per_recording"] = {k: round((after["pg"][k] - before["pg"][k]) / n, 1)
                                         for k in after["pg"] if k != "tables"}
        tables = {t: {k: round((v - before["pg"]["tables"].get(t, {}).get(k, 0)) / n, 1) for k, v in row.items()}
                  for t, row in after["pg"]["tables"].items()}
        out["postgres_tables_per_recording"] = {t: row for t, row in sorted(
            tables.items(), key=lambda kv: -(kv[1]["seq_rows_read"] + kv[1]["index_rows_fetched"]))
            if any(row.values())}
        out["postgres_rows_written_per_s"] = round(
            (after["pg"]["rows_written"] - before["pg"]["rows_written"]) / (after["at"] - before["at"]), 1)
    return out


@contextmanager
def deployment(storage: str, state: Path, env: dict[str, str], max_runs: int, spare_workers: int = 0):
    """The processes of the deployment under test and their pids (each a process group)."""
    if storage == "sqlite":
        from vomage_dagster.local.deployment.daemon import running_daemon

        with running_daemon(state, env, max_runs) as daemon:
            os.environ["DAGSTER_HOME"] = str(daemon.home)
            pids = {"daemon": daemon.proc.pid, "code-server": daemon.code_server.pid, "ingest": daemon.ingest.pid}
            pids |= {name if name.startswith("run-worker") else f"run-worker-{name}": p.pid
                     for name, p in daemon.workers.items()}
            yield pids
        return
    from vomage_dagster.local.deployment.cluster import running_cluster

    with running_cluster(state, max_runs + spare_workers, max_runs, env) as info:
        os.environ.update(info["env"])  # the instance reads DAGSTER_PG_* from the environment
        yield dict(info["pids"])


PROFILING = Path(__file__).resolve().parent / "profiling"


def dump_profiles(pids: dict[str, int]) -> int:
    """Ask every profiled process of the deployment's process groups to write its profile
    (`benchmarks/profiling/sitecustomize.py`); how many were asked."""
    import signal

    match = [m.strip() for m in os.environ.get("VOMAGE_CPROFILE_MATCH", "vomage ingest").split(",") if m.strip()]
    groups, asked = set(pids.values()), 0
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            pgrp = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[2])
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except (OSError, IndexError, ValueError):
            continue
        if pgrp in groups and any(m in cmd for m in match):
            os.kill(int(pid), signal.SIGRTMIN + 3)
            asked += 1
    time.sleep(2)
    return asked


def run_storage(storage: str, args: argparse.Namespace, pool: list[dict]) -> dict:
    from vomage_dagster.local.aws import stack
    from vomage_dagster.resources import latency
    from vomage_dagster.resources.aws import clear_clients
    from vomage_dagster.settings import load_settings

    state = Path(tempfile.mkdtemp(prefix=f"vomage-capacity-{storage}-"))
    saved = dict(os.environ)
    env = {"VOMAGE_LATENCY_PROFILE": str(PROFILE), "VOMAGE_SIMULATED_MODELS": "1", **args.env}
    os.environ.update({"VOMAGE_STATE_DIR": str(state), "VOMAGE_ENV": "local", **env})
    if args.profile_dir:  # cProfile in the matching processes (benchmarks/profiling/sitecustomize.py)
        Path(args.profile_dir).mkdir(parents=True, exist_ok=True)
        os.environ["VOMAGE_CPROFILE_DIR"] = str(Path(args.profile_dir).resolve())
        os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(PROFILING), os.environ.get("PYTHONPATH")]))
    profile = latency.load(str(PROFILE))
    steps: list[dict] = []
    idle = None
    try:
        info, settings = start_stack()
        watch = Milestones(settings.redis_url)
        watch.start()
        with deployment(storage, state, env, args.max_runs, args.spare_workers) as dagster_pids, \
                tempfile.TemporaryDirectory() as tmp:
            pids = {**info["pids"], **dagster_pids}
            load = Load(settings, pool, profile, Path(tmp))
            # A process's first run pays its imports and clients, which a
            # long-lived run worker pays once: every run worker gets a run before measuring.
            slots = args.max_runs + args.spare_workers
            warm = load.step(2.5, 2 * slots / 2.5)
            wait_final(watch, warm, 120)
            idle = None
            if args.idle_window > 0:  # what each process costs with nothing to do (schedules, sensors, polls)
                before = snapshot(info, pids)
                time.sleep(args.idle_window)
                after = snapshot(info, pids)
                span = after["at"] - before["at"]
                idle = {"seconds": round(span, 1), "load_average_1m": round(after["load"][0], 2),
                        "cpu_share_of_a_core": {k: round((after["cpu"][k] - before["cpu"][k]) / span, 4)
                                                for k in sorted(after["cpu"])}}
            for rate in args.rates:
                print(f"  {storage} {rate}/s: offering for {args.window:.0f} s", flush=True)
                before = snapshot(info, pids)
                sent = load.step(rate, args.window)
                offered_s = time.monotonic() - before["at"]
                wait_final(watch, sent, args.drain)
                after = snapshot(info, pids)
                row = judge(rate, sent, watch, args.p95_limit)
                row["offered_window_s"] = round(offered_s, 1)
                row |= runs_of(set(sent))
                row["events_per_recording"] = round(row.pop("events") / len(sent), 1)
                row |= difference(before, after, len(sent))
                row["upload_errors"] = len(load.errors)
                row["queue_after"] = queue_depth(settings)
                steps.append(row)
                print(f"  {storage} {rate}/s: complete {row['complete']}/{row['n']}, image p50/p95 "
                      f"{row['speech_end_to_image_p50_s']}/{row['speech_end_to_image_p95_s']} s, "
                      f"ran twice {row['ran_twice']}, {row['recordings_per_run']} per run, runs waited p50 "
                      f"{row['run_wait_p50_s']} s and took p50/p95 {row['run_seconds_p50']}/"
                      f"{row['run_seconds_p95']} s, "
                      f"platform CPU {row['platform_cpu_s_per_recording']} s/rec, "
                      f"busy {row['machine_busy_share']}, load {row['load_average_1m']}, "
                      f"queue after {row['queue_after']}"
                      f" → {'pass' if row['passed'] else 'FAIL'}", flush=True)
                if not row["passed"] and not args.all_steps:
                    break
            load.executor.shutdown(wait=True)
            if args.profile_dir:
                print(f"  profiles asked of {dump_profiles(pids)} processes → {args.profile_dir}", flush=True)
    finally:
        stack.down(load_settings())
        os.environ.clear()
        os.environ.update(saved)
        clear_clients()
    passing = [s for s in steps if s["passed"]]
    best = max(passing, key=lambda s: s["rate"]) if passing else None
    return {
        "storage": storage,
        "recordings_per_s": best["rate"] if best else 0.0,
        "speech_end_to_image_p95_s": best["speech_end_to_image_p95_s"] if best else None,
        "lost": best["lost"] if best else None,
        "at_best": {k: v for k, v in best.items() if k != "rows"} if best else None,
        "idle": idle,
        "steps": steps,
    }


def wait_final(watch: Milestones, sent: dict[str, float], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and any(
            not {"complete", "failed"} & set(watch.milestones.get(rid, ())) for rid in sent):
        time.sleep(0.1)


def judge(rate: float, sent: dict[str, float], watch: Milestones, p95_limit: float) -> dict:
    to_image, to_mood, lost = [], [], 0
    for rid, end in sent.items():
        seen = watch.milestones.get(rid, {})
        if "complete" in seen:
            to_image.append(seen["complete"] - end)
        else:
            lost += 1
        if "mood" in seen:
            to_mood.append(seen["mood"] - end)
    p95 = pct(to_image, 95)
    return {"rate": rate, "n": len(sent), "complete": len(to_image), "lost": lost,
            "failed": sum(1 for rid in sent if "failed" in watch.milestones.get(rid, {})),
            "speech_end_to_mood_p50_s": pct(to_mood, 50), "speech_end_to_mood_p95_s": pct(to_mood, 95),
            "speech_end_to_image_p50_s": pct(to_image, 50), "speech_end_to_image_p95_s": p95,
            "speech_end_to_image_max_s": round(max(to_image), 2) if to_image else None,
            "passed": lost == 0 and bool(to_image) and p95 <= p95_limit}


def main() -> int:
    from vomage_dagster.cli.common import exit_on_sigterm

    exit_on_sigterm()  # a stopped benchmark stops what it started
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rates", default="0.5,1,2,3,5,8", help="offered recordings per second, step by step")
    parser.add_argument("--window", type=float, default=60.0, help="seconds each step offers its rate")
    parser.add_argument("--drain", type=float, default=90.0, help="seconds a step's recordings may take to finish")
    parser.add_argument("--quick", action="store_true", help="rates 1,2,3,5 for 20 s each")
    parser.add_argument("--storage", choices=("sqlite", "postgres", "both"), default="both")
    parser.add_argument("--spare-workers", type=int, default=0,
                        help="Postgres: run workers beyond --max-runs (a worker still ending its last run)")
    parser.add_argument("--max-runs", type=int, default=6,
                        help="concurrent runs (run workers' slots; runs mostly wait on AWS, so more than cores)")
    parser.add_argument("--p95-limit", type=float, default=10.0)
    parser.add_argument("--all-steps", action="store_true", help="do not stop at the first failing step")
    parser.add_argument("--idle-window", type=float, default=30.0,
                        help="seconds of no load first, for each process's fixed cost (0: skip)")
    parser.add_argument("--pool", type=int, default=24, help="distinct audio clips cycled through")
    parser.add_argument("--label", default="", help="a name for this run in the JSON (e.g. baseline)")
    parser.add_argument("--env", action="append", default=[], metavar="NAME=VALUE",
                        help="a setting for every process (a lever), e.g. VOMAGE_MAX_BATCH=20")
    parser.add_argument("--profile-dir", default="", help="cProfile the processes named by VOMAGE_CPROFILE_MATCH "
                        "(default: the ingest) and write their profiles here (slows them: not for figures)")
    parser.add_argument("--out", default=str(OUT))
    args = parser.parse_args()
    if args.quick:
        args.rates, args.window, args.idle_window = "1,2,3,5", 20.0, 10.0
    args.rates = [float(r) for r in args.rates.split(",") if r.strip()]
    args.env = dict(e.split("=", 1) for e in args.env)
    random.seed(1)
    pool = make_pool(args.pool)
    storages = ["sqlite", "postgres"] if args.storage == "both" else [args.storage]
    print("SIMULATION: AWS latencies (benchmarks/profiles/aws.json) and simulated model answers "
          "(VOMAGE_SIMULATED_MODELS); the platform's processes are real.", flush=True)
    results = {s: run_storage(s, args, pool) for s in storages}
    print(f"\n{'storage':<9} {'rec/s':>6} {'image p95 (s)':>14} {'lost':>5}  platform CPU s/rec")
    for s, r in results.items():
        cpu = (r["at_best"] or {}).get("platform_cpu_s_per_recording")
        print(f"{s:<9} {r['recordings_per_s']:>6} {str(r['speech_end_to_image_p95_s']):>14} {str(r['lost']):>5}  {cpu}")
    label = args.label or "latest"
    run = {"when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "label": label,
           "rates": args.rates, "window_s": args.window, "drain_s": args.drain, "max_runs": args.max_runs,
           "spare_workers": args.spare_workers,
           "levers": args.env, "p95_limit_s": args.p95_limit, "cpus": os.cpu_count(),
           "simulation": "AWS profile latencies + VOMAGE_SIMULATED_MODELS (model time simulated, not computed)",
           "storages": results}
    out = Path(args.out)
    doc = json.loads(out.read_text()) if out.exists() else {}
    kept = doc.setdefault("runs", {}).get(label, {}).get("storages", {})
    doc["runs"][label] = {**run, "storages": {**kept, **results}}  # one storage at a time keeps the other's
    for s, r in results.items():  # the headline: the latest run's figures, per storage
        doc.setdefault("storages", {})[s] = {k: r[k] for k in ("recordings_per_s", "speech_end_to_image_p95_s",
                                                              "lost")} | {"run": label}
    # The headline is the production storage's (Postgres: what docs/deploy.md sizes from);
    # SQLite, the single-machine deployment, stands beside it under "storages".
    headline = results.get("postgres") or doc["storages"].get("postgres") or next(iter(results.values()))
    doc |= {k: headline[k] for k in ("recordings_per_s", "speech_end_to_image_p95_s", "lost")}
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(doc, indent=1, ensure_ascii=False) + "\n")
    print(f"\nwrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
