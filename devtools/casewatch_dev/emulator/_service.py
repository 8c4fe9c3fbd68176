"""The Cases operations over the emulator's state (no HTTP, no locking, no fault injection)."""

from __future__ import annotations

import copy
import random
import uuid
from collections.abc import Callable
from typing import Any, Literal

from casewatch.ports import Clock
from casewatch_dev.emulator import _events as events
from casewatch_dev.emulator._index import SearchIndex
from casewatch_dev.emulator._protocol import JSON, ApiError, not_found, validation
from casewatch_dev.emulator._search import (
    check_filter,
    field_types,
    matches_related,
    search_all_related_items,
    search_cases,
)
from casewatch_dev.emulator._state import (
    CONTENT_KEYS,
    READ_ONLY_FIELDS,
    Case,
    Domain,
    FieldDef,
    RelatedItem,
    Template,
    check_value_type,
    has_value,
    iso,
    member_of,
    page,
    query_key,
    sla_target,
    values_equal,
)

EmptyAs = Literal["omit", "emptyValue"]
MAX_RELATED_ITEMS = 200
MAX_SLAS = 10


class CasesService:
    """In-memory Amazon Connect Cases. Each `op_<Operation>` takes and returns wire dicts."""

    def __init__(
        self,
        *,
        clock: Clock,
        ids: random.Random,
        account_id: str,
        region: str,
        getcase_page_size: int,
        empty_as: EmptyAs,
        no_fields_as: events.NoFieldsAs,
        performed_by: str | None,
        iam_principal_arn: str | None,
        index: SearchIndex,
    ) -> None:
        self.clock = clock
        self.ids = ids
        self.account_id = account_id
        self.region = region
        self.getcase_page_size = getcase_page_size
        self.empty_as: EmptyAs = empty_as
        self.no_fields_as: events.NoFieldsAs = no_fields_as
        self.performed_by = performed_by
        self.iam_principal_arn = iam_principal_arn
        self.domains: dict[str, Domain] = {}
        self.index = index  # what SearchCases and SearchAllRelatedItems see: every case change goes to it
        self.outbox: list[JSON] = []  # events of the current operation, delivered by the caller

    # -- helpers -------------------------------------------------------------------------------
    def new_id(self) -> str:
        return str(uuid.UUID(int=self.ids.getrandbits(128), version=4))

    def handler(self, operation: str) -> Callable[[JSON], JSON] | None:
        found: Callable[[JSON], JSON] | None = getattr(self, f"op_{operation}", None)
        return found

    def domain(self, domain_id: str) -> Domain:
        found = self.domains.get(domain_id)
        if found is None:
            raise not_found("Domain", domain_id)
        return found

    def case(self, domain: Domain, case_id: str) -> Case:
        found = domain.cases.get(case_id)
        if found is None:
            raise not_found("Case", case_id)
        return found

    def _field_values(self, case: Case, field_ids: list[str]) -> list[JSON]:
        out: list[JSON] = []
        for field_id in field_ids:
            value = case.value(field_id)
            if value is not None:
                out.append({"id": field_id, "value": value})
            elif self.empty_as == "emptyValue":
                out.append({"id": field_id, "value": {"emptyValue": {}}})
        return out

    def _check_writes(self, domain: Domain, entries: list[JSON], *, enforce: bool) -> dict[str, JSON]:
        values: dict[str, JSON] = {}
        unknown = domain.unknown_fields([str(e["id"]) for e in entries])
        if unknown:
            raise validation(f"Fields not found in the domain: {', '.join(unknown)}")
        for entry in entries:
            field_id = str(entry["id"])
            if field_id in values:
                raise validation(f"Field {field_id} appears more than once")
            if enforce and field_id in READ_ONLY_FIELDS:
                raise validation(f"Field {field_id} is read-only")
            check_value_type(field_id, domain.fields[field_id].type, entry["value"])
            values[field_id] = dict(entry["value"])
        return values

    def _emit(self, domain: Domain, resource_arn: str, detail: JSON) -> None:
        if not events.enabled(domain):
            return
        self.outbox.append(
            events.envelope(
                event_id=self.new_id(),
                account=self.account_id,
                region=self.region,
                now=self.clock.now(),
                resources=[domain.arn, resource_arn],
                detail=detail,
            )
        )

    def _performer(self, user: JSON | None) -> JSON | None:
        return events.performer(user, self.performed_by, self.iam_principal_arn)

    # -- domains, fields, templates ------------------------------------------------------------
    def create_domain(self, name: str, domain_id: str | None = None) -> Domain:
        if any(d.name == name for d in self.domains.values()):
            raise ApiError("ConflictException", "A domain with this name already exists")
        domain_id = domain_id or self.new_id()
        if domain_id in self.domains:
            raise ApiError("ConflictException", "A domain with this id already exists")
        arn = f"arn:aws:cases:{self.region}:{self.account_id}:domain/{domain_id}"
        domain = Domain(domain_id, name, self.clock.now(), arn)
        self.domains[domain_id] = domain
        return domain

    def op_CreateDomain(self, p: JSON) -> JSON:
        domain = self.create_domain(p["name"])
        return {"domainId": domain.domain_id, "domainArn": domain.arn, "domainStatus": "Active"}

    def op_GetDomain(self, p: JSON) -> JSON:
        d = self.domain(p["domainId"])
        return {
            "domainId": d.domain_id,
            "domainArn": d.arn,
            "name": d.name,
            "createdTime": iso(d.created),
            "domainStatus": "Active",
            "tags": {},
        }

    def op_DeleteDomain(self, p: JSON) -> JSON:
        self.domain(p["domainId"])
        del self.domains[p["domainId"]]
        self.index.drop_domain(p["domainId"])
        return {}

    def create_field(
        self,
        domain: Domain,
        name: str,
        kind: str,
        *,
        field_id: str | None = None,
        description: str | None = None,
        attributes: JSON | None = None,
    ) -> FieldDef:
        if any(f.name.lower() == name.lower() for f in domain.fields.values()):
            raise ApiError("ConflictException", "A field with this name already exists")
        field_id = field_id or self.new_id()
        if field_id in domain.fields:
            raise ApiError("ConflictException", "A field with this id already exists")
        created = FieldDef(field_id, name, kind, "Custom", description, attributes)
        domain.fields[field_id] = created
        return created

    def op_CreateField(self, p: JSON) -> JSON:
        domain = self.domain(p["domainId"])
        created = self.create_field(
            domain, p["name"], p["type"], description=p.get("description"), attributes=p.get("attributes")
        )
        return {"fieldId": created.field_id, "fieldArn": f"{domain.arn}/field/{created.field_id}"}

    def op_ListFields(self, p: JSON) -> JSON:
        domain = self.domain(p["domainId"])
        items = [f.wire(domain.arn) for f in domain.fields.values()]
        chunk, token = page(items, p.get("maxResults") or 100, p.get("nextToken"), query_key("fields"))
        return {"fields": chunk, "nextToken": token}

    def create_template(
        self,
        domain: Domain,
        name: str,
        *,
        template_id: str | None = None,
        required_fields: list[str] | None = None,
        status: str = "Active",
        description: str | None = None,
    ) -> Template:
        if any(t.name == name for t in domain.templates.values()):
            raise ApiError("ConflictException", "A template with this name already exists")
        required = list(required_fields or [])
        unknown = domain.unknown_fields(required)
        if unknown:
            raise validation(f"Required fields not found in the domain: {', '.join(unknown)}")
        template_id = template_id or self.new_id()
        created = Template(template_id, name, status, required, description)
        domain.templates[template_id] = created
        return created

    def op_CreateTemplate(self, p: JSON) -> JSON:
        domain = self.domain(p["domainId"])
        created = self.create_template(
            domain,
            p["name"],
            required_fields=[r["fieldId"] for r in p.get("requiredFields") or []],
            status=p.get("status") or "Active",
            description=p.get("description"),
        )
        return {
            "templateId": created.template_id,
            "templateArn": f"{domain.arn}/template/{created.template_id}",
        }

    # -- cases ---------------------------------------------------------------------------------
    def create_case(
        self,
        domain: Domain,
        template_id: str,
        entries: list[JSON],
        *,
        tags: dict[str, Any] | None = None,
        user: JSON | None = None,
        case_id: str | None = None,
        enforce: bool = True,
        emit: bool = True,
    ) -> Case:
        template = domain.templates.get(template_id)
        if template is None:
            raise not_found("Template", template_id)
        if enforce and template.status != "Active":
            raise validation("The template is not active")
        values = self._check_writes(domain, entries, enforce=enforce)
        missing = [f for f in template.required_fields if not has_value(values.get(f))]
        if enforce and missing:
            raise validation(f"Required fields are missing: {', '.join(missing)}")
        now = self.clock.now()
        case_id = case_id or self.new_id()
        if case_id in domain.cases:
            raise ApiError("ConflictException", "A case with this id already exists")
        changed = [f for f, v in values.items() if has_value(v)]
        case = Case(case_id, template_id, now, tags=dict(tags or {}))
        case.fields = {f: v for f, v in values.items() if has_value(v)}
        generated: dict[str, JSON] = {
            "case_id": {"stringValue": case_id},
            "reference_number": {"stringValue": f"{self.ids.randrange(10_000_000, 100_000_000)}"},
            "created_datetime": {"stringValue": iso(now)},
            "last_updated_datetime": {"stringValue": iso(now)},
        }
        if "status" not in case.fields:
            generated["status"] = {"stringValue": "open"}
            changed.append("status")
        if user and user.get("userArn"):
            generated["last_updated_user"] = {"userArnValue": user["userArn"]}
        for field_id, value in generated.items():
            case.fields.setdefault(field_id, value)
        changed += ["reference_number", "created_datetime"]
        domain.cases[case_id] = case
        self.index.record(domain.domain_id, case_id, case)
        if emit:
            detail = events.case_detail(
                "CASE.CREATED",
                domain,
                case,
                changed=changed,
                performed_by=self._performer(user),
                when=now,
                no_fields_as=self.no_fields_as,
            )
            self._emit(domain, domain.case_arn(case_id), detail)
        return case

    def op_CreateCase(self, p: JSON) -> JSON:
        domain = self.domain(p["domainId"])
        token = p.get("clientToken")
        if token and token in domain.client_tokens and domain.client_tokens[token] in domain.cases:
            existing = domain.client_tokens[token]
            return {"caseId": existing, "caseArn": domain.case_arn(existing)}
        case = self.create_case(
            domain, p["templateId"], p.get("fields") or [], tags=p.get("tags"), user=p.get("performedBy")
        )
        if token:
            domain.client_tokens[token] = case.case_id
        return {"caseId": case.case_id, "caseArn": domain.case_arn(case.case_id)}

    def update_case(self, domain: Domain, case: Case, entries: list[JSON], user: JSON | None) -> list[str]:
        values = self._check_writes(domain, entries, enforce=True)
        now = self.clock.now()
        old_status = member_of(case.fields.get("status"))
        changed = []
        for field_id, value in values.items():
            if values_equal(case.fields.get(field_id), value):
                continue
            changed.append(field_id)
            if has_value(value):
                case.fields[field_id] = value
            else:
                case.fields.pop(field_id, None)
        new_status = member_of(case.fields.get("status"))
        closed = ("stringValue", "closed")
        system: dict[str, JSON] = {"last_updated_datetime": {"stringValue": iso(now)}}
        if new_status == closed and old_status != closed:
            system["last_closed_datetime"] = {"stringValue": iso(now)}
        elif old_status == closed and new_status != closed:
            system["last_reopened_datetime"] = {"stringValue": iso(now)}
        if user and user.get("userArn"):
            system["last_updated_user"] = {"userArnValue": user["userArn"]}
        for field_id, value in system.items():
            if not values_equal(case.fields.get(field_id), value):
                changed.append(field_id)
            case.fields[field_id] = value
        case.complete_slas(now)
        self.index.record(domain.domain_id, case.case_id, case)
        return changed

    def op_UpdateCase(self, p: JSON) -> JSON:
        domain = self.domain(p["domainId"])
        case = self.case(domain, p["caseId"])
        user = p.get("performedBy")
        changed = self.update_case(domain, case, p.get("fields") or [], user)
        detail = events.case_detail(
            "CASE.UPDATED",
            domain,
            case,
            changed=changed,
            performed_by=self._performer(user),
            when=self.clock.now(),
            no_fields_as=self.no_fields_as,
        )
        self._emit(domain, domain.case_arn(case.case_id), detail)
        return {}

    def op_GetCase(self, p: JSON) -> JSON:
        requested = [str(f.get("id")) for f in p.get("fields") or []]
        if not 1 <= len(requested) <= 220:
            raise validation(
                "1 validation error detected: Value at 'fields' failed to satisfy constraint: "
                "Member must have length between 1 and 220"
            )
        domain = self.domain(p["domainId"])
        case = self.case(domain, p["caseId"])
        unknown = domain.unknown_fields(requested)
        if unknown:
            raise validation(f"Fields not found in the domain: {', '.join(unknown)}")
        ids = list(dict.fromkeys(requested))
        key = query_key("GetCase", domain.domain_id, case.case_id, ids)
        chunk, token = page(ids, self.getcase_page_size, p.get("nextToken"), key)
        return {
            "fields": self._field_values(case, chunk),
            "templateId": case.template_id,
            "tags": dict(case.tags),
            "nextToken": token,
        }

    def op_DeleteCase(self, p: JSON) -> JSON:
        domain = self.domain(p["domainId"])
        case = self.case(domain, p["caseId"])
        del domain.cases[case.case_id]
        self.index.record(domain.domain_id, case.case_id, None)
        detail = events.case_detail(
            "CASE.DELETED",
            domain,
            case,
            changed=[],
            performed_by=self._performer(None),
            when=self.clock.now(),
            no_fields_as=self.no_fields_as,
        )
        self._emit(domain, domain.case_arn(case.case_id), detail)
        return {}

    def op_SearchCases(self, p: JSON) -> JSON:
        domain = self.domain(p["domainId"])
        return search_cases(domain, self.index.cases(domain.domain_id), p, self._field_values)

    # -- related items -------------------------------------------------------------------------
    def create_related_item(
        self, domain: Domain, case: Case, kind: str, content: JSON, user: JSON | None
    ) -> RelatedItem:
        key = CONTENT_KEYS[kind]
        if set(content) != {key} or content.get(key) is None:
            raise validation(f"The content must hold exactly the '{key}' member for type {kind}")
        if len(case.related) >= MAX_RELATED_ITEMS:
            raise ApiError("ServiceQuotaExceededException", "A case has at most 200 related items")
        now = self.clock.now()
        item = RelatedItem(self.new_id(), kind, copy.deepcopy(content), now, performed_by=user or None)
        if kind == "Sla":
            if len(case.slas()) >= MAX_SLAS:
                raise ApiError("ServiceQuotaExceededException", "A case has at most 10 SLAs")
            sla = content["sla"].get("slaInputConfiguration")
            if not sla:
                raise validation("sla.slaInputConfiguration is required")
            field_id = sla.get("fieldId")
            if not field_id or field_id not in domain.fields:
                raise validation("The SLA fieldId must name a field of the domain")
            if not sla.get("targetFieldValues"):
                raise validation("The SLA needs targetFieldValues")
            for target in sla["targetFieldValues"]:
                check_value_type(field_id, domain.fields[field_id].type, target)
            item.target_time = sla_target(now, int(sla["targetSlaMinutes"]))
        elif kind == "ConnectCase":
            self.case(domain, content["connectCase"]["caseId"])
        elif kind == "Custom":
            unknown = domain.unknown_fields([str(f["id"]) for f in content["custom"]["fields"]])
            if unknown:
                raise validation(f"Fields not found in the domain: {', '.join(unknown)}")
        case.related[item.related_item_id] = item
        if kind == "Sla":
            case.complete_slas(now)
        self.index.record(domain.domain_id, case.case_id, case)
        return item

    def op_CreateRelatedItem(self, p: JSON) -> JSON:
        domain = self.domain(p["domainId"])
        case = self.case(domain, p["caseId"])
        user = p.get("performedBy")
        item = self.create_related_item(domain, case, p["type"], p["content"], user)
        arn = f"{domain.case_arn(case.case_id)}/related-item/{item.related_item_id}"
        detail = events.related_item_detail(
            domain, case, item, performed_by=self._performer(user), now=self.clock.now()
        )
        self._emit(domain, arn, detail)
        return {"relatedItemId": item.related_item_id, "relatedItemArn": arn}

    def op_SearchRelatedItems(self, p: JSON) -> JSON:
        domain = self.domain(p["domainId"])
        case = self.case(domain, p["caseId"])
        now = self.clock.now()
        filters = p.get("filters") or []
        for spec in filters:
            check_filter(domain, (spec.get("custom") or {}).get("fields"))
        types = field_types(domain)
        items = [
            item
            for item in case.related.values()
            if not filters or any(matches_related(item, f, now, types) for f in filters)
        ]
        key = query_key("SearchRelatedItems", domain.domain_id, case.case_id, filters)
        chunk, token = page(items, p.get("maxResults") or 25, p.get("nextToken"), key)
        return {"relatedItems": [item.wire(now) for item in chunk], "nextToken": token}

    def op_SearchAllRelatedItems(self, p: JSON) -> JSON:
        domain = self.domain(p["domainId"])
        return search_all_related_items(domain, self.index.cases(domain.domain_id), p, self.index.as_of())

    # -- event configuration -------------------------------------------------------------------
    def op_PutCaseEventConfiguration(self, p: JSON) -> JSON:
        domain = self.domain(p["domainId"])
        config = copy.deepcopy(p["eventBridge"])
        case_data = (config.get("includedData") or {}).get("caseData") or {}
        unknown = domain.unknown_fields([str(f.get("id")) for f in case_data.get("fields") or []])
        if unknown:
            raise validation(f"Fields not found in the domain: {', '.join(unknown)}")
        domain.event_config = config
        return {}

    def op_GetCaseEventConfiguration(self, p: JSON) -> JSON:
        domain = self.domain(p["domainId"])
        return {
            "eventBridge": copy.deepcopy(domain.event_config) if domain.event_config else {"enabled": False}
        }


__all__ = ["MAX_RELATED_ITEMS", "MAX_SLAS", "CasesService", "EmptyAs"]
