"""IAM on moto: the functions' roles in moto's IAM, their STS credentials, and moto's access control.

`MotoIam.identities()` creates each function's role in moto (its policies as inline policies) and
assumes it (`sts:AssumeRole`, as Lambda does): the function's clients sign with those credentials.
`enforcing()` turns moto's IAM mode on (`moto.core.enable_iam_authentication`): moto then checks every
request's signature, finds the assumed role behind the access key, and evaluates the role's policies with
its own evaluator (`moto.iam.access_control.IAMPolicy`).

What this module adds to moto is the request context (`installed()` hooks moto's authorization step):
moto's own check asks for `<service>:<Operation>` on `*` for most services, which no least-privilege
policy allows; here each request is authorized for the actions and resources AWS authorizes
(`casewatch_dev.iam.aws_requests`), a denial is recorded in the `AccessControl`, and the error is the one
the service answers (DynamoDB, EventBridge, Scheduler: `AccessDeniedException`; SNS:
`AuthorizationError`; SQS: `AccessDenied`), so botocore raises what it would raise in AWS.

What moto's evaluator does not do (README, "IAM, locally"): conditions other than `StringEquals` on keys
given here (only `iam:PassedToService`) are taken as met; `NotResource` is not understood; resource-based
policies (queue, topic, key, bus policies), KMS key policies, permissions boundaries and SCPs are not
evaluated; moto never calls KMS for an encrypted topic.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Final
from urllib.parse import parse_qs, urlparse
from xml.sax.saxutils import escape

import boto3
from werkzeug.exceptions import HTTPException

from casewatch_dev.iam import sessions
from casewatch_dev.iam.access import AccessControl, Denial, Principal
from casewatch_dev.iam.aws_requests import Authorization, aws_authorizations
from casewatch_dev.iam.policy import Decision
from casewatch_dev.iam.roles import FunctionRoles
from casewatch_dev.pipeline.context import ACCOUNT, REGION, STACK

# The error each service answers for an access denied (its protocol decides the body's shape).
_JSON_ERRORS: Final = {
    "dynamodb": "AccessDeniedException",
    "events": "AccessDeniedException",
    "scheduler": "AccessDeniedException",
    "sqs": "AccessDenied",  # SQS's JSON protocol reports the query protocol's code
}
_QUERY_ERRORS: Final = {"sns": "AuthorizationError"}


class AccessDeniedResponse(HTTPException):
    """What moto answers for a denied request (moto's request path turns it into the response)."""

    def __init__(self, service: str, message: str) -> None:
        super().__init__()
        self.code = 403
        if service in _QUERY_ERRORS:
            self.description = (
                "<ErrorResponse><Error><Type>Sender</Type>"
                f"<Code>{_QUERY_ERRORS[service]}</Code><Message>{escape(message)}</Message>"
                "</Error><RequestId>local</RequestId></ErrorResponse>"
            )
        else:
            code = _JSON_ERRORS.get(service, "AccessDeniedException")
            self.description = json.dumps({"__type": code, "message": message})


class MotoIam:
    """The functions' roles on moto, and moto's access control with AWS's request context."""

    def __init__(self, roles: FunctionRoles, access: AccessControl) -> None:
        self.roles = roles
        self.access = access

    def identities(self) -> dict[str, tuple[Principal, boto3.session.Session]]:
        """Create each role in moto and assume it: {function: (principal, session with its credentials)}.
        Runs with moto's IAM mode off (as the stack's deployment would, with other credentials)."""
        admin = sessions.session()  # the environment's credentials (moto's IAM mode is off now)
        iam, sts = admin.client("iam"), admin.client("sts")
        found = {}
        for name, role in self.roles.roles.items():
            arn = iam.create_role(
                RoleName=role.role_name,
                AssumeRolePolicyDocument=json.dumps(role.trust_policy),
                Description=f"casewatch {name} (local)",
            )["Role"]["Arn"]
            for policy_name, document in sorted(role.documents.items()):
                iam.put_role_policy(
                    RoleName=role.role_name, PolicyName=policy_name, PolicyDocument=json.dumps(document)
                )
            # AWS managed policies (AWSLambdaBasicExecutionRole: the runtime's logging) are not attached:
            # moto does not load them by default, and no local code makes the calls they grant.
            assumed = sts.assume_role(RoleArn=arn, RoleSessionName=f"{STACK}-{name}")
            credentials = assumed["Credentials"]
            principal = Principal(name, assumed["AssumedRoleUser"]["Arn"], role.policies)
            self.access.register(credentials["AccessKeyId"], principal)
            found[name] = (
                principal,
                sessions.session(
                    credentials["AccessKeyId"], credentials["SecretAccessKey"], credentials["SessionToken"]
                ),
            )
        return found

    @contextmanager
    def installed(self) -> Iterator[None]:
        """moto authorizes requests with AWS's request context while inside (moto's IAM mode still decides
        whether requests are checked at all: see `enforcing`)."""
        from moto.core.authorization import ActionAuthenticatorMixin

        original = ActionAuthenticatorMixin._authenticate_and_authorize_normal_action
        access = self.access

        def authorize(response: Any, resource: str = "*") -> None:
            _authorize(response, resource, access)

        ActionAuthenticatorMixin._authenticate_and_authorize_normal_action = authorize  # type: ignore[method-assign,assignment]
        try:
            yield
        finally:
            ActionAuthenticatorMixin._authenticate_and_authorize_normal_action = original  # type: ignore[method-assign]

    @staticmethod
    @contextmanager
    def enforcing() -> Iterator[None]:
        """moto's IAM mode: every request inside is authenticated and authorized."""
        from moto.core.authorization import enable_iam_authentication

        with enable_iam_authentication():
            yield


def _authorize(response: Any, resource: str, access: AccessControl) -> None:
    """moto's authentication (signature; the access key's IAM user or assumed role and its policies) and
    moto's evaluator, for every authorization the request needs."""
    from moto import settings
    from moto.core.authorization import ActionAuthenticatorMixin
    from moto.iam.access_control import IAMPolicy, IAMRequest, PermissionResult, create_access_key

    if ActionAuthenticatorMixin.request_count < settings.INITIAL_NO_AUTH_ACTION_COUNT:
        ActionAuthenticatorMixin.request_count += 1  # IAM mode off: moto's own bookkeeping
        return
    service = str(response.service_name)
    operation = str(response._get_action())
    headers = response.headers
    authorization = str(headers.get("Authorization") or "")
    key = authorization.partition("Credential=")[2].partition("/")[0] or None
    if key is None:
        unsigned = Denial(access.caller(None), f"{service}:{operation}", resource, Decision.IMPLICIT_DENY)
        raise AccessDeniedResponse(service, access.record(unsigned).message("anonymous"))
    path = response.raw_path
    if urlparse(response.uri).query:
        path += "?" + urlparse(response.uri).query
    try:
        request = IAMRequest(
            account_id=response.current_account,
            method=response.method,
            path=path,
            # moto signs its copy of a request without a body (DeleteSchedule: DELETE with a query) with
            # the query parameters as a form body, and the signature never matches: only POST/PUT carry one.
            data=response.data if response.method in ("POST", "PUT", "PATCH") else {},
            body=response.raw_body,
            headers=headers,
            action=operation,
        )
        request.check_signature()
        caller = create_access_key(
            account_id=response.current_account, partition="aws", access_key_id=key, headers=headers
        )
    except HTTPException:  # moto's InvalidClientTokenId / SignatureDoesNotMatch: not authenticated
        access.record(Denial(access.caller(key), f"{service}:{operation}", resource, Decision.IMPLICIT_DENY))
        raise
    policies = caller.collect_policies()
    for needed in _authorizations(response, service, operation, resource):
        results = [
            IAMPolicy(policy).is_action_permitted(
                needed.action, needed.resource, incoming_condition_values=dict(needed.context)
            )
            for policy in policies
        ]
        if PermissionResult.DENIED in results:
            decision = Decision.EXPLICIT_DENY
        elif PermissionResult.PERMITTED in results:
            continue
        else:
            decision = Decision.IMPLICIT_DENY
        denial = access.record(Denial(access.caller(key), needed.action, needed.resource, decision))
        raise AccessDeniedResponse(service, denial.message(caller.arn))


def _authorizations(response: Any, service: str, operation: str, resource: str) -> list[Authorization]:
    parsed = urlparse(response.uri)
    params: dict[str, Any] = {}
    if service == "sns":  # the query protocol: form parameters
        params = {k: v[0] for k, v in response.querystring.items() if v}
    else:
        raw = response.raw_body
        text = raw.decode() if isinstance(raw, bytes) else str(raw or "")
        if text.strip().startswith("{"):
            decoded = json.loads(text)
            params = decoded if isinstance(decoded, dict) else {}
        params.update({k: v[0] for k, v in parse_qs(parsed.query).items() if v})
    return aws_authorizations(
        service,
        operation,
        params,
        account=str(response.current_account or ACCOUNT),
        region=str(response.region or REGION),
        path=parsed.path,
        resource=resource,
    )


__all__ = ["AccessDeniedResponse", "MotoIam"]
