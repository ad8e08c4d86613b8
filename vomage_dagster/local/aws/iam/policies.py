"""IAM policy evaluation with AWS's semantics, for identity and trust policies: no moto
here, no AWS (see `enforcement.py` for where it is used)."""

from __future__ import annotations

import functools
import logging
import re
from dataclasses import dataclass
from typing import Any

# --------------------------------------------------------------------------------------
# Policy engine (AWS semantics for identity and trust policies)
# --------------------------------------------------------------------------------------

log = logging.getLogger("vomage.iam")

ALLOW, DENY = "Allow", "Deny"


class UnsupportedCondition(Exception):
    """A condition operator this engine does not evaluate."""


def as_list(value: Any) -> list:
    return value if isinstance(value, list) else [value]


@functools.lru_cache(maxsize=8192)
def _wild_re(pattern: str, ignore_case: bool) -> re.Pattern:
    # IAM wildcards: `*` any run of characters, `?` one character; all else literal
    # (moto's own matcher only turns `*` into `.*`, so `.` and `?` were regex syntax).
    body = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.compile(body + r"\Z", re.S | (re.I if ignore_case else 0))


def wild_match(pattern: str, value: str, ignore_case: bool = False) -> bool:
    return _wild_re(pattern, ignore_case).match(value) is not None


def arn_match(pattern: str, value: str) -> bool:
    """ArnLike / Resource matching: the six colon-separated parts are matched one by one."""
    if pattern == "*":
        return True
    p, v = pattern.split(":", 5), value.split(":", 5)
    if len(p) != 6 or len(v) != 6:
        return wild_match(pattern, value)
    return all(wild_match(a, b) for a, b in zip(p, v, strict=True))


_VAR = re.compile(r"\$\{([^}]+)\}")


def _substitute(text: str, ctx: dict[str, list[str]]) -> str | None:
    """Policy variables (${aws:username}, ...); None when one is not in the context."""
    if "${" not in text:
        return text
    missing = False

    def repl(m: re.Match) -> str:
        nonlocal missing
        key = m.group(1).strip()
        if key in ("*", "?", "$"):
            return key
        found = ctx.get(key.lower())
        if not found or len(found) != 1:
            missing = True
            return ""
        return found[0]

    out = _VAR.sub(repl, text)
    return None if missing else out


