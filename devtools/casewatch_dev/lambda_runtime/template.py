"""The synthesized stack as the emulated runtime needs it: each function's handler, memory, timeout,
environment, code asset and layer directories, straight from the template and the cloud assembly; and
each function's execution role (`RoleDefinition`: its policies), for the local pipeline's IAM.

`synthesize()` runs the CDK app (as `cdk synth` does, cdk-nag off) into `.build/rie/synth-<key>`, where
the key hashes everything synthesis reads (infra/, functions/, the cdk.json context, uv.lock): an unchanged
tree reuses it, a change synthesizes anew. `FunctionDefinition.of()` reads one function from it and
resolves the CloudFormation references of its environment (`Ref`, `Fn::GetAtt`, `Fn::Join`, `Fn::Sub`,
pseudo parameters) to the local pipeline's resources (`LOCAL_NAMES`): a reference to a resource the
local pipeline does not create is an error that names it. `RoleDefinition.of()` reads a function's role
and the policies attached to it, resolved the same way.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from casewatch.topology import FunctionSpec
from casewatch_dev.lambda_runtime.toolchain import CACHE, REPO_ROOT, ToolchainError
from casewatch_dev.pipeline.context import ACCOUNT, REGION, LocalResources

SYNTH_INPUTS = ("infra", "functions")
SYNTH_CONTEXT = {"aws:cdk:enable-asset-metadata": True, "aws:cdk:enable-path-metadata": True}
KEEP_SYNTHS = 2  # older cached cloud assemblies are removed

# The stack's resources a function may reference (construct path under the stack) -> the attribute of
# `LocalResources` that names (or, for the role, is the ARN of) the local pipeline's stand-in.
LOCAL_NAMES: dict[str, str] = {
    "SlaStore/CaseTable": "state_table",
    "SlaStore/IdempotencyTable": "idempotency_table",
    "SlaStore/SchedulerRole": "scheduler_role_arn",
    "SlaStore/ScheduleGroup": "schedule_group",
    "Notifications/Topic": "topic_name",
    "Notifications/EnrichedBus": "bus_name",
    "DeadLetters/InvalidEventsQueue": "invalid_queue",
    "DeadLetters/FailureQueue": "failure_queue",
    "Notifications/Key": "topic_key",
}
# Where a resource's physical name is fixed in the template (the stack names it), that name is kept.
NAME_PROPERTIES = ("TableName", "TopicName", "QueueName", "Name")
PSEUDO = {"AWS::Partition": "aws", "AWS::Region": REGION, "AWS::AccountId": ACCOUNT, "AWS::URLSuffix": ""}


class TemplateError(ToolchainError):
    """The synthesized template holds something the emulated runtime cannot stand in for."""


# -- synthesis -----------------------------------------------------------------------------------
def _inputs_key(context: Mapping[str, Any]) -> str:
    digest = hashlib.sha256(json.dumps(context, sort_keys=True).encode())
    for top in SYNTH_INPUTS:
        for path in sorted((REPO_ROOT / top).rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc":
                digest.update(str(path.relative_to(REPO_ROOT)).encode() + b"\0" + path.read_bytes())
    digest.update((REPO_ROOT / "uv.lock").read_bytes())
    return digest.hexdigest()[:16]


def synthesize(config: Path) -> Path:
    """The cloud assembly of the stack for `config`'s (cdk.json) context, synthesized or from the cache."""
    context = {**json.loads(config.read_text()).get("context", {}), **SYNTH_CONTEXT}
    outdir = CACHE / f"synth-{_inputs_key(context)}"
    if (outdir / "manifest.json").is_file():
        return outdir
    with _one_synthesis():  # tests and a CLI may start together: one synthesizes, the others reuse it
        if (outdir / "manifest.json").is_file():
            return outdir
        return _synthesize(context, outdir)


@contextlib.contextmanager
def _one_synthesis() -> Iterator[None]:
    CACHE.mkdir(parents=True, exist_ok=True)
    with (CACHE / ".synth.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _synthesize(context: dict[str, Any], outdir: Path) -> Path:
    os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
    _infra_importable()
    from infra.app import build_app

    print(f"casewatch: synthesizing the stack into {outdir.relative_to(REPO_ROOT)} ...", file=sys.stderr)
    CACHE.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f"{outdir.name}.", dir=CACHE))
    try:
        app, _ = build_app(context, outdir=str(staging), nag=False)
        app.synth()
        _template(staging)  # one stack, readable
        try:
            os.replace(staging, outdir)  # atomic: a concurrent run sees all of it or nothing
        except OSError:
            if not (outdir / "manifest.json").is_file():
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    _prune(outdir)
    return outdir


