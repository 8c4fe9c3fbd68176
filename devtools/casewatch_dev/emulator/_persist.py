"""Saving and loading the emulator's state as JSON (an archive's companion for offline replay)."""

from __future__ import annotations

import json
from dataclasses import asdict
from datetime import datetime
from typing import Any

from casewatch_dev.emulator._state import Case, Domain, FieldDef, RelatedItem, Template, iso

FORMAT = "casewatch-cases-state/1"


def _time(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value.replace("Z", "+00:00"))


def _dump_related(item: RelatedItem) -> dict[str, Any]:
    data = asdict(item)
    for key in ("created", "target_time", "completion_time"):
        data[key] = iso(data[key]) if data[key] is not None else None
    return data


def dump_case(case: Case) -> dict[str, Any]:
    """One case with its related items (SLA target and completion times included)."""
    return {
        "case_id": case.case_id,
        "template_id": case.template_id,
        "created": iso(case.created),
        "fields": json.loads(json.dumps(case.fields)),
        "tags": dict(case.tags),
        "related": [_dump_related(r) for r in case.related.values()],
    }


def load_case(c: dict[str, Any]) -> Case:
    case_created = _time(c["created"])
    assert case_created is not None
    case = Case(c["case_id"], c["template_id"], case_created, fields=c["fields"], tags=c["tags"])
    for r in c["related"]:
        item_created = _time(r["created"])
        assert item_created is not None
        case.related[r["related_item_id"]] = RelatedItem(
            related_item_id=r["related_item_id"],
            type=r["type"],
            content=r["content"],
            created=item_created,
            performed_by=r["performed_by"],
            target_time=_time(r["target_time"]),
            completion_time=_time(r["completion_time"]),
        )
    return case


def dump_domains(domains: dict[str, Domain]) -> dict[str, Any]:
    out: list[dict[str, Any]] = []
    for domain in domains.values():
        out.append(
            {
                "domain_id": domain.domain_id,
                "name": domain.name,
                "created": iso(domain.created),
                "arn": domain.arn,
                "event_config": domain.event_config,
                "fields": [asdict(f) for f in domain.fields.values() if f.namespace != "System"],
                "templates": [asdict(t) for t in domain.templates.values()],
                "cases": [dump_case(case) for case in domain.cases.values()],
            }
        )
    return {"format": FORMAT, "domains": out}


def load_domains(state: dict[str, Any]) -> dict[str, Domain]:
    if state.get("format") != FORMAT:
        raise ValueError(f"not a Cases emulator state (expected format {FORMAT!r})")
    domains: dict[str, Domain] = {}
    for data in state["domains"]:
        created = _time(data["created"])
        assert created is not None
        domain = Domain(
            data["domain_id"], data["name"], created, data["arn"], event_config=data["event_config"]
        )
        for f in data["fields"]:
            domain.fields[f["field_id"]] = FieldDef(**f)
        for t in data["templates"]:
            domain.templates[t["template_id"]] = Template(**t)
        for c in data["cases"]:
            case = load_case(c)
            domain.cases[case.case_id] = case
        domains[domain.domain_id] = domain
    return domains
