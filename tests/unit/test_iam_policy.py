"""The IAM policy evaluator of the local pipeline (`casewatch_dev.iam.policy`), at its edges: wildcards,
an explicit Deny, NotAction/NotResource, conditions, and failing closed on what it cannot evaluate."""

from __future__ import annotations

from typing import Any

import pytest

from casewatch_dev.iam.policy import Decision, Policy, evaluate

DOMAIN = "arn:aws:cases:us-east-1:123456789012:domain/d1"
TABLE = "arn:aws:dynamodb:us-east-1:123456789012:table/casewatch-state"


def policy(*statements: dict[str, Any]) -> Policy:
    return Policy.parse("p", {"Version": "2012-10-17", "Statement": list(statements)})


def allow(action: Any, resource: Any, **extra: Any) -> dict[str, Any]:
    return {"Effect": "Allow", "Action": action, "Resource": resource, **extra}


def deny(action: Any, resource: Any, **extra: Any) -> dict[str, Any]:
    return {"Effect": "Deny", "Action": action, "Resource": resource, **extra}


def decide(p: Policy, action: str, resource: str, context: dict[str, str] | None = None) -> Decision:
    return evaluate([p], action, resource, context)


def test_a_wildcard_at_the_end_covers_what_is_below_and_not_the_prefix_itself() -> None:
    p = policy(allow("cases:GetCase", [f"{DOMAIN}/case/*"]))
    assert decide(p, "cases:GetCase", f"{DOMAIN}/case/c-1") is Decision.ALLOWED
    assert (
        decide(p, "cases:GetCase", f"{DOMAIN}/case/c-1/related-item/r") is Decision.ALLOWED
    )  # `*` spans `/`
    assert decide(p, "cases:GetCase", DOMAIN) is Decision.IMPLICIT_DENY
    assert decide(p, "cases:GetCase", f"{DOMAIN}/case") is Decision.IMPLICIT_DENY
    assert decide(p, "cases:GetCase", f"{DOMAIN}2/case/c-1") is Decision.IMPLICIT_DENY


def test_exact_resources_match_exactly_and_regex_characters_are_literal() -> None:
    p = policy(allow("dynamodb:GetItem", TABLE))
    assert decide(p, "dynamodb:GetItem", TABLE) is Decision.ALLOWED
    assert decide(p, "dynamodb:GetItem", TABLE + "/index/due") is Decision.IMPLICIT_DENY
    assert decide(p, "dynamodb:GetItem", TABLE.upper()) is Decision.IMPLICIT_DENY  # resources: case-sensitive
    fifo = policy(allow("sqs:SendMessage", "arn:aws:sqs:us-east-1:1:q.fifo"))
    assert decide(fifo, "sqs:SendMessage", "arn:aws:sqs:us-east-1:1:q.fifo") is Decision.ALLOWED
    assert decide(fifo, "sqs:SendMessage", "arn:aws:sqs:us-east-1:1:qxfifo") is Decision.IMPLICIT_DENY


def test_actions_compare_without_case_and_take_wildcards() -> None:
    p = policy(allow(["dynamodb:*Item", "SNS:publish"], "*"), allow("sqs:Send?essage", "*"))
    assert decide(p, "dynamodb:PutItem", TABLE) is Decision.ALLOWED
    assert decide(p, "dynamodb:Query", TABLE) is Decision.IMPLICIT_DENY
    assert decide(p, "sns:Publish", "arn:aws:sns:us-east-1:1:t") is Decision.ALLOWED
    assert decide(p, "sqs:SendMessage", "q") is Decision.ALLOWED
    assert decide(p, "sqs:SendMessageBatch", "q") is Decision.IMPLICIT_DENY  # `?` is one character


def test_an_explicit_deny_wins_over_any_allow_in_any_policy() -> None:
    allows = policy(allow("cases:*", "*"))
    denies = policy(deny("cases:SearchRelatedItems", f"{DOMAIN}/case/*"))
    assert (
        evaluate([allows, denies], "cases:SearchRelatedItems", f"{DOMAIN}/case/c") is Decision.EXPLICIT_DENY
    )
    assert evaluate([allows, denies], "cases:SearchRelatedItems", DOMAIN) is Decision.ALLOWED
    assert evaluate([allows, denies], "cases:GetCase", f"{DOMAIN}/case/c") is Decision.ALLOWED
    assert evaluate([], "cases:GetCase", DOMAIN) is Decision.IMPLICIT_DENY  # nothing allows: denied


def test_not_action_and_not_resource() -> None:
    p = policy(
        {"Effect": "Allow", "NotAction": "iam:*", "Resource": "*"},
        {"Effect": "Deny", "Action": "dynamodb:*", "NotResource": [TABLE]},
    )
    assert decide(p, "sns:Publish", "arn:aws:sns:us-east-1:1:t") is Decision.ALLOWED
    assert decide(p, "iam:PassRole", "arn:aws:iam::1:role/r") is Decision.IMPLICIT_DENY
    assert decide(p, "dynamodb:PutItem", TABLE) is Decision.ALLOWED
    assert decide(p, "dynamodb:PutItem", TABLE + "-other") is Decision.EXPLICIT_DENY


PASS_ROLE = allow(
    "iam:PassRole",
    "arn:aws:iam::123456789012:role/scheduler",
    Condition={"StringEquals": {"iam:PassedToService": "scheduler.amazonaws.com"}},
)


