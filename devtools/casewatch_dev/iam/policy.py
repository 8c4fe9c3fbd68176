"""A small evaluator of IAM identity policies: is `action` on `resource` allowed for these policies?

What it implements, after IAM's policy evaluation logic for one account's identity-based policies:
- an explicit `Deny` wins; else an `Allow` allows; else the request is implicitly denied;
- `Action`/`NotAction` (case-insensitive), `Resource`/`NotResource` (case-sensitive), with the wildcards
  `*` (any run of characters, `/` and `:` included) and `?` (one character);
- `Condition`: every operator of a statement must hold, every key of an operator must hold, any value of
  a key may match. Operators: `StringEquals`, `StringNotEquals`, `StringEqualsIgnoreCase`,
  `StringNotEqualsIgnoreCase`, `StringLike`, `StringNotLike`, `ArnEquals`, `ArnLike`, `ArnNotEquals`,
  `ArnNotLike` (an ARN as one string, not component by component), `Bool`, `Null`, and the `...IfExists`
  forms. A key missing from the request context makes a
  condition false, but true for the negated operators (`...Not...`) and for `...IfExists`.
- **Fail closed**: a statement it cannot evaluate (another condition operator, a set operator such as
  `ForAnyValue:`, a policy variable `${...}` in a pattern) never allows, and, if it is a `Deny`, denies.

Not implemented (and not needed by casewatch's policies): resource-based policies, permissions boundaries,
session policies, SCPs, `Principal`/`NotPrincipal` (identity policies have none).
"""

from __future__ import annotations

import enum
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any, Final

_NEGATED: Final = frozenset(
    {"StringNotEquals", "StringNotEqualsIgnoreCase", "StringNotLike", "ArnNotEquals", "ArnNotLike"}
)
_OPERATORS: Final = frozenset(
    {
        "StringEquals",
        "StringEqualsIgnoreCase",
        "StringLike",
        "ArnEquals",
        "ArnLike",
        "Bool",
        "Null",
        *_NEGATED,
    }
)


class Decision(enum.Enum):
    ALLOWED = "allowed"
    EXPLICIT_DENY = "explicitly denied"
    IMPLICIT_DENY = "not allowed"

    @property
    def allowed(self) -> bool:
        return self is Decision.ALLOWED


class _Applies(enum.Enum):
    YES = "yes"
    NO = "no"
    UNKNOWN = "unknown"  # cannot be evaluated here: fail closed


@cache
def _pattern(value: str, ignore_case: bool) -> re.Pattern[str]:
    """An IAM wildcard pattern (`*`, `?`) as a regular expression matching the whole string."""
    body = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in value)
    return re.compile(f"^{body}$", (re.IGNORECASE | re.DOTALL) if ignore_case else re.DOTALL)


def _matches(patterns: Sequence[str], value: str, *, ignore_case: bool) -> _Applies:
    if any("${" in p for p in patterns):
        return _Applies.UNKNOWN  # policy variables are not supported
    found = any(_pattern(p, ignore_case).match(value) for p in patterns)
    return _Applies.YES if found else _Applies.NO


def _strings(value: Any) -> tuple[str, ...]:
    if isinstance(value, list):
        return tuple(str(v) for v in value)
    return (str(value),)


