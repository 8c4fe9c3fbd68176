"""cdk-nag (AwsSolutions) acknowledgments: every one names its rule and carries a reason."""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import Acknowledgment, Validations
from constructs import IConstruct

PACK = "AwsSolutions"


def acknowledge(scope: IConstruct, rule: str, reason: str, *, applies_to: Sequence[str] = ()) -> None:
    """Acknowledge `AwsSolutions-<rule>` on `scope` (and its children).

    With `applies_to`, only those findings (`AwsSolutions-IAM5[Resource::<arn>]`) are
    acknowledged, so a new wildcard elsewhere in the same policy still fails the synth.
    """
    if not reason.strip():
        raise ValueError("a cdk-nag acknowledgment needs a reason")
    finding = f"{PACK}-{rule}"
    ids = [f"{PACK}::{finding}[{item}]" for item in applies_to] or [f"{PACK}::{finding}"]
    Validations.of(scope).acknowledge(*(Acknowledgment(id=i, reason=reason) for i in ids))
