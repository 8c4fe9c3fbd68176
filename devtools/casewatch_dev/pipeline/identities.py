"""Who each function is in the local pipeline: its synthesized role, and what enforces the role's policies.

Each function gets a boto3 session of its own credentials; while the pipeline invokes it (and while
Lambda's failure destination delivers for it), the product's clients come from that session
(`casewatch.adapters.clients.session_scope`), so every request the function makes is signed as the function:

- `moto` backend (`IAM: aws+cases`): the role exists in moto's IAM (its policies from the synthesized
  template), the credentials come from `sts:AssumeRole` of it, and moto's access control is on while the
  function runs: every DynamoDB, SNS, EventBridge, Scheduler and SQS request is authorized by moto
  (`casewatch_dev.iam.moto_enforcement`); every Cases request by the Cases emulator, with the same policies.
- `memory` backend (`IAM: cases`): AWS is in memory (port fakes and fake clients): nothing there can be
  authorized. The function's Cases requests are signed with credentials of its own and the Cases emulator
  authorizes them with the role's policies.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import TYPE_CHECKING, Literal

import boto3

from casewatch.adapters.clients import session_scope
from casewatch_dev.iam import sessions
from casewatch_dev.iam.access import AccessControl, Principal
from casewatch_dev.iam.roles import FunctionRoles
from casewatch_dev.pipeline.context import ACCOUNT, STACK

if TYPE_CHECKING:
    from casewatch_dev.iam.moto_enforcement import MotoIam

IamMode = Literal["off", "cases", "aws+cases"]


class FunctionIdentities:
    """The functions' sessions and the enforcement around their invocations."""

    def __init__(self, roles: FunctionRoles, backend: str, access: AccessControl) -> None:
        self.roles = roles
        self.backend = backend
        self.access = access
        self.mode: IamMode = "aws+cases" if backend == "moto" else "cases"
        self._sessions: dict[str, boto3.session.Session] = {}
        self._moto: MotoIam | None = None

    def start(self, stack: ExitStack) -> None:
        """Create the identities (moto: the roles, in moto's IAM; inside `mock_aws`) and install the
        enforcement for as long as `stack` is open."""
        if self.backend == "moto":
            from casewatch_dev.iam.moto_enforcement import MotoIam

            moto = MotoIam(self.roles, self.access)
            self._sessions = {name: session for name, (_, session) in moto.identities().items()}
            stack.enter_context(moto.installed())
            self._moto = moto
            return
        for name, role in self.roles.roles.items():
            key = "ASIA" + hashlib.sha256(f"{STACK}/{name}".encode()).hexdigest()[:16].upper()
            session_name = f"{STACK}-{name}"
            arn = f"arn:aws:sts::{ACCOUNT}:assumed-role/{role.role_name}/{session_name}"
            self.access.register(key, Principal(name, arn, role.policies))
            self._sessions[name] = sessions.session(key, f"local-{session_name}", f"local-{session_name}")

    @contextmanager
    def acting_as(self, function: str) -> Iterator[None]:
        """While inside, the product's clients are `function`'s, and (moto) moto enforces IAM."""
        with session_scope(self._sessions[function]):
            if self._moto is None:
                yield
                return
            with self._moto.enforcing():
                yield


__all__ = ["FunctionIdentities", "IamMode"]
