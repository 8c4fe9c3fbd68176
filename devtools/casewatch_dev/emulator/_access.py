"""What Cases authorizes for a request, and who signed it.

The IAM action is `cases:<Operation>`. The resources are those of the operation's required resource types
in the Service Authorization Reference for Amazon Connect Cases (every one must be allowed):

| operation                                     | resources                                            |
| --------------------------------------------- | ---------------------------------------------------- |
| GetCase                                       | the domain, the case, each requested field           |
| SearchCases                                   | the domain, each requested field (assumed: it reads  |
|                                               | field values as GetCase does; the stricter reading)  |
| SearchRelatedItems                            | the domain, the case                                 |
| Get/PutCaseEventConfiguration,                | the domain                                           |
| SearchAllRelatedItems                         |                                                      |
| any other (casewatch's functions call none)   | the domain; the case, template, fields it names      |

ARNs: domain `arn:aws:cases:<region>:<account>:domain/<domainId>`, case `<domain>/case/<caseId>`, field
`<domain>/field/<fieldId>`, template `<domain>/template/<templateId>` (CASES-EVENTS.md, section 1).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

_DOMAIN_ONLY = frozenset({"GetCaseEventConfiguration", "PutCaseEventConfiguration", "SearchAllRelatedItems"})


def cases_authorization(operation: str, params: Mapping[str, Any], *, account: str, region: str) -> list[str]:
    """The resource ARNs `operation` with `params` must be allowed on."""
    domain_id = params.get("domainId")
    if not domain_id:  # ListDomains, CreateDomain, tagging by ARN: account-level
        arn = params.get("arn")
        return [str(arn)] if arn else ["*"]
    domain = f"arn:aws:cases:{region}:{account}:domain/{domain_id}"
    if operation in _DOMAIN_ONLY:
        return [domain]
    found = [domain]
    if params.get("caseId"):
        found.append(f"{domain}/case/{params['caseId']}")
    if operation == "SearchRelatedItems":
        return found
    if operation != "GetCase" and params.get("templateId"):
        found.append(f"{domain}/template/{params['templateId']}")
    for entry in params.get("fields") or []:
        if isinstance(entry, Mapping) and entry.get("id"):
            found.append(f"{domain}/field/{entry['id']}")
    return found


def signer(headers: Mapping[str, str]) -> str | None:
    """The access key id of a SigV4 `Authorization` header's credential scope (`Credential=AKID/...`)."""
    authorization = next((v for k, v in headers.items() if k.lower() == "authorization"), "")
    return authorization.partition("Credential=")[2].partition("/")[0] or None


__all__ = ["cases_authorization", "signer"]
