"""Settings from CDK context: cdk.json plus `-c casewatch.<setting>=<value>` overrides (no synthesis)."""

from __future__ import annotations

from typing import Any

import pytest
from aws_cdk import App
from infra.app import build_app
from infra.context import merge_settings, parse_override, settings_from_context

from casewatch.errors import SettingsError
from infra import app as app_module
from tests.builders import sla_policies_reading
from tests.infra.synth import cdk_json_context


def test_the_repository_context_is_valid() -> None:
    settings = settings_from_context(cdk_json_context())
    assert settings.domain_id == cdk_json_context()["casewatch"]["domain_id"]


@pytest.mark.parametrize(
    ("name", "raw", "value"),
    [
        ("domain_id", "1234", "1234"),  # a string setting stays a string, even if it looks like JSON
        ("domain_id", "b7f3c2a1-5d4e", "b7f3c2a1-5d4e"),
        ("alarm_email", "null", None),
        ("alarm_email", "ops@example.com", "ops@example.com"),
        ("capture_events", "true", True),
        ("archive_retention_days", "90", 90),
        ("event_fields", '["status", "title"]', ["status", "title"]),
        ("replays", "skip", "skip"),  # not JSON: kept as the string
        ("reserved_concurrency", "null", None),
        ("capture_events", False, False),  # programmatic context is already typed
    ],
)
def test_overrides_parse_json_when_it_parses(name: str, raw: object, value: object) -> None:
    assert parse_override(name, raw) == value


def test_a_single_setting_is_overridden_over_the_cdk_json_object() -> None:
    context = {
        **cdk_json_context(),
        "casewatch.domain_id": "other-domain",
        "casewatch.capture_events": "true",
        "casewatch.event_fields": '["status"]',
    }
    settings = settings_from_context(context)
    assert settings.domain_id == "other-domain"
    assert settings.capture_events is True
    assert settings.event_fields == ["status"]
    assert settings.sla_policies == settings_from_context(cdk_json_context()).sla_policies  # the rest stays


def test_an_invalid_override_names_the_setting() -> None:
    with pytest.raises(SettingsError, match=r"casewatch\.reconcile_every_minutes"):
        settings_from_context({**cdk_json_context(), "casewatch.reconcile_every_minutes": "0"})
    with pytest.raises(SettingsError, match=r"casewatch\.no_such_setting"):
        settings_from_context({**cdk_json_context(), "casewatch.no_such_setting": "1"})


@pytest.mark.parametrize("context", [{}, {"casewatch": {}}, {"casewatch": {"domain_id": ""}}])
def test_a_missing_domain_id_is_a_clear_error(context: dict[str, object]) -> None:
    with pytest.raises(SettingsError, match=r"casewatch\.domain_id is required.*-c casewatch\.domain_id="):
        settings_from_context(context)


def test_the_app_refuses_to_build_without_a_domain_id() -> None:
    context = cdk_json_context()
    context["casewatch"] = {k: v for k, v in context["casewatch"].items() if k != "domain_id"}
    with pytest.raises(SettingsError, match="domain_id is required"):
        build_app(context)


def test_merge_accepts_the_whole_object_as_json() -> None:
    assert merge_settings({"casewatch": '{"domain_id": "d"}'}) == {"domain_id": "d"}


def test_log_retention_must_be_a_cloudwatch_value() -> None:
    from infra.constructs.function import log_retention

    with pytest.raises(SettingsError, match=r"casewatch\.log_retention_days: 45"):
        log_retention(45)


def context_with_policies_reading(count: int) -> dict[str, Any]:
    context = cdk_json_context()
    context["casewatch"] = {**context["casewatch"], "sla_policies": sla_policies_reading(count)}
    return context


def test_policies_reading_22_fields_are_accepted() -> None:
    settings = settings_from_context(context_with_policies_reading(22))
    assert len(settings.sla_policies) == 21


def test_policies_reading_23_fields_fail_the_synthesis(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The change feed's SearchCases returns 25 fields, three of them the change dates: `cdk synth` refuses
    policies that read more than 22 (not the reconcile function's first poll, after the deploy)."""
    context = context_with_policies_reading(23)
    with pytest.raises(SettingsError, match=r"^sla_policies: the policies read 23 case fields"):
        settings_from_context(context)
    with pytest.raises(SettingsError, match="the policies read 23 case fields"):
        build_app(context)
    # `cdk synth` runs `infra/app.py`, whose App reads this context from the CLI: it exits 1 with the reason.
    monkeypatch.setattr(app_module, "App", lambda **props: App(**{**props, "context": context}))
    assert app_module.main() == 1
    assert capsys.readouterr().err.startswith("casewatch: sla_policies: the policies read 23 case fields")