def normalise(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


def _num(a: str, b: str, cmp) -> bool:
    try:
        return cmp(float(b), float(a))  # (request value) <op> (policy value)
    except ValueError:
        return False


# operator -> (matcher(policy_value, request_value), negated)
_OPS = {
    "StringEquals": (lambda e, v: e == v, False),
    "StringNotEquals": (lambda e, v: e == v, True),
    "StringEqualsIgnoreCase": (lambda e, v: e.lower() == v.lower(), False),
    "StringNotEqualsIgnoreCase": (lambda e, v: e.lower() == v.lower(), True),
    "StringLike": (wild_match, False),
    "StringNotLike": (wild_match, True),
    "ArnEquals": (arn_match, False),
    "ArnLike": (arn_match, False),
    "ArnNotEquals": (arn_match, True),
    "ArnNotLike": (arn_match, True),
    "Bool": (lambda e, v: e.lower() == v.lower(), False),
    "NumericEquals": (lambda e, v: _num(e, v, lambda x, y: x == y), False),
    "NumericNotEquals": (lambda e, v: _num(e, v, lambda x, y: x == y), True),
    "NumericLessThan": (lambda e, v: _num(e, v, lambda x, y: x < y), False),
    "NumericLessThanEquals": (lambda e, v: _num(e, v, lambda x, y: x <= y), False),
    "NumericGreaterThan": (lambda e, v: _num(e, v, lambda x, y: x > y), False),
    "NumericGreaterThanEquals": (lambda e, v: _num(e, v, lambda x, y: x >= y), False),
}
_warned: set[str] = set()


def _condition_holds(operator: str, key: str, expected: list, ctx: dict[str, list[str]]) -> bool:
    qualifier, _, op = operator.rpartition(":")
    if_exists = op.endswith("IfExists") and op != "IfExists"
    if if_exists:
        op = op[: -len("IfExists")]
    values = ctx.get(key.lower())
    present = bool(values)
    if op == "Null":
        return (not present) == (normalise(expected[0]).lower() == "true")
    if op not in _OPS or qualifier not in ("", "ForAnyValue", "ForAllValues"):
        if operator not in _warned:
            _warned.add(operator)
            log.warning("IAM condition operator %s is not evaluated: the statement fails closed", operator)
        raise UnsupportedCondition(operator)
    matcher, negated = _OPS[op]
    if not present:
        # AWS: an absent key fails a positive operator and satisfies a negated one;
        # ...IfExists and ForAllValues are satisfied, ForAnyValue is not.
        if if_exists or qualifier == "ForAllValues":
            return True
        if qualifier == "ForAnyValue":
            return False
        return negated
    wanted = []
    for e in expected:
        s = _substitute(normalise(e), ctx)
        if s is not None:
            wanted.append(s)

    def one(v: str) -> bool:
        hit = any(matcher(e, v) for e in wanted)
        return not hit if negated else hit

    if qualifier == "ForAllValues":
        return all(one(v) for v in values)
    if qualifier == "ForAnyValue" or not negated:
        return any(one(v) for v in values)
    return all(one(v) for v in values)


def conditions_hold(block: dict, ctx: dict[str, list[str]]) -> bool:
    """All operators AND, all keys AND, the values of one key OR (AWS)."""
    for operator, keys in (block or {}).items():
        for key, expected in keys.items():
            if not _condition_holds(operator, key, as_list(expected), ctx):
                return False
    return True


@dataclass
class Caller:
    kind: str  # "User" | "AssumedRole" | "Root"
    arn: str  # the request's principal (user ARN, assumed-role session ARN)
    principal_arn: str  # aws:PrincipalArn (a session's role ARN)
    account: str
    userid: str = ""
    username: str = ""


def _principal_match(element: Any, caller: Caller) -> int:
    """2: the caller is named; 1: the caller's account is named; 0: no match.
    Service / Federated principals never match a caller holding IAM credentials."""
    if element == "*":
        return 2
    if not isinstance(element, dict):
        return 0
    best = 0
    for value in as_list(element.get("AWS", [])):
        if value == "*" or value in (caller.arn, caller.principal_arn):
            return 2
        if value in (caller.account, f"arn:aws:iam::{caller.account}:root") or (
            value.startswith("arn:") and value.endswith(f":iam::{caller.account}:root")
        ):
            best = 1
    return best


def _statement_applies(st: dict, action: str, resource: str, ctx: dict, caller: Caller | None) -> int:
    """0: the statement does not apply; else the principal match strength (2 for
    identity policies)."""
    if "Action" in st:
        if not any(wild_match(a, action, True) for a in as_list(st["Action"])):
            return 0
    elif "NotAction" in st:
        if any(wild_match(a, action, True) for a in as_list(st["NotAction"])):
            return 0
    else:
        return 0
    for element, wanted in (("Resource", True), ("NotResource", False)):
        if element in st:
            hit = False
            for pattern in as_list(st[element]):
                pattern = _substitute(pattern, ctx)
                if pattern is not None and arn_match(pattern, resource):
                    hit = True
                    break
            if hit != wanted:
                return 0
    strength = 2
    if caller is not None:  # a trust (resource-based) policy: the principal must match
        if "Principal" in st:
            strength = _principal_match(st["Principal"], caller)
        elif "NotPrincipal" in st:
            strength = 0 if _principal_match(st["NotPrincipal"], caller) else 2
        else:
            strength = 0
        if not strength:
            return 0
    try:
        holds = conditions_hold(st.get("Condition"), ctx)
    except UnsupportedCondition:
        # Never grant more than AWS could: an Allow we cannot evaluate does not
        # apply, a Deny we cannot evaluate does.
        holds = st.get("Effect") == DENY
    return strength if holds else 0


def evaluate(documents: list[dict], action: str, resource: str, ctx: dict,
             caller: Caller | None = None) -> tuple[str | None, int]:
    """(Deny | Allow | None, principal match strength of the allowing statement)."""
    allowed = 0
    for doc in documents:
        for st in as_list(doc.get("Statement", [])):
            strength = _statement_applies(st, action, resource, ctx, caller)
            if not strength:
                continue
            if st.get("Effect") == DENY:
                return DENY, strength
            if st.get("Effect") == ALLOW:
                allowed = max(allowed, strength)
    return (ALLOW, allowed) if allowed else (None, 0)


