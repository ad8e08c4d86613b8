"""What a Bedrock model id says about its line and version.

The lifecycle check names a newer ACTIVE model of the configured model's line, found in
`ListFoundationModels` rather than written down here, so a successor shows up the day
Bedrock lists it. The rule is kept simple on purpose:

- drop a profile prefix (`us.`), the provider (`anthropic.`), the API revision suffix
  (`-v1:0`, with a context-length tail such as `:200k`) and a release date (`-20251001`);
- of what is left, the words are the line (`claude-haiku`, `nova-lite`,
  `stable-image-core`) and the numbers, in order, the generation (`haiku-4-5` → (4, 5);
  `claude-3-haiku` → (3,); none → ());
- two models of one provider and line compare by (generation, release date, API revision).

So Claude 3 Haiku < Claude 3.5 Haiku < Claude Haiku 4.5 < Claude Haiku 5.5, Nova Lite <
Nova 2 Lite, and Stable Image Core v1:0 < v1:1; a Sonnet is never a Haiku's successor.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from vomage_dagster.domain import models

_REVISION = re.compile(r"-v(\d+)(?::(\d+))?(?::[0-9a-z]+)?$")
_DATE = re.compile(r"-(\d{8})$")


@dataclass(frozen=True)
class Lineage:
    provider: str
    line: str
    generation: tuple[int, ...]
    date: str = ""
    revision: tuple[int, ...] = ()

    @property
    def key(self) -> tuple:
        """The order within a line: generation, then release date, then API revision."""
        return (self.generation, self.date, self.revision)

    def same_line(self, other: Lineage) -> bool:
        return (self.provider, self.line) == (other.provider, other.line)


def lineage(model_id: str) -> Lineage:
    """The provider, line and version of a model id (a profile id: of its foundation model)."""
    provider, _, rest = models.foundation_id(model_id).partition(".")
    revision: tuple[int, ...] = ()
    found = _REVISION.search(rest)
    if found:
        revision = tuple(int(g) for g in found.groups() if g is not None)
        rest = rest[:found.start()]
    date = ""
    found = _DATE.search(rest)
    if found:
        date, rest = found.group(1), rest[:found.start()]
    parts = rest.split("-")
    line = "-".join(p for p in parts if not p.isdigit())
    generation = tuple(int(p) for p in parts if p.isdigit())
    return Lineage(provider, line, generation, date, revision)


def successor(model_id: str, summaries: list[dict], status: str = "ACTIVE") -> dict | None:
    """The newest `ListFoundationModels` summary of the same line, newer than `model_id` and
    in lifecycle `status`; None when the configured model is the newest one listed."""
    mine = lineage(model_id)
    newer = [(lineage(s["modelId"]), s) for s in summaries
             if isinstance(s, dict) and s.get("modelId")
             and (s.get("modelLifecycle") or {}).get("status") == status]
    newer = [(found, s) for found, s in newer if found.same_line(mine) and found.key > mine.key]
    if not newer:
        return None
    return max(newer, key=lambda pair: pair[0].key)[1]
