"""Push recordings through the real sensor path and collect what came out.

Used by `vomage demo` (the README's first command) and the end-to-end tests: the stack
and a Dagster daemon run, files are uploaded as the app would upload them, the S3 sensor
and the daemon do the rest, and we wait until every recording is final.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

from vomage_dagster.domain.lifecycle import FINAL
from vomage_dagster.local import PROJECT_ROOT
from vomage_dagster.local.client.uploads import upload_file
from vomage_dagster.resources.build import build_resources
from vomage_dagster.settings import Settings

SAMPLES_DIR = PROJECT_ROOT / "samples"


@dataclass
class Upload:
    recording_id: str
    path: Path
    uploaded_at: float
    expected_text: str | None = None
    status: dict | None = None
    record: dict | None = None
    finished_at: float | None = None
    meta: dict = field(default_factory=dict)

    @property
    def wall_s(self) -> float | None:
        return None if self.finished_at is None else self.finished_at - self.uploaded_at


def sample_manifest() -> list[dict]:
    return json.loads((SAMPLES_DIR / "manifest.json").read_text())


def upload_samples(settings: Settings) -> list[Upload]:
    uploads = []
    for item in sample_manifest():
        path = SAMPLES_DIR / item["file"]
        rid = upload_file(settings, path, item["user"], lat=item.get("lat"),
                          lon=item.get("lon"), tz=item.get("tz"), lang=item.get("lang"))
        uploads.append(Upload(rid, path, time.time(), item["expected_text"], meta=item))
    return uploads


def wait_until_final(settings: Settings, uploads: list[Upload], timeout_s: float = 600,
                     poll_s: float = 0.5) -> bool:
    """Poll the status table until every upload is complete or failed; True if all are."""
    resources = build_resources(settings)
    status, records = resources["tracker"].status, resources["records"]
    deadline = time.monotonic() + timeout_s
    pending = {u.recording_id: u for u in uploads}
    while pending and time.monotonic() < deadline:
        found = status.get_many(list(pending))
        now = time.time()
        for rid, item in found.items():
            if item.get("stage") in FINAL:
                u = pending.pop(rid)
                u.status, u.finished_at = item, now
                if item["stage"] == "complete":
                    u.record = records.get(rid)
        if pending:
            time.sleep(poll_s)
    for u in pending.values():
        u.status = status.get(u.recording_id)
    return not pending


def error_rate(expected: str, got: str, language: str) -> float:
    """Word error rate for spaced languages, character error rate for zh/ja."""
    import re

    def units(text: str) -> list[str]:
        if language.startswith(("zh", "ja")):
            return [c for c in text if not re.match(r"[\s\W]", c)]
        return re.findall(r"[a-z0-9']+", text.lower())

    ref, hyp = units(expected), units(got)
    prev = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        cur = [i] + [0] * len(hyp)
        for j, h in enumerate(hyp, 1):
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (r != h))
        prev = cur
    return prev[-1] / max(len(ref), 1)


def table(uploads: list[Upload]) -> str:
    """What came out, one line per recording."""
    stages = ("raw_recording", "transcript", "recording_context", "mood", "mood_image",
              "published_record")
    short = ("decode", "asr", "ctx", "mood", "image", "pub")
    head = (f"{'recording':<32} {'file':<16} {'stage':<9} {'lang':<6} {'err':>5} {'emotion':<9} "
            f"{'wall_s':>6}  " + " ".join(f"{s:>6}" for s in short) + "  transcript / image / error")
    lines = [head, "-" * len(head)]
    for u in uploads:
        st = (u.status or {}).get("stage", "?")
        wall = f"{u.wall_s:6.1f}" if u.wall_s is not None else "     -"
        if u.record:
            r = u.record
            err = error_rate(u.expected_text, r["transcript"], r["language"]) if u.expected_text else None
            secs = " ".join(f"{r['seconds'].get(s, 0):6.2f}" for s in stages)
            tail = f"{r['transcript'][:60]} | {r['image_key']}"
            lines.append(f"{u.recording_id:<32} {u.path.name:<16} {st:<9} {r['language']:<6} "
                         f"{(f'{err:.0%}' if err is not None else '-'):>5} "
                         f"{r['mood']['primary_emotion']:<9} {wall}  {secs}  {tail}")
        else:
            error = (u.status or {}).get("error") or {}
            lines.append(f"{u.recording_id:<32} {u.path.name:<16} {st:<9} {'-':<6} {'-':>5} "
                         f"{'-':<9} {wall}  " + " ".join(f"{'-':>6}" for _ in stages)
                         + f"  {error.get('code', '')}: {error.get('message', '')}")
    return "\n".join(lines)