def test_string_equals_needs_the_key_with_one_of_the_values() -> None:
    p = policy(PASS_ROLE)
    role = "arn:aws:iam::123456789012:role/scheduler"
    assert decide(p, "iam:PassRole", role, {"iam:PassedToService": "scheduler.amazonaws.com"}).allowed
    assert decide(p, "iam:PassRole", role, {"IAM:passedtoservice": "scheduler.amazonaws.com"}).allowed
    assert not decide(p, "iam:PassRole", role, {"iam:PassedToService": "lambda.amazonaws.com"}).allowed
    assert not decide(p, "iam:PassRole", role).allowed  # the key is missing: the condition is false


@pytest.mark.parametrize(
    ("condition", "context", "allowed"),
    [
        (
            {"StringLike": {"aws:SourceArn": "arn:aws:events:*:rule/casewatch-*"}},
            "arn:aws:events:r:rule/casewatch-a",
            True,
        ),
        (
            {"StringLike": {"aws:SourceArn": "arn:aws:events:*:rule/casewatch-*"}},
            "arn:aws:events:r:rule/other",
            False,
        ),
        (
            {"ArnLike": {"aws:SourceArn": "arn:aws:scheduler:*:*:schedule-group/g"}},
            "arn:aws:scheduler:r:1:schedule-group/g",
            True,
        ),
        ({"ArnEquals": {"aws:SourceArn": "arn:aws:sqs:r:1:q"}}, "arn:aws:sqs:r:1:q2", False),
        ({"StringNotEquals": {"aws:SourceArn": ["a", "b"]}}, "c", True),
        ({"StringNotEquals": {"aws:SourceArn": ["a", "b"]}}, "b", False),
        ({"StringNotEquals": {"aws:SourceArn": "a"}}, None, True),  # a missing key: negated ones hold
        ({"StringEqualsIfExists": {"aws:SourceArn": "a"}}, None, True),
        ({"StringEqualsIfExists": {"aws:SourceArn": "a"}}, "b", False),
        ({"Null": {"aws:SourceArn": "true"}}, None, True),
        ({"Null": {"aws:SourceArn": "false"}}, None, False),
        ({"Bool": {"aws:SourceArn": "true"}}, "True", True),
    ],
)
def test_condition_operators(condition: dict[str, Any], context: str | None, allowed: bool) -> None:
    p = policy(allow("sqs:SendMessage", "*", Condition=condition))
    found = decide(p, "sqs:SendMessage", "q", {"aws:SourceArn": context} if context is not None else {})
    assert found.allowed is allowed


def test_every_operator_and_every_key_must_hold() -> None:
    p = policy(
        allow(
            "sqs:SendMessage",
            "*",
            Condition={
                "StringEquals": {"aws:SourceAccount": "1", "aws:SourceArn": "a"},
                "StringLike": {"aws:PrincipalArn": "arn:*"},
            },
        )
    )
    context = {"aws:SourceAccount": "1", "aws:SourceArn": "a", "aws:PrincipalArn": "arn:x"}
    assert decide(p, "sqs:SendMessage", "q", context).allowed
    for missing in context:
        assert not decide(
            p, "sqs:SendMessage", "q", {k: v for k, v in context.items() if k != missing}
        ).allowed


@pytest.mark.parametrize(
    "condition",
    [
        {"NumericLessThan": {"aws:MultiFactorAuthAge": "3600"}},
        {"DateGreaterThan": {"aws:CurrentTime": "2020-01-01T00:00:00Z"}},
        {"ForAnyValue:StringEquals": {"aws:TagKeys": ["a"]}},
        {"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}},
    ],
)
def test_an_unsupported_condition_fails_closed(condition: dict[str, Any]) -> None:
    context = {"aws:MultiFactorAuthAge": "1", "aws:CurrentTime": "2030-01-01T00:00:00Z", "aws:TagKeys": "a"}
    # an Allow it cannot evaluate never allows ...
    assert decide(policy(allow("sns:Publish", "*", Condition=condition)), "sns:Publish", "t", context) is (
        Decision.IMPLICIT_DENY
    )
    # ... and a Deny it cannot evaluate denies
    both = policy(allow("sns:Publish", "*"), deny("sns:Publish", "*", Condition=condition))
    assert decide(both, "sns:Publish", "t", context) is Decision.EXPLICIT_DENY


def test_a_policy_variable_fails_closed() -> None:
    p = policy(allow("dynamodb:GetItem", "arn:aws:dynamodb:*:*:table/${aws:username}"))
    assert (
        decide(p, "dynamodb:GetItem", "arn:aws:dynamodb:r:1:table/${aws:username}") is Decision.IMPLICIT_DENY
    )


def test_malformed_statements_are_refused() -> None:
    with pytest.raises(ValueError, match="Effect"):
        policy({"Effect": "allow", "Action": "a:b", "Resource": "*"})
    with pytest.raises(ValueError, match="Action and NotAction"):
        policy({"Effect": "Allow", "Resource": "*"})
    with pytest.raises(ValueError, match="Resource and NotResource"):
        policy({"Effect": "Allow", "Action": "a:b", "Resource": "*", "NotResource": "x"})


def test_a_single_statement_object_and_a_json_document_parse() -> None:
    p = Policy.parse("p", '{"Statement": {"Effect": "Allow", "Action": "a:B", "Resource": "*"}}')
    assert decide(p, "a:b", "x") is Decision.ALLOWED
