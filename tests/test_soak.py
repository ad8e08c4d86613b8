"""Soak: 200 uploads in bursts, 20 % invalid files, 20 % duplicate notifications, plus
poison messages, through the ingest service. It must reconcile exactly, both on the
single-process daemon (SQLite, steps in the run process) and on the cluster (Postgres,
gRPC code server, daemon, 2 Celery workers executing the steps).

    ./scripts/test.sh -k soak -s     # prints the reconciliation table and the wall time
"""

import json
import random
import time
from contextlib import contextmanager
from pathlib import Path

import pytest
from dagster import DagsterInstance

from vomage_dagster.local.client.uploads import upload_file
from vomage_dagster.local.demo.samples import SAMPLES_DIR, Upload, sample_manifest, wait_until_final
from vomage_dagster.local.deployment.cluster import running_cluster
from vomage_dagster.local.deployment.daemon import running_daemon
from vomage_dagster.resources.queue import UploadQueue
from vomage_dagster.settings import load_settings
from vomage_dagster.testing.audio_files import encode, silence, tone
from vomage_dagster.testing.reconcile import reconcile

pytestmark = pytest.mark.slow

TOTAL, BURST = 200, 25
POISON = ["{broken json", json.dumps({"recording_id": "x"}), json.dumps([1, 2, 3]),
          json.dumps({"Records": [{"eventName": "ObjectCreated:Put", "s3": {
              "bucket": {"name": "not-ours"}, "object": {"key": "uploads/u/r.m4a"}}}]}),
          json.dumps({"recording_id": "r9", "s3_key": "elsewhere/u/r9.m4a", "user_id": "u"})]


@contextmanager
def dagster_instance(setup: str, state_dir: Path, monkeypatch):
    """Start `setup`'s processes; yield a function that opens its instance."""
    env: dict[str, str] = {}
    if setup == "single":
        with running_daemon(state_dir, env) as daemon:
            yield lambda: DagsterInstance.from_config(str(daemon.home))
        return
    with running_cluster(state_dir, workers=2, extra_env=env) as info:
        for k, v in info["env"].items():
            monkeypatch.setenv(k, v)
        yield lambda: DagsterInstance.from_config(info["home"])


@pytest.mark.parametrize("setup", ["single", "cluster"])
def test_soak_reconciles_exactly(setup, private_stack, tmp_path, monkeypatch):
    settings = load_settings()
    rng = random.Random(2026)
    bad_files = []
    for i, (ext, data) in enumerate([
        ("m4a", b"\x00garbage" * 300), ("wav", encode(tone(0.5), 16_000, "wav")),
        ("ogg", encode(silence(302, 8_000), 8_000, "ogg")), ("mp3", encode(silence(3), 16_000, "mp3")),
    ]):
        path = tmp_path / f"bad{i}.{ext}"
        path.write_bytes(data)
        bad_files.append(path)
    good_files = [SAMPLES_DIR / m["file"] for m in sample_manifest()]
    plan = [rng.choice(bad_files) if i % 5 == 0 else rng.choice(good_files) for i in range(TOTAL)]
    queue = UploadQueue(queue_name=settings.uploads_queue, region_name=settings.region,
                        dead_letter_queue_name=settings.dead_letter_queue)

    started = time.monotonic()
    uploads: list[Upload] = []
    duplicates = 0
    with dagster_instance(setup, Path(private_stack["state_dir"]), monkeypatch) as open_instance:
        for b in range(0, TOTAL, BURST):
            for path in plan[b:b + BURST]:
                rid = upload_file(settings, path, "soak")
                uploads.append(Upload(rid, path, time.time()))
                if rng.random() < 0.2:  # a duplicate: the app's message, or S3's event again
                    duplicates += 1
                    key = f"uploads/soak/{rid}{path.suffix}"
                    if rng.random() < 0.5:
                        queue.send({"recording_id": rid, "s3_key": key, "user_id": "soak", "metadata": {}})
                    else:
                        queue.send({"Records": [{"eventName": "ObjectCreated:Put", "s3": {
                            "bucket": {"name": settings.bucket}, "object": {"key": key}}}]})
            if b // BURST < len(POISON):
                queue.send(POISON[b // BURST])
            time.sleep(2)
        assert wait_until_final(settings, uploads, timeout_s=1800, poll_s=2)
        # Let the poison messages finish their three receives.
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and sum(queue.depth().values()) > 0:
            time.sleep(2)
        wall = time.monotonic() - started
        with open_instance() as instance:
            result = reconcile(settings, instance, [u.recording_id for u in uploads])
    result.extra.update({"setup": setup, "duplicate notifications sent": duplicates,
                         "poison messages sent": len(POISON), "wall time (s)": f"{wall:.0f}"})
    print("\n" + result.table())
    assert result.balanced, result.table()
    assert result.failed == TOTAL // 5 and result.complete == TOTAL - TOTAL // 5
    assert result.dead_letters == len(POISON)
