"""Claude Haiku 5.5's request rules and answer shapes, as the local model server plays them.

A model with these rules (`models.adaptive_thinking`) refuses, with Bedrock's
`ValidationException`, a non-default `temperature`/`top_p`, any `top_k`, an assistant
prefill (the last message the assistant's) and a `budget_tokens` thinking budget; unless
the request turns thinking off it thinks first, so its answer opens with a thinking block
before the tool call; and its safety classifier may decline a transcript (`stop_reason:
"refusal"` in the native answer; through Converse, whose documented stop reasons have no
`refusal`, this server answers `content_filtered`, an assumption the client also covers).
Holding local requests to these rules makes a request that would fail on Bedrock fail
here, and a parser that reads `content[0]` break here.

The classifier's refusal is asked for by a test (`set_refusal`, or `POST
/_stand-in/models/faults` with `{"refuse_containing": "<text>"}`, `""` for every
transcript, `null` to stop), as the weather stand-in's faults are.
"""

from __future__ import annotations

import json
import threading

from vomage_dagster.domain import prompts

# The API's own defaults: setting them is accepted, anything else is refused.
DEFAULT_SAMPLING = {"temperature": 1.0, "top_p": 1.0}
THINKING = ("The speaker describes their day; I weigh the words for the emotion, its "
            "strength and its valence, then record the mood with the tool.")
SIGNATURE = "bG9jYWwtc3RhbmQtaW4tdGhpbmtpbmc="

_refuse_containing: str | None = None
_lock = threading.Lock()


class RequestRefused(ValueError):
    """A request the model's API refuses (HTTP 400 `ValidationException`)."""

    code = "ValidationException"


def set_refusal(containing: str | None) -> None:
    """Decline every transcript containing `containing` ('' = all; None = none)."""
    global _refuse_containing
    with _lock:
        _refuse_containing = containing


def declines(body: dict) -> bool:
    """Whether the classifier declines this request's transcript (as a test asked)."""
    with _lock:
        containing = _refuse_containing
    if containing is None:
        return False
    transcript, _language = prompts.transcript_from_request(body)
    return containing in transcript


def fault_request(raw: bytes) -> None:
    """Apply a `POST /_stand-in/models/faults` body: `{"refuse_containing": str | null}`."""
    doc = json.loads(raw or b"{}")
    if not isinstance(doc, dict) or "refuse_containing" not in doc \
            or not isinstance(doc["refuse_containing"], (str, type(None))):
        raise ValueError('the body must be {"refuse_containing": "<text>" | "" | null}')
    set_refusal(doc["refuse_containing"])


def _check_sampling(values: dict, where: str) -> None:
    for name, default in DEFAULT_SAMPLING.items():
        if name in values and values[name] != default:
            raise RequestRefused(f"{where}{name}: this model accepts only the default value ({default}); "
                                 "leave it out of the request")
    if "top_k" in values:
        raise RequestRefused(f"{where}top_k: this model accepts only the default; leave it out of the request")


def _check_thinking(thinking: object) -> None:
    if thinking is None:
        return
    if not isinstance(thinking, dict) or thinking.get("type") not in ("disabled", "adaptive"):
        raise RequestRefused("thinking.type: expected 'adaptive' or 'disabled'")
    if "budget_tokens" in thinking:
        raise RequestRefused("thinking.budget_tokens: this model thinks adaptively; budget_tokens is not "
                             "accepted")


def _check_prefill(messages: object) -> None:
    if isinstance(messages, list) and messages and isinstance(messages[-1], dict) \
            and messages[-1].get("role") == "assistant":
        raise RequestRefused("messages: this model does not accept an assistant prefill; the last message "
                             "must be the user's")


def check_native(body: dict) -> None:
    """Refuse an InvokeModel (Anthropic Messages) body that breaks the rules."""
    _check_sampling(body, "")
    _check_thinking(body.get("thinking"))
    _check_prefill(body.get("messages"))


def check_converse(body: dict) -> None:
    """Refuse a Converse request that breaks the rules, in either of its places for them."""
    config = body.get("inferenceConfig") or {}
    _check_sampling({"temperature": config["temperature"]} if "temperature" in config else {}, "inferenceConfig.")
    if "topP" in config and config["topP"] != DEFAULT_SAMPLING["top_p"]:
        raise RequestRefused("inferenceConfig.topP: this model accepts only the default value; leave it out")
    extra = body.get("additionalModelRequestFields") or {}
    _check_sampling(extra, "additionalModelRequestFields.")
    _check_thinking(extra.get("thinking"))
    _check_prefill(body.get("messages"))


def thinks_native(body: dict) -> bool:
    return (body.get("thinking") or {}).get("type") != "disabled"


def thinks_converse(body: dict) -> bool:
    extra = body.get("additionalModelRequestFields") or {}
    return (extra.get("thinking") or {}).get("type") != "disabled"


def thinking_tokens() -> int:
    """What the thinking adds to the answer's output tokens (about four characters a token)."""
    return len(THINKING) // 4


def native_thinking_block() -> dict:
    return {"type": "thinking", "thinking": THINKING, "signature": SIGNATURE}


def converse_thinking_block() -> dict:
    return {"reasoningContent": {"reasoningText": {"text": THINKING, "signature": SIGNATURE}}}
