from __future__ import annotations

import json
from pathlib import Path

import pytest

from casewatch.constants import ENV_CONFIG, ENV_CONFIG_FILE
from casewatch.domain.sla.model import compile_policies
from casewatch.domain.sla.observations import MAX_SEARCH_FIELDS, reconcile_fields, tracked_fields
from casewatch.errors import SettingsError
from casewatch.settings import Settings, get_settings, load_cdk_context
from casewatch.topology import CASE_CHANGED
from tests.apps import World
from tests.builders import ROOT, sla_policies_reading

PRIORITY = "6f5e4d3c-2b1a-4f0e-9d8c-7b6a5f4e3d2c"


def test_the_shipped_cdk_json_is_valid() -> None:
    settings = load_cdk_context(ROOT / "cdk.json")
    assert settings.field_id("priority") == PRIORITY
    assert {"status", PRIORITY, "assigned_user"} <= settings.needed_field_ids
    assert "priority" not in settings.needed_field_ids  # names resolve to ids


@pytest.mark.parametrize(
    ("patch", "names"),
    [
        ({"domain_id": ""}, "casewatch.domain_id"),
        (
            {
                "sla_policies": [
                    {"name": "x", "target_minutes": 0, "complete_when": {"related_item": "Comment"}}
                ]
            },
            "casewatch.sla_policies[0].target_minutes",
        ),
        (
            {"sla_policies": [{"name": "x", "target_minutes": 5, "complete_when": {}}]},
            "casewatch.sla_policies[0].complete_when",
        ),
        ({"notification_rules": [{"name": "r", "on": "field_changed"}]}, "casewatch.notification_rules[0]"),
        ({"notification_rules": [{"name": "r", "on": "sla_exploded"}]}, "casewatch.notification_rules[0].on"),
        ({"unknown_setting": 1}, "casewatch.unknown_setting"),
        ({"sla_warning_fraction": 1.5}, "casewatch.sla_warning_fraction"),
    ],
)
def test_invalid_settings_name_the_setting(patch: dict[str, object], names: str) -> None:
    with pytest.raises(SettingsError, match=names.replace("[", r"\[").replace("]", r"\]")):
        Settings.from_mapping({"domain_id": "d", **patch})


def test_runtime_json_round_trips_without_deploy_only_settings() -> None:
    settings = load_cdk_context(ROOT / "cdk.json")
    runtime = json.loads(settings.runtime_json())
    assert "archive_retention_days" not in runtime and "alarm_email" not in runtime
    again = Settings.from_mapping(runtime)
    assert again.sla_policies == settings.sla_policies
    assert again.notification_rules == settings.notification_rules


def test_get_settings_reads_the_environment_lazily(monkeypatch: pytest.MonkeyPatch) -> None:
    get_settings.cache_clear()
    monkeypatch.delenv(ENV_CONFIG, raising=False)
    monkeypatch.delenv(ENV_CONFIG_FILE, raising=False)
    with pytest.raises(SettingsError, match=ENV_CONFIG):
        get_settings()
    monkeypatch.setenv(ENV_CONFIG, json.dumps({"domain_id": "abc"}))
    assert get_settings().domain_id == "abc"
    get_settings.cache_clear()


def test_get_settings_reads_the_file_the_environment_names(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """In AWS the settings are a file of the settings layer (`/opt/casewatch/settings.json`)."""
    path = tmp_path / "settings.json"
    path.write_text(json.dumps({"domain_id": "from-file", "event_fields": ["status"] * 400}))
    monkeypatch.setenv(ENV_CONFIG_FILE, str(path))
    monkeypatch.setenv(ENV_CONFIG, json.dumps({"domain_id": "from-env"}))  # the file wins
    get_settings.cache_clear()
    try:
        settings = get_settings()
        assert settings.domain_id == "from-file"
        assert len(settings.event_fields) == 400
    finally:
        get_settings.cache_clear()


@pytest.mark.parametrize(("content", "problem"), [(None, "cannot be read"), ("{", "not valid JSON")])
def test_an_unusable_settings_file_is_named_in_the_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, content: str | None, problem: str
) -> None:
    path = tmp_path / "settings.json"
    if content is not None:
        path.write_text(content)
    monkeypatch.setenv(ENV_CONFIG_FILE, str(path))
    get_settings.cache_clear()
    try:
        with pytest.raises(SettingsError, match=rf"{ENV_CONFIG_FILE} \({path}\): {problem}"):
            get_settings()
    finally:
        get_settings.cache_clear()


