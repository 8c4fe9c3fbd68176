"""The local pipeline's IAM reads each function's role from the synthesized template (`casewatch_dev.iam`):
what it reads is the template's policies, and one synthesis serves every setting but the Cases domain."""

from __future__ import annotations

from casewatch.topology import FUNCTIONS
from casewatch_dev.iam.roles import roles_from_assembly
from tests.infra.synth import Synthesized


def test_each_functions_role_is_read_with_every_policy_attached_to_it(synth: Synthesized) -> None:
    roles, domain = roles_from_assembly(synth.outdir)
    assert domain == synth.settings.domain_id
    assert set(roles.roles) == {spec.name for spec in FUNCTIONS}
    for spec in FUNCTIONS:
        role = roles[spec.name]
        _, function = synth.by_path(f"Functions/{spec.construct_id}/Resource")
        role_id = function["Properties"]["Role"]["Fn::GetAtt"][0]
        attached = [
            policy
            for policy in synth.of_type("AWS::IAM::Policy").values()
            if {"Ref": role_id} in policy["Properties"]["Roles"]
        ]
        assert len(role.documents) == len(attached) >= 1, spec.name
        statements = [s for p in attached for s in p["Properties"]["PolicyDocument"]["Statement"]]
        read = [s for document in role.documents.values() for s in document["Statement"]]
        assert [s["Action"] for s in read] == [s["Action"] for s in statements], spec.name
        assert role.trust_policy["Statement"][0]["Principal"] == {"Service": "lambda.amazonaws.com"}
        assert role.managed_policy_arns == (
            "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole",
        )
        for _, resource in role.grants():  # every reference resolved to a local name
            assert resource == "*" or resource.startswith("arn:aws:"), (spec.name, resource)


def test_the_roles_depend_on_the_settings_only_through_the_domain(
    synth: Synthesized, variant: Synthesized
) -> None:
    """The variant synthesis changes many settings (capture, alarm e-mail, concurrency, 400 fields, the
    domain): the functions' roles differ by the Cases domain alone, so the pipeline rebinds the domain of
    one cached synthesis instead of synthesizing per setting."""
    default, default_domain = roles_from_assembly(synth.outdir)
    other, other_domain = roles_from_assembly(variant.outdir)
    assert other_domain == variant.settings.domain_id != default_domain
    assert default.for_domain(default_domain, other_domain) == other
    assert default != other