def _prune(keep: Path) -> None:
    synths = sorted(CACHE.glob("synth-*"), key=lambda p: p.stat().st_mtime, reverse=True)
    for old in [p for p in synths if p != keep and p.is_dir() and "." not in p.name][KEEP_SYNTHS - 1 :]:
        shutil.rmtree(old, ignore_errors=True)


def _infra_importable() -> None:
    """The CDK app (`infra`) is imported from the checkout, as `cdk synth` runs it (the installed
    packages are the product and the dev tooling only)."""
    if not (REPO_ROOT / "infra" / "app.py").is_file():
        raise TemplateError(f"{REPO_ROOT}: not a casewatch checkout (no infra/app.py)")
    if str(REPO_ROOT) not in sys.path:
        sys.path.append(str(REPO_ROOT))


def _template(assembly: Path) -> tuple[str, dict[str, Any]]:
    """(stack name, template) of the assembly's one stack, from its manifest (no CDK import: fast)."""
    manifest = json.loads((assembly / "manifest.json").read_text())
    stacks = [
        (name, artifact["properties"]["templateFile"])
        for name, artifact in manifest.get("artifacts", {}).items()
        if artifact.get("type") == "aws:cloudformation:stack"
    ]
    if len(stacks) != 1:
        raise TemplateError(f"{assembly}: expected one stack, found {[name for name, _ in stacks]}")
    name, template_file = stacks[0]
    template: dict[str, Any] = json.loads((assembly / template_file).read_text())
    return str(name), template


def stack_template(assembly: Path) -> dict[str, Any]:
    """The template of the assembly's one stack."""
    return _template(assembly)[1]


def python_version(assembly: Path) -> str:
    """The Python version of the stack's functions (`python3.13` -> `3.13`)."""
    _, template = _template(assembly)
    runtimes = {
        r["Properties"]["Runtime"]
        for r in template["Resources"].values()
        if r["Type"] == "AWS::Lambda::Function"
        and str(r["Properties"].get("Runtime", "")).startswith("python")
    }
    if len(runtimes) != 1:
        raise TemplateError(f"expected one Python runtime for the functions, found {sorted(runtimes)}")
    return str(runtimes.pop()).removeprefix("python")


def local_resources(assembly: Path) -> LocalResources:
    """The local pipeline's resource names, but the names the stack fixes itself (e.g. the schedule group,
    which the functions' environment carries as a literal) stay as the template has them."""
    stack, template = _template(assembly)
    resolver = _Resolver(template, stack, LocalResources(), lambda name: name)
    fixed: dict[str, str] = {}
    for path, attribute in LOCAL_NAMES.items():
        if attribute not in LocalResources.__dataclass_fields__:
            continue
        with contextlib.suppress(TemplateError):
            _, resource = resolver.by_path(path)
            for name in (resource["Properties"].get(p) for p in NAME_PROPERTIES):
                if isinstance(name, str):
                    fixed[attribute] = name
    return replace(LocalResources(), **fixed)


# -- one function ---------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class FunctionDefinition:
    """One function as the template defines it, with its environment resolved to local resources."""

    spec: FunctionSpec
    logical_id: str
    handler: str
    runtime: str  # e.g. python3.13
    architecture: str  # e.g. arm64
    memory_mb: int
    timeout_s: int
    environment: dict[str, str]
    code_dir: Path  # the function's asset directory (Lambda's /var/task)
    layer_dirs: tuple[Path, ...]  # the layers' asset directories (extracted into Lambda's /opt)
    log_format: str | None  # LoggingConfig: JSON | Text
    log_level: str | None  # LoggingConfig.ApplicationLogLevel

    @classmethod
    def of(
        cls, assembly: Path, spec: FunctionSpec, resources: LocalResources, queue_url: Callable[[str], str]
    ) -> FunctionDefinition:
        stack, template = _template(assembly)
        resolver = _Resolver(template, stack, resources, queue_url)
        logical_id, resource = resolver.by_path(f"Functions/{spec.construct_id}")
        props = resource["Properties"]
        variables = props.get("Environment", {}).get("Variables", {})
        logging = props.get("LoggingConfig", {})
        layers = tuple(
            assembly / resolver.asset_path(resolver.logical_id(ref)) for ref in props.get("Layers", [])
        )
        return cls(
            spec=spec,
            logical_id=logical_id,
            handler=props["Handler"],
            runtime=props["Runtime"],
            architecture=(props.get("Architectures") or ["x86_64"])[0],
            memory_mb=int(props.get("MemorySize", 128)),
            timeout_s=int(props.get("Timeout", 3)),
            environment={name: resolver.value(value, name) for name, value in variables.items()},
            code_dir=assembly / resolver.asset_path(logical_id),
            layer_dirs=layers,
            log_format=logging.get("LogFormat"),
            log_level=logging.get("ApplicationLogLevel"),
        )


