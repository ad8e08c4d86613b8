"""A latency profile: AWS's published service latencies, applied by the local stack.

Beside `settings.py` rather than in `local/`: the boto3 clients (`resources/aws.py`) apply
it in every process of the stack, and the model server (`local/`) to its models.

Nothing here can reach AWS, so the AWS figures in docs/performance.md are a simulation:
the same code and protocols, with each call to a managed service held until the time the
profile gives for it (`VOMAGE_LATENCY_PROFILE=benchmarks/profiles/aws.json`, local only).

A call is held to `max(real local time, profile time)`: the simulation is never faster
than the work the local models really did, so a figure that the local model cannot meet
(Whisper's last pass against Transcribe's 0.2 s) shows as what bounds the result. Each
figure is a `point` or a `uniform` range: the sources publish ranges, not distributions.
"""

from __future__ import annotations

import json
import os
import random
import time
from dataclasses import dataclass
from pathlib import Path

ENV = "VOMAGE_LATENCY_PROFILE"


@dataclass(frozen=True)
class Figure:
    distribution: str  # "point" or "uniform"
    low: float
    high: float
    source: str

    def sample(self, rng: random.Random) -> float:
        return self.low if self.distribution == "point" else rng.uniform(self.low, self.high)


@dataclass(frozen=True)
class Profile:
    name: str
    figures: dict[str, Figure]

    def seconds(self, name: str, rng: random.Random | None = None) -> float | None:
        figure = self.figures.get(name)
        return None if figure is None else figure.sample(rng or _rng)

    def hold(self, name: str, started: float) -> float:
        """Sleep until `started` (time.monotonic()) + the figure; the seconds slept."""
        return hold_until(started, self.seconds(name))

    def mood_seconds(self, model: str, output_tokens: int) -> float | None:
        """Time to first token plus the output at the model's rate (`model`: the figure prefix)."""
        first, rate = self.seconds(f"{model}_first_token_s"), self.seconds(f"{model}_tokens_per_s")
        if first is None or not rate:
            return None
        return first + output_tokens / rate


def hold_until(started: float, seconds: float | None) -> float:
    """Sleep until `started` + `seconds` (nothing if None or already past); the seconds slept."""
    if seconds is None:
        return 0.0
    left = started + seconds - time.monotonic()
    if left > 0:
        time.sleep(left)
    return max(0.0, left)


def load(path: str | Path) -> Profile:
    doc = json.loads(Path(path).read_text())
    figures = {}
    for name, f in doc["figures"].items():
        if f["distribution"] == "point":
            figures[name] = Figure("point", float(f["value"]), float(f["value"]), f["source"])
        elif f["distribution"] == "uniform":
            if not 0 <= float(f["low"]) <= float(f["high"]):
                raise ValueError(f"{name}: low must be ≤ high")
            figures[name] = Figure("uniform", float(f["low"]), float(f["high"]), f["source"])
        else:
            raise ValueError(f"{name}: distribution must be point or uniform")
    return Profile(doc["name"], figures)


_rng = random.Random(int(os.environ.get("VOMAGE_LATENCY_SEED", "7")))
_cache: dict[str, Profile | None] = {}


def active() -> Profile | None:
    """The profile this process runs under: only on the local stack, never on AWS."""
    path = os.environ.get(ENV, "")
    if not path or os.environ.get("VOMAGE_ENV", "local") != "local":
        return None
    if path not in _cache:
        _cache[path] = load(path)
    return _cache[path]
