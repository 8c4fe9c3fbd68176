"""The functions in the real Lambda runtime, against local AWS fakes they reach over HTTP.

The in-process local pipeline runs moto inside its own process, which a function in another process
cannot reach. Here AWS is moto's standalone server (`MotoServer`: its own process, 127.0.0.1) with
the stack's resources created by the moto backend of the local pipeline (the same tables, queues, topic
and subscriber, bus and subscriber rule, schedule group), and Cases is the Cases emulator on 127.0.0.1.
The functions get `AWS_ENDPOINT_URL` (botocore sends every service there) and
`CASEWATCH_CASES_ENDPOINT` (the product's explicit Cases endpoint wins over `AWS_ENDPOINT_URL`).

Each function runs in its own emulator (`EmulatedFunction`), started on its first invocation and kept
for the session. After an invocation the side effects are read back the way the local pipeline reads
them: the topic's SQS subscriber, the bus's, the dead-letter queues, the Cases emulator's GetCase count,
and the SLA changes as the new transitions in the state table's SLA items.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from casewatch.adapters import clients
from casewatch.adapters.system_clock import SystemClock
from casewatch.constants import ENV_CASES_ENDPOINT
from casewatch.settings import Settings
from casewatch.topology import EVENT_ROUTED, FunctionSpec, domain_arn, function_named
from casewatch_dev.clock import VirtualClock
from casewatch_dev.emulator import CasesEmulator
from casewatch_dev.lambda_runtime.moto_server import MotoServer
from casewatch_dev.lambda_runtime.rie import EmulatedFunction, Response
from casewatch_dev.lambda_runtime.template import (
    FunctionDefinition,
    local_resources,
    python_version,
    synthesize,
)
from casewatch_dev.lambda_runtime.toolchain import (
    Emulator,
    RuntimePython,
    find_emulator,
    host_arch,
    host_layer,
    runtime_environment,
)
from casewatch_dev.pipeline import ACCOUNT, REGION, STACK, LocalResources
from casewatch_dev.pipeline.core import (
    bus_summary,
    dead_letter_summary,
    notification_summary,
    pattern_matcher,
    seed_domain,
)
from casewatch_dev.pipeline.environment import forget_cached, local_environment
from casewatch_dev.pipeline.moto_backend import MotoBackend
from casewatch_dev.sla_items import SlaItem, sla_items

ENV_LOG_LEVEL = "CASEWATCH_LOCAL_LOG_LEVEL"  # set: the functions log at it, and their output goes to stderr
CREDENTIALS = {  # the execution role's credentials, as Lambda sets them (dummy: nothing reaches AWS)
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
}


@contextmanager
def _environ(values: dict[str, str]) -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def layer_paths(environment: dict[str, str], layers: tuple[Path, ...]) -> dict[str, str]:
    """Environment values naming a file under Lambda's `/opt` (e.g. the settings layer's
    `/opt/casewatch/settings.json`), pointed at that file in the layer directory that holds it here."""
    found: dict[str, str] = {}
    for name, value in environment.items():
        if value.startswith("/opt/"):
            relative = value.removeprefix("/opt/")
            for layer in layers:
                if (layer / relative).exists():
                    found[name] = str(layer / relative)
                    break
    return found


class RuntimeSession:
    """`with RuntimeSession(settings, config) as session: session.invoke("case-changed", event)`."""

    def __init__(
        self, settings: Settings, config: Path, *, cases_state: dict[str, Any] | None = None
    ) -> None:
        self.settings = settings
        self.config = config
        self._cases_state = cases_state
        self._stack = ExitStack()
        self._functions: dict[str, tuple[FunctionDefinition, EmulatedFunction]] = {}
        self.emulator: CasesEmulator
        self.backend: MotoBackend
        self.runtime: RuntimePython
        self.assembly: Path
        self.aws_url: str
        self.resources: LocalResources
        self._emulator_binary: Emulator

    # -- lifecycle -----------------------------------------------------------------------------
    def __enter__(self) -> Self:
        try:
            self._start()
        except BaseException:
            self._stack.close()
            raise
        return self

    def _start(self) -> None:
        # What is missing here fails first, before anything starts.
        self._emulator_binary = find_emulator()
        self.assembly = synthesize(self.config)
        self.runtime = runtime_environment(python_version(self.assembly))

        self._stack.enter_context(local_environment())
        self.aws_url = self._stack.enter_context(MotoServer()).url
        # This process reads the side effects through the same endpoint (never a real account).
        self._stack.enter_context(_environ({"AWS_ENDPOINT_URL": self.aws_url}))
        forget_cached()
        self._stack.callback(forget_cached)
        self.emulator = self._stack.enter_context(
            CasesEmulator(clock=SystemClock(), account_id=ACCOUNT, region=REGION)
        )
        if self._cases_state is not None:
            self.emulator.load_state(self._cases_state)
        elif self.settings.domain_id not in self.emulator.domain_ids():
            seed_domain(self.emulator, self.settings)
        self.resources = local_resources(self.assembly)
        self.backend = MotoBackend(self.settings, VirtualClock(), self.resources, self.emulator.url)

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stack.close()

    def function(self, spec: FunctionSpec) -> tuple[FunctionDefinition, EmulatedFunction]:
        """The function as synthesized, in its emulator (started on first use, kept for the session)."""
        if spec.name not in self._functions:
            definition = FunctionDefinition.of(self.assembly, spec, self.resources, self._queue_url)
            layers = tuple(host_layer(layer, self.runtime) for layer in definition.layer_dirs)
            level = os.environ.get(ENV_LOG_LEVEL)
            environment = {
                **CREDENTIALS,
                "AWS_REGION": REGION,
                "AWS_DEFAULT_REGION": REGION,
                "AWS_ENDPOINT_URL": self.aws_url,
                ENV_CASES_ENDPOINT: self.emulator.url,
                # No shared config or credentials files: the function sees only its environment.
                "AWS_CONFIG_FILE": os.devnull,
                "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
                **({"AWS_LAMBDA_LOG_LEVEL": level.upper()} if level else {}),
                **layer_paths(definition.environment, layers),
            }
            running = EmulatedFunction(
                self._emulator_binary,
                self.runtime,
                definition,
                name=f"{STACK}-{spec.name}",
                layer_dirs=layers,
                environment=environment,
            )
            self._stack.enter_context(running)
            self._functions[spec.name] = (definition, running)
        return self._functions[spec.name]

    def _queue_url(self, name: str) -> str:
        return clients.sqs_client().get_queue_url(QueueName=name)["QueueUrl"]

    # -- invoking ------------------------------------------------------------------------------
    def prime(self, event: dict[str, Any]) -> None:
        """Deliver an earlier event to every function whose rule matches it (its effects are not reported)."""
        domain = domain_arn(self.settings.domain_id, partition="aws", region=REGION, account=ACCOUNT)
        for spec in EVENT_ROUTED:
            pattern = spec.event_pattern(domain)
            if pattern is not None and pattern_matcher(pattern)(event):
                response = self.function(spec)[1].invoke(event)
                if response.error is not None:
                    print(
                        f"casewatch: priming {spec.name} with event {event.get('id')} failed: "
                        f"{response.error['errorType']}: {response.error['errorMessage']}",
                        file=sys.stderr,
                    )
        self.backend.take_notifications()
        self.backend.take_bus_events()
        self.backend.take_dead_letters()
        self.backend.take_failures()
        self.emulator.reset_counters()

    def invoke(self, name: str, event: dict[str, Any]) -> dict[str, Any]:
        """Invoke one function once; what it returned, every side effect, and its REPORT figures."""
        spec = function_named(name)
        before = {(i.case_id, i.state.key): i for i in sla_items(self.backend.case_store())}
        definition, running = self.function(spec)
        self.emulator.reset_counters()
        response = running.invoke(event)
        if os.environ.get(ENV_LOG_LEVEL):
            print("\n".join(response.output), file=sys.stderr)
        elif response.error is not None:
            print("\n".join(response.output[-40:]), file=sys.stderr)
        return self.describe(definition, response, before)

    def describe(
        self, definition: FunctionDefinition, response: Response, before: dict[tuple[str, str], SlaItem]
    ) -> dict[str, Any]:
        payload = response.payload if isinstance(response.payload, dict) else {}
        reason: str | None = None
        if response.error is not None:
            outcome = "failed"  # one synchronous invocation: no retries, no failure destination
            reason = f"{response.error['errorType']}: {response.error['errorMessage']}"[:500]
        else:
            outcome = str(payload.get("outcome", "handled"))
            reason = str(payload["reason"]) if payload.get("reason") else None
        dead = self.backend.take_dead_letters() + self.backend.take_failures()
        return {
            "function": definition.spec.name,
            "outcome": outcome,
            "reason": reason,
            "attempts": 1,
            "getcase_calls": self.emulator.calls["GetCase"],
            "sla_changes": sla_changes(before, sla_items(self.backend.case_store())),
            "notifications": [notification_summary(m) for m in self.backend.take_notifications()],
            "bus_events": [bus_summary(m) for m in self.backend.take_bus_events()],
            "dead_letters": [dead_letter_summary(m) for m in dead],
            "runtime": {
                **response.report.as_dict(),
                "handler": definition.handler,
                "timeout_s": definition.timeout_s,
                "python": self.runtime.version,
                "architecture": f"{host_arch()} (AWS: {definition.architecture})",
                "awslambdaric": self.runtime.packages.get("awslambdaric"),
                "boto3": self.runtime.packages.get("boto3"),
                "emulator": f"aws-lambda-rie ({self._emulator_binary.origin})",
            },
        }


def sla_changes(before: dict[tuple[str, str], SlaItem], after: list[SlaItem]) -> list[dict[str, Any]]:
    """The transitions the state table's SLA items gained (their history's new entries)."""
    changes = []
    for item in after:
        seen = before.get((item.case_id, item.state.key))
        known = len(seen.state.history) if seen is not None else 0
        if seen is not None and item.state.history[:known] != seen.state.history:
            known = 0  # rewritten, not extended: report all of it
        changes += [
            {
                "case": item.case_id,
                "sla": item.state.key,
                "status": t.status.value,
                "at": t.at.isoformat(),
                "target_time": t.target_time.isoformat(),
            }
            for t in item.state.history[known:]
        ]
    return sorted(changes, key=lambda c: (c["at"], c["case"], c["sla"]))


def invoke_in_runtime(
    settings: Settings,
    config: Path,
    function: str,
    event: dict[str, Any],
    *,
    state: dict[str, Any] | None,
    primes: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """`casewatch invoke --runtime-emulator`: prime, then invoke `function` on `event` once."""
    with RuntimeSession(settings, config, cases_state=state) as session:
        for prime in primes or []:
            session.prime(prime)
        return session.invoke(function, event)


def render_runtime(runtime: dict[str, Any]) -> str:
    """The runtime lines of `casewatch invoke --runtime-emulator` (after the usual ones)."""
    init = f"Init Duration: {runtime['init_duration_ms']:.2f} ms  " if "init_duration_ms" in runtime else ""
    used = runtime.get("max_memory_used_mb")
    return "\n".join(
        [
            f"  runtime: python {runtime['python']} on {runtime['architecture']}, awslambdaric "
            f"{runtime['awslambdaric']}, boto3 {runtime['boto3']}, {runtime['emulator']}",
            f"  REPORT {init}Duration: {runtime['duration_ms']:.2f} ms  Billed Duration: "
            f"{runtime['billed_duration_ms']} ms  Memory Size: {runtime['memory_size_mb']} MB  "
            f"Max Memory Used: {used if used is not None else 'n/a'} MB",
        ]
    )


__all__ = ["RuntimeSession", "invoke_in_runtime", "render_runtime", "sla_changes"]