@dataclass(frozen=True, slots=True)
class RoleDefinition:
    """A function's execution role as the template defines it: the policies attached to it (the role's own
    `Policies`, and every `AWS::IAM::Policy`/`AWS::IAM::ManagedPolicy` naming it in `Roles`), resolved to
    local resources, and the ARNs of the AWS managed policies it carries."""

    spec: FunctionSpec
    logical_id: str
    trust_policy: dict[str, Any]
    policies: dict[str, dict[str, Any]]  # policy name -> document
    managed_policy_arns: tuple[str, ...]

    @classmethod
    def of(
        cls, assembly: Path, spec: FunctionSpec, resources: LocalResources, queue_url: Callable[[str], str]
    ) -> RoleDefinition:
        stack, template = _template(assembly)
        return cls.from_template(template, stack, spec, resources, queue_url)

    @classmethod
    def from_template(
        cls,
        template: dict[str, Any],
        stack: str,
        spec: FunctionSpec,
        resources: LocalResources,
        queue_url: Callable[[str], str],
    ) -> RoleDefinition:
        resolver = _Resolver(template, stack, resources, queue_url)
        _, function = resolver.by_path(f"Functions/{spec.construct_id}")
        role = function["Properties"].get("Role")
        if not (isinstance(role, dict) and isinstance(role.get("Fn::GetAtt"), list)):
            raise TemplateError(f"{spec.construct_id}: expected its Role as Fn::GetAtt of a role: {role!r}")
        role_id = str(role["Fn::GetAtt"][0])
        props = resolver.resources[role_id]["Properties"]
        where = f"the {spec.name} role"
        policies = {
            str(p["PolicyName"]): resolver.document(p["PolicyDocument"], where)
            for p in props.get("Policies", [])
        }
        for logical_id, resource in resolver.resources.items():
            if resource["Type"] not in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
                continue
            attached = resource["Properties"].get("Roles", [])
            if {"Ref": role_id} in attached:
                name = str(resource["Properties"].get("PolicyName") or logical_id)
                policies[name] = resolver.document(resource["Properties"]["PolicyDocument"], where)
        return cls(
            spec=spec,
            logical_id=role_id,
            trust_policy=resolver.document(props.get("AssumeRolePolicyDocument", {}), where),
            policies=policies,
            managed_policy_arns=tuple(resolver.value(a, where) for a in props.get("ManagedPolicyArns", [])),
        )


