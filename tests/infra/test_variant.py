"""A second synthesis with `-c casewatch.<setting>=...` overrides: the optional parts and the other choices.

The overrides (`VARIANT_OVERRIDES`, tests/infra/conftest.py) are given as the CLI gives them (strings),
so this also checks that a single setting overrides the cdk.json object end to end.
"""

from __future__ import annotations

import json

from casewatch.topology import EVENT_ROUTED, FUNCTIONS
from tests.infra.synth import Synthesized, domain_arn, render


def test_variant_passes_cdk_nag(variant: Synthesized) -> None:
    assert variant.error is None, variant.error
    (report,) = variant.validation_report()["pluginReports"]
    assert report["violations"] == []


def test_overrides_reach_the_event_configuration(variant: Synthesized) -> None:
    assert variant.settings.domain_id == "0123456789"
    ((_, resource),) = variant.of_type("Custom::CaseEventConfiguration").items()
    request = json.loads(resource["Properties"]["Configuration"])
    assert request["domainId"] == "0123456789"
    assert request["eventBridge"]["includedData"]["caseData"]["autoIncludeFields"] == "All"
    assert len(request["eventBridge"]["includedData"]["caseData"]["fields"]) == 400


def test_capture_rule_writes_cases_events_to_a_log_group(variant: Synthesized) -> None:
    log_group_id, log_group = variant.by_path("Routing/CaptureLogs/Resource")
    assert log_group["Properties"]["LogGroupName"] == "/aws/events/casewatch-capture"
    rule_id, rule = variant.by_path("Routing/CaptureRule/Resource")
    _, archive = variant.by_path("Routing/Archive/Archive")
    assert rule["Properties"]["EventPattern"] == archive["Properties"]["EventPattern"]  # the domain's events
    assert render(rule["Properties"]["EventPattern"]["resources"][0]["prefix"]) == domain_arn("0123456789")
    (target,) = rule["Properties"]["Targets"]
    assert render(target["Arn"]) == (
        "arn:${AWS::Partition}:logs:${AWS::Region}:${AWS::AccountId}:log-group:${" + log_group_id + "}"
    )
    _, policy = variant.by_path("Routing/CapturePolicy/ResourcePolicy")
    document = render(policy["Properties"]["PolicyDocument"])
    assert '"Principal":{"Service":"events.amazonaws.com"}' in document
    assert "${" + rule_id + ".Arn}" in document  # aws:SourceArn: only this rule may write
    assert variant.template["Outputs"]["CaptureLogGroupName"]["Value"] == {"Ref": log_group_id}
    assert not variant.of_type("Custom::CloudwatchLogResourcePolicy")  # no extra custom resource


def test_alarm_email_subscribes_to_the_alarm_topic(variant: Synthesized) -> None:
    variant.assertions.has_resource_properties(
        "AWS::SNS::Subscription",
        {
            "Protocol": "email",
            "Endpoint": "ops@example.com",
            "TopicArn": {"Ref": variant.by_path("Monitoring/AlarmTopic/Resource")[0]},
        },
    )


def test_destroy_removes_tables_logs_and_key(variant: Synthesized) -> None:
    for path in (
        "SlaStore/CaseTable/Resource",
        "Notifications/Key/Resource",
    ):
        assert variant.by_path(path)[1]["DeletionPolicy"] == "Delete", path
    for log_group in variant.of_type("AWS::Logs::LogGroup").values():
        assert log_group["DeletionPolicy"] == "Delete"


def test_an_explicit_reserved_concurrency_reserves_it_for_the_event_routed_functions(
    variant: Synthesized,
) -> None:
    assert variant.settings.reserved_concurrency == 3
    for spec in FUNCTIONS:
        _, fn = variant.by_path(f"Functions/{spec.construct_id}/Resource")
        if spec in EVENT_ROUTED:
            assert fn["Properties"]["ReservedConcurrentExecutions"] == 3, spec.name
        else:
            assert "ReservedConcurrentExecutions" not in fn["Properties"], spec.name


def test_an_indefinite_archive(variant: Synthesized) -> None:
    _, archive = variant.by_path("Routing/Archive/Archive")
    assert archive["Properties"].get("RetentionDays", 0) == 0  # 0: keep events indefinitely
