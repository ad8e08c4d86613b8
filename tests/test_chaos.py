"""Chaos soak: uploads of every hostile class mixed with good ones, through the ingest
service and the real daemon, while faults are injected at random times — the daemon (alone
or with the ingest service) killed and restarted, run processes killed, Redis stopped and
restarted, DynamoDB throttling in every process. It ends in an exact reconciliation: every
upload complete or failed with a code, none lost, none processed twice, the dead-letter
queue holding exactly the poison messages.

    ./scripts/test.sh -k chaos -s     # the full soak (1,000 uploads); the whole suite and CI
                                      # run a shorter one (120 uploads)
"""

from __future__ import annotations

import json
import os
import random
import signal
import threading
import time
import uuid
from collections import Counter
from pathlib import Path

import pytest
from dagster import DagsterInstance

from vomage_dagster.domain.keys import upload_key
from vomage_dagster.local.aws import stack
from vomage_dagster.local.client.uploads import upload_file
from vomage_dagster.local.demo.samples import SAMPLES_DIR, Upload, sample_manifest, wait_until_final
from vomage_dagster.local.deployment.daemon import running_daemon
from vomage_dagster.resources.queue import UploadQueue
from vomage_dagster.resources.status_table import StatusTable
from vomage_dagster.resources.store import ObjectStore
from vomage_dagster.settings import load_settings
from vomage_dagster.testing import hostile_files as hostile
from vomage_dagster.testing.reconcile import reconcile

pytestmark = pytest.mark.slow

FULL, SHORT = 1000, 120
POISON = [
    "{broken", json.dumps([1, 2]), "[" * 20_000 + "]" * 20_000,
    json.dumps({"Records": [{"eventName": "ObjectCreated:Put", "s3": {"bucket": ["x"], "object": 7}}]}),
    '{"recording_id": "r", "s3_key": "uploads/u/r.m4a", "user_id": "u", "attempt": ' + "9" * 5000 + "}",
    json.dumps({"recording_id": "rec-x", "s3_key": "uploads/u/rec-x.m4a", "user_id": "u",
                "metadata": "many"}),
    json.dumps({"Records": [{"eventName": "ObjectCreated:Put", "s3": {"bucket": {"name": "vomage-recordings"},
                                                                     "object": {"key": "uploads/u\u0001/r.m4a"}}}]}),
    json.dumps({"detail-type": "Object Created", "source": "aws.s3", "detail": [1, 2]}),
]
HOSTILE_FILES = {  # name → (extension, bytes, the codes it may end with)
    "playlist": ("m4a", hostile.hls_playlist(), {"undecodable"}),
    "sdp": ("ogg", hostile.sdp_session(), {"undecodable"}),
    "image": ("webm", hostile.png_image(), {"undecodable"}),
    "video-only": ("m4a", hostile.video_only(), {"undecodable"}),
    "rate": ("wav", hostile.wav_header(768_000, 1), {"undecodable"}),
    "channels": ("wav", hostile.wav_header(8_000, 200), {"undecodable"}),
    "tiny-packets": ("webm", hostile.tiny_packets(8), {"undecodable"}),
    "truncated": ("m4a", hostile.truncated((SAMPLES_DIR / "en_joy.m4a").read_bytes()), {"undecodable"}),
    "empty": ("mp3", b"", {"undecodable"}),
}
ODD_METADATA = {"tz": "America", "lat": "nan", "lon": "2", "lang": "xx", "recorded-at": "9999-01-01T00:00:00Z"}


def _run_processes(home: Path) -> list[int]:
    """The processes of the runs now STARTED (the pid their start event recorded)."""
    from dagster import DagsterEventType, DagsterRunStatus, RunsFilter

    pids = []
    with DagsterInstance.from_config(str(home)) as instance:
        for run in instance.get_runs(filters=RunsFilter(statuses=[DagsterRunStatus.STARTED]), limit=10):
            starts = instance.get_records_for_run(run.run_id, of_type=DagsterEventType.RUN_START).records
            pids += [r.event_log_entry.dagster_event.pid for r in starts
                     if r.event_log_entry.dagster_event and r.event_log_entry.dagster_event.pid]
    return pids


class Faults(threading.Thread):
    """Faults at random times until stopped; what happened is counted."""

    def __init__(self, daemon, settings, rng: random.Random, most: int, gap_s: tuple[float, float]):
        super().__init__(daemon=True)
        self.dagster, self.settings, self.rng, self.most, self.gap_s = daemon, settings, rng, most, gap_s
        self.stop = threading.Event()
        self.done: Counter = Counter()
        self.errors: list[str] = []

    def run(self) -> None:
        try:
            self._inject()
        except Exception as exc:  # reported by the test, never lost in the thread
            self.errors.append(repr(exc))

    def _inject(self) -> None:
        order: list[str] = []
        while sum(self.done.values()) < self.most and not self.stop.wait(self.rng.uniform(*self.gap_s)):
            if not order:  # every kind in each round: a run process first (while runs are many), then the others
                order = [*self.rng.sample(["daemon", "ingest", "redis"], 3), "run"]
            kind = order.pop()
            if kind in ("daemon", "ingest"):  # the daemon alone, or with the ingest service
                self.dagster.crash(ingest=kind == "ingest")
                time.sleep(self.rng.uniform(2, 6))
                self.dagster.start()
            elif kind == "redis":
                stack.stop_service(self.settings, "redis")
                time.sleep(self.rng.uniform(3, 8))
                stack.start_service(self.settings, "redis")
            else:  # a run process, as soon as one executes a run (within a minute)
                deadline = time.monotonic() + 60
                while not (pids := _run_processes(self.dagster.home)) and time.monotonic() < deadline:
                    if self.stop.wait(0.5):
                        return
                if not pids:
                    order.append(kind)  # no run in flight for a minute: try again next time
                    continue
                try:
                    os.kill(self.rng.choice(pids), signal.SIGKILL)
                except ProcessLookupError:
                    continue
            self.done[kind] += 1


