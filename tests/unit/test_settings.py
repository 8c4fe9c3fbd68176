from __future__ import annotations

import json
from pathlib import Path

import pytest

from casewatch.constants import ENV_CONFIG, ENV_CONFIG_FILE
from casewatch.errors import SettingsError
from casewatch.settings import Settings, get_settings, load_cdk_context
from tests.builders import ROOT

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
