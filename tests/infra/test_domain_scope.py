"""The rules and the archive take the events of the configured Cases domain only (issue 12, item 5).

An account may hold several Cases domains publishing to the same default bus. The synthesized
patterns carry a `resources` prefix match on the domain ARN (built from the partition, Region and
account of the deployment, which are CloudFormation references at synth time), and EventBridge
semantics (moto's pattern engine) route an event of another domain nowhere.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from moto.events.models import EventPattern

from casewatch.topology import EVENT_ROUTED, FunctionSpec, archive_pattern, domain_arn
from tests.builders import load_event
from tests.infra.synth import Synthesized

# What CloudFormation substitutes in the account the sample events come from.
PSEUDO = {"AWS::Partition": "aws", "AWS::Region": "us-east-1", "AWS::AccountId": "123456789012"}
OTHER_DOMAIN = "0d9c8b7a-6f5e-4d3c-8b2a-1f0e9d8c7b6a"
SAMPLE_BY_SPEC = {"case-changed": "case-updated", "related-item-created": "related-item-comment"}


def deployed(value: Any) -> Any:
    """A template value as CloudFormation would resolve it in account 123456789012, us-east-1."""
    if isinstance(value, list):
        return [deployed(v) for v in value]
    if isinstance(value, dict):
        if set(value) == {"Ref"} and value["Ref"] in PSEUDO:
            return PSEUDO[value["Ref"]]
        if set(value) == {"Fn::Join"}:
            separator, parts = value["Fn::Join"]
            return str(separator).join(str(deployed(p)) for p in parts)
        return {k: deployed(v) for k, v in value.items()}
    return value


def in_other_domain(event: dict[str, Any], domain_id: str) -> dict[str, Any]:
    moved: dict[str, Any] = json.loads(json.dumps(event).replace(domain_id, OTHER_DOMAIN))
    return moved


def our_domain(synth: Synthesized) -> str:
    return domain_arn(synth.settings.domain_id, partition="aws", region="us-east-1", account="123456789012")


def matches(pattern: dict[str, Any], event: dict[str, Any]) -> bool:
    return bool(EventPattern.load(json.dumps(pattern)).matches_event(event))  # type: ignore[arg-type]


@pytest.mark.parametrize("spec", EVENT_ROUTED, ids=lambda s: s.name)
def test_each_rule_matches_its_events_of_the_configured_domain_only(
    synth: Synthesized, spec: FunctionSpec
) -> None:
    _, rule = synth.by_path(f"Routing/{spec.construct_id}Rule/Resource")
    pattern = deployed(rule["Properties"]["EventPattern"])
    assert pattern["resources"] == [{"prefix": our_domain(synth)}]
    assert pattern == spec.event_pattern(our_domain(synth))  # the one definition the local pipeline uses
    event = load_event(SAMPLE_BY_SPEC[spec.name])
    assert matches(pattern, event)
    assert not matches(pattern, in_other_domain(event, synth.settings.domain_id))


def test_the_archive_keeps_the_events_of_the_configured_domain_only(synth: Synthesized) -> None:
    _, archive = synth.by_path("Routing/Archive/Archive")
    pattern = deployed(archive["Properties"]["EventPattern"])
    assert pattern == archive_pattern(our_domain(synth))
    assert pattern["resources"] == [{"prefix": our_domain(synth)}]
    for name in SAMPLE_BY_SPEC.values():
        event = load_event(name)
        assert matches(pattern, event), name
        assert not matches(pattern, in_other_domain(event, synth.settings.domain_id)), name


def test_the_domain_prefix_is_the_domain_arn_of_the_deployment(synth: Synthesized) -> None:
    """Partition, Region and account are the stack's own (references), never hard-coded."""
    _, rule = synth.by_path(f"Routing/{EVENT_ROUTED[0].construct_id}Rule/Resource")
    ((prefix,),) = [[f["prefix"] for f in rule["Properties"]["EventPattern"]["resources"]]]
    separator, parts = prefix["Fn::Join"]
    assert separator == ""
    assert {"Ref": "AWS::Partition"} in parts
    assert {"Ref": "AWS::Region"} in parts
    assert {"Ref": "AWS::AccountId"} in parts
    assert str(parts[-1]).endswith(f":domain/{synth.settings.domain_id}")