def test_chaos_soak_reconciles_exactly(private_stack, monkeypatch, request):
    total = FULL if "chaos" in (request.config.option.keyword or "") else SHORT
    env = {"VOMAGE_CHAOS_DYNAMODB_THROTTLE": "0.03",
           "VOMAGE_DEAD_RUN_AFTER_S": "300", "VOMAGE_STALL_AFTER_S": "120"}
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    settings = load_settings()
    rng = random.Random(20261201)
    store = ObjectStore(bucket=settings.bucket, region_name=settings.region)
    queue = UploadQueue(queue_name=settings.uploads_queue, region_name=settings.region,
                        dead_letter_queue_name=settings.dead_letter_queue)
    status = StatusTable(table_name=settings.status_table, region_name=settings.region)
    good = [SAMPLES_DIR / m["file"] for m in sample_manifest()]
    uploads: list[Upload] = []
    expected_codes: dict[str, set[str]] = {}
    kinds: Counter = Counter()
    refused: list[str] = []
    started = time.monotonic()
    with running_daemon(Path(private_stack["state_dir"]), env) as daemon:
        # Faults go on while the uploads are processed, up to a number, then stop by themselves;
        # the short soak is over in a few minutes, so its faults come closer together.
        faults = Faults(daemon, settings, random.Random(rng.random()), most=16 if total == FULL else 5,
                        gap_s=(5, 20) if total == FULL else (2, 6))
        faults.start()
        try:
            for i in range(total):
                roll = rng.random()
                user = f"chaos-{i % 17}"
                if roll < 0.14:  # a hostile file
                    name = rng.choice(sorted(HOSTILE_FILES))
                    ext, data, codes = HOSTILE_FILES[name]
                    rid = f"rec-chaos-{uuid.uuid4().hex[:12]}"
                    store.put_bytes(upload_key(user, rid, ext), data, "application/octet-stream", {"user-id": user})
                    expected_codes[rid] = codes | {"stalled", "run_failed", "run_canceled"}
                    kinds[f"hostile file: {name}"] += 1
                elif roll < 0.20:  # a good recording with unusable metadata
                    path = rng.choice(good)
                    rid = f"rec-chaos-{uuid.uuid4().hex[:12]}"
                    store.put_bytes(upload_key(user, rid, path.suffix[1:]), path.read_bytes(), "audio/mp4",
                                    {"user-id": "someone-else", **ODD_METADATA})
                    kinds["odd metadata"] += 1
                elif roll < 0.24 and len(uploads) > 30 and status.get(
                        victim := rng.choice(uploads[:-30]).recording_id) is not None:
                    # Another user's upload claiming a known (registered) id. One racing its
                    # owner's own registration wins: first registered owns the id (README).
                    key = upload_key("intruder", victim, "m4a")
                    store.put_bytes(key, (SAMPLES_DIR / "en_joy.m4a").read_bytes(), "audio/mp4", {})
                    refused.append(key)
                    kinds["id takeover"] += 1
                    continue
                else:
                    path = rng.choice(good)
                    rid = upload_file(settings, path, user)
                    kinds["good"] += 1
                    if rng.random() < 0.1:  # a duplicate notification
                        queue.send({"recording_id": rid, "s3_key": upload_key(user, rid, path.suffix[1:]),
                                    "user_id": user, "metadata": {}})
                        kinds["duplicate notification"] += 1
                uploads.append(Upload(rid, Path("-"), time.time()))
                if i % (total // len(POISON)) == 0 and i // (total // len(POISON)) < len(POISON):
                    queue.send(POISON[i // (total // len(POISON))])
                if i % 10 == 9:
                    time.sleep(1.0)
            assert wait_until_final(settings, uploads, timeout_s=3600, poll_s=3)
            faults.stop.set()
            faults.join(timeout=60)
            # A message a killed ingest had received comes back after the queue's visibility
            # timeout (300 s): poison among them reaches the dead letters only then.
            deadline = time.monotonic() + 400
            while time.monotonic() < deadline and sum(queue.depth().values()) > 0:
                time.sleep(3)
        finally:
            faults.stop.set()
        wall = time.monotonic() - started
        with DagsterInstance.from_config(str(daemon.home)) as instance:
            result = reconcile(settings, instance, [u.recording_id for u in uploads])
    statuses = {u.recording_id: u.status for u in uploads}
    notes = [store.get_json(o.key) for o in store.list("ingest-errors/")]
    refused_noted = sum(1 for key in refused if any(n.get("upload_key") == key for n in notes))
    result.extra.update({
        "uploads by kind": ", ".join(f"{k} {v}" for k, v in sorted(kinds.items())),
        "hostile share": f"{100 * (total - kinds['good']) / total:.0f} %",
        "faults injected": ", ".join(f"{k} {v}" for k, v in sorted(faults.done.items())) or "none",
        "id takeovers refused and noted": f"{refused_noted} of {len(refused)}",
        "poison messages sent": len(POISON), "wall time (s)": f"{wall:.0f}",
    })
    print("\n" + result.table())
    assert result.balanced, result.table()
    assert not faults.errors and set(faults.done) == {"daemon", "ingest", "run", "redis"}, (faults.done,
                                                                                           faults.errors)
    assert result.dead_letters == len(POISON)
    assert refused_noted == len(refused)
    for rid, codes in expected_codes.items():
        assert statuses[rid]["stage"] == "failed" and statuses[rid]["error"]["code"] in codes, statuses[rid]
    assert all(item["error"]["code"] != "internal_error" for item in statuses.values() if item.get("error"))
