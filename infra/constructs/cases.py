"""ARNs of the Amazon Connect Cases domain (IAM resource types of the `cases` service)."""

from __future__ import annotations

from dataclasses import dataclass

from aws_cdk import ArnFormat, Stack
from constructs import Construct


@dataclass(frozen=True, slots=True)
class CasesDomainArns:
    """`arn:${Partition}:cases:${Region}:${Account}:domain/<id>` and its case/field children."""

    domain: str
    cases: str  # <domain>/case/*
    fields: str  # <domain>/field/*

    @classmethod
    def of(cls, scope: Construct, domain_id: str) -> CasesDomainArns:
        domain = Stack.of(scope).format_arn(
            service="cases",
            resource="domain",
            resource_name=domain_id,
            arn_format=ArnFormat.SLASH_RESOURCE_NAME,
        )
        return cls(domain=domain, cases=f"{domain}/case/*", fields=f"{domain}/field/*")

    @staticmethod
    def nag_findings(domain_id: str) -> list[str]:
        """The cdk-nag IAM5 findings of the case/* and field/* resources, as cdk-nag renders them."""
        domain = f"arn:<AWS::Partition>:cases:<AWS::Region>:<AWS::AccountId>:domain/{domain_id}"
        return [f"Resource::{domain}/case/*", f"Resource::{domain}/field/*"]

    @property
    def get_case(self) -> list[str]:
        """GetCase needs the domain, case and field resource types."""
        return [self.domain, self.cases, self.fields]
