"""The local pipeline routes like the deployed rules: the events of the configured domain only."""

from __future__ import annotations

import json

from casewatch.settings import load_cdk_context
from casewatch.topology import RECONCILE
from casewatch_dev.pipeline import LocalPipeline
from tests.builders import ROOT, load_event

OTHER_DOMAIN = "0d9c8b7a-6f5e-4d3c-8b2a-1f0e9d8c7b6a"


def test_the_local_pipeline_routes_the_events_of_its_domain_only() -> None:
    settings = load_cdk_context(ROOT / "cdk.json")
    pipeline = LocalPipeline(settings)  # routing is built with the pipeline; nothing is started
    assert pipeline.domain_arn == f"arn:aws:cases:us-east-1:123456789012:domain/{settings.domain_id}"
    for name, function in (
        ("case-created", "case-changed"),
        ("related-item-comment", "related-item-created"),
    ):
        event = load_event(name)
        assert [spec.name for spec in pipeline.routes_for(event)] == [function]
        other = json.loads(json.dumps(event).replace(settings.domain_id, OTHER_DOMAIN))
        assert pipeline.routes_for(other) == [], name


def test_a_pipeline_without_cases_state_seeds_the_fields_the_settings_read() -> None:
    """A real domain has the custom fields the settings name: the change feed's SearchCases asks for them
    (Cases refuses a field the domain lacks), so every poll of a replay without `state/` would fail."""
    settings = load_cdk_context(ROOT / "cdk.json")
    with LocalPipeline(settings, iam=False, backend="memory") as pipeline:
        fields = pipeline.app(RECONCILE).feed.fields
        assert settings.field_id("priority") in fields
        response = pipeline.emulator.client(in_process=True).list_fields(domainId=settings.domain_id)
        names = {f["fieldId"]: f["name"] for f in response["fields"]}
        assert names[settings.field_id("priority")] == "priority"
        assert pipeline.reconcile().outcome == "handled"