class _Resolver:
    """CloudFormation intrinsic functions over the local pipeline's names."""

    def __init__(
        self,
        template: dict[str, Any],
        stack: str,
        resources: LocalResources,
        queue_url: Callable[[str], str],
    ) -> None:
        self.resources: dict[str, dict[str, Any]] = template["Resources"]
        self.stack = stack
        self.local = resources
        self.queue_url = queue_url

    def by_path(self, path: str) -> tuple[str, dict[str, Any]]:
        wanted = {f"{self.stack}/{path}", f"{self.stack}/{path}/Resource"}
        found = [
            (k, r) for k, r in self.resources.items() if r.get("Metadata", {}).get("aws:cdk:path") in wanted
        ]
        if len(found) != 1:
            raise TemplateError(f"the template has no single resource at {self.stack}/{path}")
        return found[0]

    def logical_id(self, value: Any) -> str:
        if isinstance(value, dict) and set(value) == {"Ref"} and value["Ref"] in self.resources:
            return str(value["Ref"])
        raise TemplateError(f"expected a reference to a resource, got {value!r}")

    def asset_path(self, logical_id: str) -> str:
        metadata = self.resources[logical_id].get("Metadata", {})
        if "aws:asset:path" not in metadata:
            raise TemplateError(f"{logical_id} has no aws:asset:path (synthesized without asset metadata?)")
        return str(metadata["aws:asset:path"])

    def value(self, value: Any, where: str) -> str:
        if isinstance(value, str | int | float):
            return str(value)
        if isinstance(value, dict) and len(value) == 1:
            ((function, argument),) = value.items()
            if function == "Ref":
                return self._attribute(argument, None, where)
            if function == "Fn::GetAtt":
                name, attribute = argument if isinstance(argument, list) else argument.split(".", 1)
                return self._attribute(name, attribute, where)
            if function == "Fn::Join":
                separator, parts = argument
                return str(separator).join(self.value(part, where) for part in parts)
            if function == "Fn::Sub" and isinstance(argument, str):
                return re.sub(r"\$\{([^}]+)\}", lambda m: self._sub(m.group(1), where), argument)
        raise TemplateError(f"{where}: cannot resolve {json.dumps(value)} locally")

    def document(self, value: Any, where: str) -> Any:
        """A JSON document (e.g. a policy) with every intrinsic function in it resolved."""
        if isinstance(value, dict):
            if len(value) == 1 and (next(iter(value)) == "Ref" or next(iter(value)).startswith("Fn::")):
                return self.value(value, where)
            return {key: self.document(item, where) for key, item in value.items()}
        if isinstance(value, list):
            return [self.document(item, where) for item in value]
        return value

    def _sub(self, name: str, where: str) -> str:
        logical, _, attribute = name.partition(".")
        return self._attribute(logical, attribute or None, where)

    def _attribute(self, logical_id: str, attribute: str | None, where: str) -> str:
        if logical_id in PSEUDO:
            return PSEUDO[logical_id]
        resource = self.resources.get(logical_id)
        if resource is None:
            raise TemplateError(f"{where}: {logical_id} is not in the template")
        path = str(resource.get("Metadata", {}).get("aws:cdk:path", logical_id))
        construct = path.removeprefix(f"{self.stack}/").removesuffix("/Resource")
        if construct not in LOCAL_NAMES:
            raise TemplateError(
                f"{where} references {path} ({resource['Type']}), which the local pipeline does not create: "
                "add it to LOCAL_NAMES in casewatch_dev/lambda_runtime/template.py"
            )
        local = str(getattr(self.local, LOCAL_NAMES[construct]))
        name = local.rsplit("/", 1)[1] if local.startswith("arn:") else local
        return _local_value(resource["Type"], name, attribute, self.queue_url)


def _local_value(cfn_type: str, name: str, attribute: str | None, queue_url: Callable[[str], str]) -> str:
    """What `Ref` (attribute None) or `Fn::GetAtt` returns for a resource of `cfn_type` named `name`."""
    region_account = f"{REGION}:{ACCOUNT}"
    arns = {
        "AWS::DynamoDB::Table": f"arn:aws:dynamodb:{region_account}:table/{name}",
        "AWS::SNS::Topic": f"arn:aws:sns:{region_account}:{name}",
        "AWS::SQS::Queue": f"arn:aws:sqs:{region_account}:{name}",
        "AWS::Events::EventBus": f"arn:aws:events:{region_account}:event-bus/{name}",
        "AWS::IAM::Role": f"arn:aws:iam::{ACCOUNT}:role/{name}",
        "AWS::Scheduler::ScheduleGroup": f"arn:aws:scheduler:{region_account}:schedule-group/{name}",
        "AWS::KMS::Key": f"arn:aws:kms:{region_account}:key/{name}",
    }
    if cfn_type not in arns:
        raise TemplateError(f"no local stand-in for a {cfn_type}")
    refs = {"AWS::SNS::Topic": arns[cfn_type]}
    if cfn_type == "AWS::SQS::Queue":
        refs[cfn_type] = queue_url(name)
    attributes = {
        None: refs.get(cfn_type, name),
        "Arn": arns[cfn_type],
        "TopicArn": arns[cfn_type],
        "TopicName": name,
        "QueueName": name,
        "QueueUrl": refs.get(cfn_type, name),
        "Name": name,
    }
    if attribute not in attributes:
        raise TemplateError(f"no local stand-in for {cfn_type}.{attribute}")
    return attributes[attribute]


__all__ = [
    "LOCAL_NAMES",
    "FunctionDefinition",
    "RoleDefinition",
    "TemplateError",
    "local_resources",
    "python_version",
    "stack_template",
    "synthesize",
]
