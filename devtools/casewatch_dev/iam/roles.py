"""Each function's execution role, from the synthesized stack, resolved to the local pipeline's resources.

`synthesized_roles(domain_id)` synthesizes the CDK app from the checkout's cdk.json (or reuses the cloud
assembly cached under `.build/rie/`, keyed by everything synthesis reads: infra/, functions/, the cdk.json
context, uv.lock; `casewatch_dev.lambda_runtime.template`) and reads each function's role with the same
resolver the runtime emulator uses. The roles' policies depend on the settings only through `domain_id`
(the Cases ARNs; tests/infra checks it on a synthesis with other settings), so one synthesis serves any
settings: the Cases domain is rebound to the pipeline's (`for_domain`).

`FunctionRoles.without(...)` takes a grant away, to see what a missing permission does.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from casewatch.topology import FUNCTIONS, function_named
from casewatch_dev.iam.policy import Policy

if TYPE_CHECKING:
    from casewatch_dev.pipeline.context import LocalResources


@dataclass(frozen=True)
class FunctionRole:
    """One function's role: the local role name, its trust policy, its policies (documents with local
    names), and the AWS managed policies it carries (ARNs)."""

    function: str
    role_name: str
    trust_policy: dict[str, Any]
    documents: dict[str, dict[str, Any]]
    managed_policy_arns: tuple[str, ...] = ()

    @property
    def policies(self) -> tuple[Policy, ...]:
        return tuple(Policy.parse(name, document) for name, document in sorted(self.documents.items()))

    def grants(self) -> Iterator[tuple[str, str]]:
        """Every (action, resource) an Allow statement names (for reports and tests)."""
        for document in self.documents.values():
            for statement in _statements(document):
                if statement.get("Effect") == "Allow":
                    for action in _as_list(statement.get("Action")):
                        for resource in _as_list(statement.get("Resource")):
                            yield action, resource

    def without(self, action: str, resource: str | None = None) -> FunctionRole:
        """This role without `action` (on `resource` only, if given): taken out of every Allow statement
        that names it; a statement left with no action is dropped."""
        documents = {}
        for name, document in self.documents.items():
            kept: list[dict[str, Any]] = []
            for statement in _statements(document):
                actions = _as_list(statement.get("Action"))
                resources = _as_list(statement.get("Resource"))
                named = [a for a in actions if a.lower() == action.lower()]
                elsewhere = resource is not None and resource not in resources
                if statement.get("Effect") != "Allow" or not named or elsewhere:
                    kept.append(statement)
                    continue
                rest = [a for a in actions if a not in named]
                if rest:
                    kept.append({**statement, "Action": rest})
                others = [r for r in resources if r != resource] if resource else []
                if others:  # the action stays granted on the statement's other resources
                    kept.append({**statement, "Action": named, "Resource": others})
            documents[name] = {**document, "Statement": kept}
        return replace(self, documents=documents)


@dataclass(frozen=True)
class FunctionRoles:
    """The four functions' roles, and the local resource names their policies were resolved to."""

    roles: Mapping[str, FunctionRole]
    resources: LocalResources

    def __getitem__(self, function: str) -> FunctionRole:
        return self.roles[function_named(function).name]

    def without(self, function: str, action: str, resource: str | None = None) -> FunctionRoles:
        """These roles, but `function`'s without `action` (on `resource` only, if given)."""
        name = function_named(function).name
        return replace(self, roles={**self.roles, name: self.roles[name].without(action, resource)})

    def for_domain(self, synthesized: str, domain_id: str) -> FunctionRoles:
        """The roles with the Cases domain `synthesized` (the synthesis's) replaced by `domain_id`."""
        if synthesized == domain_id:
            return self
        pattern = re.compile(rf"^(arn:[^:]+:cases:[^:]*:[^:]*:domain/){re.escape(synthesized)}(?=/|$)")

        def rebind(value: Any) -> Any:
            if isinstance(value, str):
                return pattern.sub(lambda m: m.group(1) + domain_id, value)
            if isinstance(value, list):
                return [rebind(v) for v in value]
            return value

        roles = {}
        for name, role in self.roles.items():
            documents = copy.deepcopy(role.documents)
            for document in documents.values():
                for statement in _statements(document):
                    for key in ("Resource", "NotResource"):
                        if key in statement:
                            statement[key] = rebind(statement[key])
            roles[name] = replace(role, documents=documents)
        return replace(self, roles=roles)


def _statements(document: dict[str, Any]) -> list[dict[str, Any]]:
    statements = document.get("Statement", [])
    if isinstance(statements, dict):
        document["Statement"] = statements = [statements]
    return list(statements) if isinstance(statements, list) else []


def _as_list(value: Any) -> list[str]:
    if value is None:
        return []
    return [str(v) for v in value] if isinstance(value, list) else [str(value)]


def roles_from_assembly(assembly: Path) -> tuple[FunctionRoles, str]:
    """The functions' roles in a synthesized cloud assembly, and the Cases domain it was synthesized for."""
    from casewatch_dev.lambda_runtime.template import RoleDefinition, local_resources, stack_template

    resources = local_resources(assembly)
    roles = {}
    for spec in FUNCTIONS:
        definition = RoleDefinition.of(assembly, spec, resources, resources.queue_url)
        roles[spec.name] = FunctionRole(
            function=spec.name,
            role_name=resources.role_name(spec),
            trust_policy=definition.trust_policy,
            documents=definition.policies,
            managed_policy_arns=definition.managed_policy_arns,
        )
    return FunctionRoles(roles, resources), _synthesized_domain(stack_template(assembly))


def _synthesized_domain(template: dict[str, Any]) -> str:
    """The domain the stack was synthesized for: the event configuration custom resource's."""
    found = {
        str(json.loads(r["Properties"]["Configuration"])["domainId"])
        for r in template["Resources"].values()
        if r["Type"] == "Custom::CaseEventConfiguration"
    }
    if len(found) != 1:
        raise ValueError(f"expected one Cases domain in the template, found {sorted(found)}")
    return found.pop()


def synthesized_roles(domain_id: str, config: Path | None = None) -> FunctionRoles:
    """The functions' roles for the Cases domain `domain_id`, from the stack synthesized with `config`
    (default: the checkout's cdk.json; cached, see the module's docstring)."""
    from casewatch_dev.lambda_runtime.template import synthesize
    from casewatch_dev.lambda_runtime.toolchain import REPO_ROOT

    roles, synthesized = roles_from_assembly(synthesize(config or REPO_ROOT / "cdk.json"))
    return roles.for_domain(synthesized, domain_id)


__all__ = ["FunctionRole", "FunctionRoles", "roles_from_assembly", "synthesized_roles"]