@dataclass(frozen=True, slots=True)
class Statement:
    """One statement: effect, what it covers, and its conditions (operator -> key -> values)."""

    effect: str  # Allow | Deny
    actions: tuple[str, ...] = ()
    not_actions: tuple[str, ...] | None = None
    resources: tuple[str, ...] = ()
    not_resources: tuple[str, ...] | None = None
    conditions: tuple[tuple[str, tuple[tuple[str, tuple[str, ...]], ...]], ...] = ()
    sid: str | None = None

    @classmethod
    def parse(cls, data: Mapping[str, Any]) -> Statement:
        effect = data.get("Effect")
        if effect not in ("Allow", "Deny"):
            raise ValueError(f"a statement's Effect must be Allow or Deny, got {effect!r}")
        if ("Action" in data) == ("NotAction" in data):
            raise ValueError("a statement needs exactly one of Action and NotAction")
        if ("Resource" in data) == ("NotResource" in data):
            raise ValueError("an identity policy statement needs exactly one of Resource and NotResource")
        conditions = tuple(
            (operator, tuple((key, _strings(values)) for key, values in dict(by_key).items()))
            for operator, by_key in dict(data.get("Condition") or {}).items()
        )
        return cls(
            effect=effect,
            actions=_strings(data["Action"]) if "Action" in data else (),
            not_actions=_strings(data["NotAction"]) if "NotAction" in data else None,
            resources=_strings(data["Resource"]) if "Resource" in data else (),
            not_resources=_strings(data["NotResource"]) if "NotResource" in data else None,
            conditions=conditions,
            sid=data.get("Sid"),
        )

    def applies(self, action: str, resource: str, context: Mapping[str, str]) -> _Applies:
        covered = (
            _negate(_matches(self.not_actions, action, ignore_case=True))
            if self.not_actions is not None
            else _matches(self.actions, action, ignore_case=True)
        )
        if covered is not _Applies.YES:
            return covered
        covered = (
            _negate(_matches(self.not_resources, resource, ignore_case=False))
            if self.not_resources is not None
            else _matches(self.resources, resource, ignore_case=False)
        )
        if covered is not _Applies.YES:
            return covered
        return _conditions_hold(self.conditions, {k.lower(): v for k, v in context.items()})


def _negate(result: _Applies) -> _Applies:
    return {_Applies.YES: _Applies.NO, _Applies.NO: _Applies.YES}.get(result, _Applies.UNKNOWN)


def _conditions_hold(
    conditions: Iterable[tuple[str, tuple[tuple[str, tuple[str, ...]], ...]]], context: Mapping[str, str]
) -> _Applies:
    for operator, keys in conditions:
        base = operator.removesuffix("IfExists")
        if base not in _OPERATORS or (base == "Null" and operator != base):
            return _Applies.UNKNOWN  # e.g. NumericLessThan, DateGreaterThan, ForAnyValue:StringLike
        for key, expected in keys:
            actual = context.get(key.lower())
            if base == "Null":
                held = (actual is None) == (expected[0].lower() == "true")
            elif actual is None:
                held = base in _NEGATED or operator.endswith("IfExists")
            else:
                held = _compare(base, expected, actual)
            if not held:
                return _Applies.NO
    return _Applies.YES


def _compare(operator: str, expected: tuple[str, ...], actual: str) -> bool:
    if operator in ("StringEquals", "ArnEquals"):
        return actual in expected
    if operator == "StringEqualsIgnoreCase":
        return actual.lower() in {e.lower() for e in expected}
    if operator in ("StringLike", "ArnLike"):
        return _matches(expected, actual, ignore_case=False) is _Applies.YES
    if operator == "Bool":
        return actual.lower() in {e.lower() for e in expected}
    if operator in _NEGATED:
        positive = operator.replace("Not", "", 1)
        return not _compare(positive, expected, actual)
    raise AssertionError(operator)  # pragma: no cover - _OPERATORS lists what is compared here


@dataclass(frozen=True, slots=True)
class Policy:
    """A policy document (`{"Version": ..., "Statement": [...]}`), parsed."""

    name: str
    statements: tuple[Statement, ...]

    @classmethod
    def parse(cls, name: str, document: Mapping[str, Any] | str) -> Policy:
        data = json.loads(document) if isinstance(document, str) else document
        statements = data.get("Statement", [])
        if isinstance(statements, Mapping):
            statements = [statements]
        return cls(name, tuple(Statement.parse(s) for s in statements))


def evaluate(
    policies: Iterable[Policy], action: str, resource: str, context: Mapping[str, str] | None = None
) -> Decision:
    """The decision for one action on one resource under these identity policies."""
    allowed = False
    for policy in policies:
        for statement in policy.statements:
            applies = statement.applies(action, resource, context or {})
            if statement.effect == "Deny" and applies is not _Applies.NO:
                return Decision.EXPLICIT_DENY  # a Deny that may apply denies (fail closed)
            if statement.effect == "Allow" and applies is _Applies.YES:
                allowed = True
    return Decision.ALLOWED if allowed else Decision.IMPLICIT_DENY


__all__ = ["Decision", "Policy", "Statement", "evaluate"]
