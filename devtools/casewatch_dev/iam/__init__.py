"""IAM for the local pipeline: every function runs under its synthesized role.

- `policy`: a small IAM policy evaluator (the Cases emulator's);
- `roles`: each function's role, read from the synthesized stack and resolved to local resources;
- `access`: who signs with which access key, and every request denied;
- `aws_requests`: what AWS authorizes for a request (actions, resources, context keys);
- `moto_enforcement`: the roles in moto and moto's access control with that request context;
- `sessions`: boto3 sessions of the functions' credentials.
The local pipeline wires them (`casewatch_dev.pipeline.identities`); the README's "IAM, locally" says what
is enforced where, and what is not.
"""

from casewatch_dev.iam.access import AccessControl, Denial, Principal
from casewatch_dev.iam.policy import Decision, Policy, evaluate
from casewatch_dev.iam.roles import FunctionRole, FunctionRoles, synthesized_roles

__all__ = [
    "AccessControl",
    "Decision",
    "Denial",
    "FunctionRole",
    "FunctionRoles",
    "Policy",
    "Principal",
    "evaluate",
    "synthesized_roles",
]
