"""Is every configured model still served? The verdicts of the lifecycle check.

Bedrock marks a model ACTIVE or LEGACY (`GetFoundationModel` → modelLifecycle); a LEGACY
model still answers until its end-of-life date, then every request fails. The check
fails on LEGACY, on a model Bedrock does not know or will not show us, and on an
inference profile that is not ACTIVE in the region: each of those breaks recordings
now or soon, and the operator must hear of it before users do. A newer ACTIVE model of
the same line is named beside the verdict (`successor`), so a move is planned before the
configured model turns LEGACY; it does not fail the check.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass, field

ACTIVE = "ACTIVE"
LEGACY = "LEGACY"
UNKNOWN = "UNKNOWN"  # not found, not authorised, or not offered in the region


@dataclass(frozen=True)
class ModelVerdict:
    """What the check found for one configured model."""

    role: str
    model_id: str
    region: str
    status: str  # ACTIVE, LEGACY or UNKNOWN
    foundation_models: tuple[str, ...] = ()  # for a profile: the models (ARNs) it routes to
    legacy_time: str | None = None
    end_of_life_time: str | None = None
    problems: tuple[str, ...] = field(default_factory=tuple)
    # A newer ACTIVE model of the same line (`model_versions.successor`): advice, never a failure.
    successor: str | None = None

    @property
    def ok(self) -> bool:
        return self.status == ACTIVE and not self.problems

    def as_dict(self) -> dict:
        return {**asdict(self), "ok": self.ok}

    def line(self) -> str:
        """One line for the terminal."""
        mark = "ok  " if self.ok else "FAIL"
        text = f"{mark} {self.role:<8} {self.model_id} ({self.region}): {self.status}"
        if self.end_of_life_time:
            text += f", end of life {self.end_of_life_time}"
        if self.successor:
            text += f", successor: {self.successor} ({ACTIVE})"
        return text + (f" — {'; '.join(self.problems)}" if self.problems else "")


def _iso(value: object) -> str | None:
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).date().isoformat()
    return str(value) if value else None


def from_foundation_model(role: str, model_id: str, region: str, details: dict) -> ModelVerdict:
    """A verdict from a `GetFoundationModel` answer's `modelDetails`."""
    life = details.get("modelLifecycle") or {}
    status = str(life.get("status") or UNKNOWN)
    problems = () if status == ACTIVE else (
        f"{model_id} is {status}: move to a current model before its end of life",)
    return ModelVerdict(role, model_id, region, status, legacy_time=_iso(life.get("legacyTime")),
                        end_of_life_time=_iso(life.get("endOfLifeTime")), problems=problems)


def combine_profile(role: str, profile_id: str, region: str, profile: dict,
                    routed: list[ModelVerdict]) -> ModelVerdict:
    """A profile's verdict: the profile must be ACTIVE and so must every model it routes to."""
    problems: list[str] = []
    if profile.get("status") != ACTIVE:
        problems.append(f"inference profile {profile_id} is {profile.get('status') or 'not available'} "
                        f"in {region}")
    if not routed:
        problems.append(f"inference profile {profile_id} routes to no model")
    by_problem: dict[str, list[str]] = {}
    for verdict in routed:
        for problem in verdict.problems:
            by_problem.setdefault(problem, []).append(verdict.region)
    problems += [f"{', '.join(regions)}: {problem}" for problem, regions in by_problem.items()]
    worst = next((v for v in routed if v.status != ACTIVE), None)
    ends = sorted(v.end_of_life_time for v in routed if v.end_of_life_time)
    return ModelVerdict(
        role, profile_id, region, worst.status if worst else (ACTIVE if not problems else UNKNOWN),
        foundation_models=tuple(str(m.get("modelArn", "")) for m in profile.get("models") or []),
        legacy_time=next((v.legacy_time for v in routed if v.legacy_time), None),
        end_of_life_time=ends[0] if ends else None, problems=tuple(problems))


def unavailable(role: str, model_id: str, region: str, reason: str) -> ModelVerdict:
    return ModelVerdict(role, model_id, region, UNKNOWN,
                        problems=(f"{model_id} is not available in {region}: {reason}",))


def region_of_arn(arn: str, default: str) -> str:
    """`arn:aws:bedrock:<region>::foundation-model/<id>` → region."""
    parts = arn.split(":")
    return parts[3] if len(parts) > 3 and parts[3] else default
