"""Deployment settings from CDK context: the `casewatch` object of cdk.json plus `-c` overrides.

`cdk synth -c casewatch.domain_id=<id>` overrides one setting: every top-level context key
`casewatch.<setting>` is merged over the `casewatch` object, its value parsed as JSON when it
parses (`-c casewatch.capture_events=true`, `-c 'casewatch.event_fields=["status"]'`) and kept
as a string otherwise. The result is validated by the same model the functions use at runtime.
"""

from __future__ import annotations

import json
import types
import typing
from collections.abc import Mapping
from typing import Any

from casewatch.constants import CONTEXT_KEY
from casewatch.domain.sla.model import compile_policies
from casewatch.domain.sla.observations import reconcile_fields, tracked_fields
from casewatch.errors import SettingsError
from casewatch.settings import Settings

OVERRIDE_PREFIX = CONTEXT_KEY + "."

MISSING_DOMAIN_ID = (
    f"{CONTEXT_KEY}.domain_id is required: set it in cdk.json (context.{CONTEXT_KEY}.domain_id) or pass "
    f"`-c {CONTEXT_KEY}.domain_id=<your Cases domain id>` (`make deploy DOMAIN_ID=...`); "
    "list your domains with `aws connectcases list-domains`"
)


def _is_string_setting(name: str) -> bool:
    """True if the setting is typed `str` or `str | None` (kept verbatim, e.g. a numeric-looking id)."""
    field = Settings.model_fields.get(name)
    if field is None:
        return False
    annotation = field.annotation
    if annotation is str:
        return True
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return set(typing.get_args(annotation)) == {str, type(None)}
    return False


def parse_override(name: str, raw: Any) -> Any:
    """The value of one `-c casewatch.<name>=<raw>` override."""
    if not isinstance(raw, str):
        return raw  # context given programmatically, already typed
    if _is_string_setting(name):
        return None if raw == "null" and Settings.model_fields[name].annotation is not str else raw
    try:
        return json.loads(raw)
    except ValueError:
        return raw


def merge_settings(context: Mapping[str, Any]) -> dict[str, Any]:
    """The `casewatch` object of the context with `casewatch.<setting>` overrides applied."""
    base = context.get(CONTEXT_KEY) or {}
    if isinstance(base, str):  # `-c casewatch='{...}'` replaces the whole object
        try:
            base = json.loads(base)
        except ValueError:
            raise SettingsError(f"{CONTEXT_KEY}: not valid JSON") from None
    if not isinstance(base, dict):
        raise SettingsError(f"{CONTEXT_KEY}: must be an object")
    merged = dict(base)
    for key, raw in context.items():
        if key.startswith(OVERRIDE_PREFIX):
            name = key.removeprefix(OVERRIDE_PREFIX)
            merged[name] = parse_override(name, raw)
    return merged


def settings_from_context(context: Mapping[str, Any]) -> Settings:
    """Validated settings; errors name the setting (`casewatch.sla_policies[0].name: ...`)."""
    merged = merge_settings(context)
    if not merged.get("domain_id"):
        raise SettingsError(MISSING_DOMAIN_ID)
    settings = Settings.from_mapping(merged)
    # What only the compiled policies show, checked at synth rather than at the reconcile's cold start.
    reconcile_fields(tracked_fields(compile_policies(settings.sla_policies, settings.field_id)))
    return settings