def test_cdk_context_overrides_and_errors(tmp_path: Path) -> None:
    assert load_cdk_context(ROOT / "cdk.json", {"replays": "skip"}).replays == "skip"
    with pytest.raises(SettingsError, match="not found"):
        load_cdk_context(tmp_path / "missing.json")
    (tmp_path / "cdk.json").write_text("{")
    with pytest.raises(SettingsError, match="not valid JSON"):
        load_cdk_context(tmp_path / "cdk.json")


def test_deploy_only_is_not_a_setting(tmp_path: Path) -> None:
    """`DEPLOY_ONLY` is a class constant: cdk.json cannot set it, and it never reaches the functions."""
    assert "DEPLOY_ONLY" not in Settings.model_fields
    with pytest.raises(SettingsError, match=r"casewatch\.DEPLOY_ONLY"):
        Settings.from_mapping({"domain_id": "d", "DEPLOY_ONLY": []})
    document = json.loads((ROOT / "cdk.json").read_text())
    document["context"]["casewatch"]["DEPLOY_ONLY"] = ["domain_id"]
    (tmp_path / "cdk.json").write_text(json.dumps(document))
    with pytest.raises(SettingsError, match="DEPLOY_ONLY"):
        load_cdk_context(tmp_path / "cdk.json")
    settings = load_cdk_context(ROOT / "cdk.json", {"alarm_email": "ops@example.com", "capture_events": True})
    runtime = json.loads(settings.runtime_json())
    assert "DEPLOY_ONLY" not in runtime
    assert not Settings.DEPLOY_ONLY & set(runtime)  # none of the deploy-only settings either
    assert set(Settings.model_fields) > Settings.DEPLOY_ONLY  # and each of them is a real setting


# --- what the change feed can track: SearchCases returns 25 fields, 3 of them the change dates --------------


def policies_reading(count: int, *extra: str) -> Settings:
    return Settings.from_mapping({"domain_id": "d", "sla_policies": sla_policies_reading(count, *extra)})


def feed_fields(settings: Settings) -> list[str]:
    return reconcile_fields(tracked_fields(compile_policies(settings.sla_policies, settings.field_id)))


def test_policies_reading_22_fields_are_tracked_by_the_feed_in_one_search() -> None:
    fields = feed_fields(policies_reading(22))
    assert len(fields) == MAX_SEARCH_FIELDS == 25
    assert fields[:3] == ["last_updated_datetime", "last_closed_datetime", "created_datetime"]  # dates first
    assert set(fields[3:]) == {"status", *(f"field-{n:02d}" for n in range(21))}


def test_policies_reading_23_fields_are_refused() -> None:
    with pytest.raises(
        SettingsError, match=r"^sla_policies: the policies read 23 case fields; .* at most 22"
    ):
        feed_fields(policies_reading(23))


def test_a_date_field_a_policy_reads_is_one_of_the_three() -> None:
    """A policy on `last_closed_datetime` adds no field to the search: 22 others and it still fit."""
    fields = feed_fields(policies_reading(22, "last_closed_datetime"))
    assert len(fields) == 25 and fields.count("last_closed_datetime") == 1


@pytest.mark.parametrize(("count", "refused"), [(22, False), (23, True)])
def test_the_reconcile_function_refuses_to_start_with_more_than_22(count: int, refused: bool) -> None:
    """At the reconcile function's cold start (the stack refuses it at synth already: tests/infra); the
    functions that do not search are unaffected."""
    world = World(policies_reading(count))
    world.event_app(CASE_CHANGED.name)
    world.timer_app()
    if refused:
        with pytest.raises(SettingsError, match="the policies read 23 case fields"):
            world.reconcile_app()
    else:
        assert len(world.reconcile_app().feed.fields) == 25
