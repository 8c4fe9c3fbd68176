"""Who is calling, under which policies, and every request that was denied.

`AccessControl` maps the access key ids the functions sign their requests with to `Principal`s (a function,
its role session's ARN and its role's policies). Both enforcement points use it: moto's request path for
the AWS services (`casewatch_dev.iam.moto_enforcement`) and the Cases emulator. Each denial is recorded
(`denials`), so the local pipeline can tell which invocation was denied what, whatever the function's code
then did with the error (retried it, parked the event, or failed).
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from casewatch_dev.iam.policy import Decision, Policy, evaluate


@dataclass(frozen=True, slots=True)
class Principal:
    """A function's identity: the session of its role."""

    function: str
    arn: str  # arn:aws:sts::<account>:assumed-role/<role>/<session>
    policies: tuple[Policy, ...]


@dataclass(frozen=True, slots=True)
class Denial:
    """One request refused: by whom (a function, or an unknown caller), what, on which resource."""

    caller: str
    action: str
    resource: str
    decision: Decision

    def __str__(self) -> str:
        return f"{self.caller}: {self.action} on {self.resource} ({self.decision.value})"

    def message(self, principal_arn: str) -> str:
        """The message AWS gives with an AccessDenied error."""
        why = (
            "with an explicit deny in an identity-based policy"
            if self.decision is Decision.EXPLICIT_DENY
            else f"because no identity-based policy allows the {self.action} action"
        )
        return (
            f"User: {principal_arn} is not authorized to perform: {self.action} on resource: "
            f"{self.resource} {why}"
        )


class AccessControl:
    """The access keys of the functions, their principals, and the denials so far (thread-safe: the Cases
    emulator answers on its own thread)."""

    def __init__(self) -> None:
        self._principals: dict[str, Principal] = {}
        self._denials: list[Denial] = []
        self._lock = threading.Lock()

    def register(self, access_key_id: str, principal: Principal) -> None:
        with self._lock:
            self._principals[access_key_id] = principal

    def principal(self, access_key_id: str | None) -> Principal | None:
        with self._lock:
            return self._principals.get(access_key_id or "")

    def caller(self, access_key_id: str | None) -> str:
        """The function of a key, else how to name an unknown caller in a denial."""
        principal = self.principal(access_key_id)
        return principal.function if principal else f"unknown caller ({access_key_id or 'unsigned'})"

    def authorize(
        self,
        access_key_id: str | None,
        action: str,
        resources: Iterable[str],
        context: Mapping[str, str] | None = None,
    ) -> Denial | None:
        """Evaluate `action` on every resource the request authorizes (all must be allowed) with the
        caller's policies; a denial is recorded and returned. An unknown caller is denied (fail closed)."""
        principal = self.principal(access_key_id)
        for resource in resources:
            decision = (
                evaluate(principal.policies, action, resource, context)
                if principal is not None
                else Decision.IMPLICIT_DENY
            )
            if not decision.allowed:
                return self.record(Denial(self.caller(access_key_id), action, resource, decision))
        return None

    def record(self, denial: Denial) -> Denial:
        with self._lock:
            self._denials.append(denial)
        return denial

    @property
    def denials(self) -> list[Denial]:
        with self._lock:
            return list(self._denials)

    def mark(self) -> int:
        """A position in the denials, for `since`."""
        with self._lock:
            return len(self._denials)

    def since(self, mark: int) -> list[Denial]:
        with self._lock:
            return self._denials[mark:]


__all__ = ["AccessControl", "Denial", "Principal"]
