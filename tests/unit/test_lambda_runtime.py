"""The pure parts of `casewatch invoke --runtime-emulator` (no emulator, no synthesis, no network): the
template's references resolved to local names, the REPORT figures, the SLA changes, the layer's list."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from casewatch.domain.sla.model import SlaOrigin, SlaState, SlaStatus, Transition
from casewatch.topology import CASE_CHANGED
from casewatch_dev.lambda_runtime.rie import read_report
from casewatch_dev.lambda_runtime.session import sla_changes
from casewatch_dev.lambda_runtime.template import FunctionDefinition, TemplateError, local_resources
from casewatch_dev.lambda_runtime.toolchain import layer_requirements
from casewatch_dev.pipeline import LocalResources
from casewatch_dev.sla_items import SlaItem

STACK = "Casewatch"


def resource(path: str, cfn_type: str, **props: Any) -> dict[str, Any]:
    return {"Type": cfn_type, "Properties": props, "Metadata": {"aws:cdk:path": f"{STACK}/{path}"}}


def assembly(tmp_path: Path, environment: dict[str, Any]) -> Path:
    """A cloud assembly with one function (CaseChanged) and the resources its environment references."""
    function = resource(
        "Functions/CaseChanged/Resource",
        "AWS::Lambda::Function",
        Handler=CASE_CHANGED.handler,
        Runtime="python3.13",
        Architectures=["arm64"],
        MemorySize=256,
        Timeout=30,
        Layers=[{"Ref": "Layer"}],
        LoggingConfig={"LogFormat": "JSON", "ApplicationLogLevel": "INFO"},
        Environment={"Variables": environment},
    )
    function["Metadata"]["aws:asset:path"] = "asset.code"
    layer = resource("Functions/Dependencies/Layer/Resource", "AWS::Lambda::LayerVersion")
    layer["Metadata"]["aws:asset:path"] = "asset.layer"
    template = {
        "Resources": {
            "Fn": function,
            "Layer": layer,
            "Table": resource("SlaStore/CaseTable/Resource", "AWS::DynamoDB::Table"),
            "Role": resource("SlaStore/SchedulerRole/Resource", "AWS::IAM::Role"),
            "Group": resource("SlaStore/ScheduleGroup", "AWS::Scheduler::ScheduleGroup", Name="fixed-group"),
            "Topic": resource("Notifications/Topic/Resource", "AWS::SNS::Topic"),
            "Queue": resource("DeadLetters/InvalidEventsQueue/Resource", "AWS::SQS::Queue"),
            "Other": resource("Elsewhere/Bucket/Resource", "AWS::S3::Bucket"),
        }
    }
    (tmp_path / f"{STACK}.template.json").write_text(json.dumps(template))
    manifest = {
        "artifacts": {
            STACK: {
                "type": "aws:cloudformation:stack",
                "properties": {"templateFile": f"{STACK}.template.json"},
            }
        }
    }
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    return tmp_path


def definition(tmp_path: Path, environment: dict[str, Any]) -> FunctionDefinition:
    return FunctionDefinition.of(
        assembly(tmp_path, environment), CASE_CHANGED, LocalResources(), lambda name: f"http://q/{name}"
    )


def test_references_resolve_to_the_local_pipelines_resources(tmp_path: Path) -> None:
    local = LocalResources()
    found = definition(
        tmp_path,
        {
            "TABLE": {"Ref": "Table"},
            "TABLE_ARN": {"Fn::GetAtt": ["Table", "Arn"]},
            "ROLE_ARN": {"Fn::GetAtt": ["Role", "Arn"]},
            "TOPIC": {"Ref": "Topic"},
            "QUEUE": {"Ref": "Queue"},
            "FN_ARN": {
                "Fn::Join": [
                    "",
                    ["arn:", {"Ref": "AWS::Partition"}, ":lambda:", {"Ref": "AWS::Region"}, ":x:function:f"],
                ]
            },
            "SUB": {"Fn::Sub": "${Table}/${AWS::AccountId}"},
            "LITERAL": "as-is",
        },
    )
    assert found.environment == {
        "TABLE": local.state_table,
        "TABLE_ARN": f"arn:aws:dynamodb:us-east-1:123456789012:table/{local.state_table}",
        "ROLE_ARN": local.scheduler_role_arn,
        "TOPIC": local.topic_arn,
        "QUEUE": f"http://q/{local.invalid_queue}",
        "FN_ARN": "arn:aws:lambda:us-east-1:x:function:f",
        "SUB": f"{local.state_table}/123456789012",
        "LITERAL": "as-is",
    }
    assert (found.handler, found.memory_mb, found.timeout_s) == (CASE_CHANGED.handler, 256, 30)
    assert (found.runtime, found.architecture, found.log_format, found.log_level) == (
        "python3.13",
        "arm64",
        "JSON",
        "INFO",
    )
    assert found.code_dir == tmp_path / "asset.code"
    assert found.layer_dirs == (tmp_path / "asset.layer",)


def test_a_reference_to_a_resource_the_pipeline_lacks_is_named(tmp_path: Path) -> None:
    with pytest.raises(TemplateError, match=r"Casewatch/Elsewhere/Bucket/Resource \(AWS::S3::Bucket\)"):
        definition(tmp_path, {"BUCKET": {"Ref": "Other"}})


def test_names_the_stack_fixes_are_kept(tmp_path: Path) -> None:
    resources = local_resources(assembly(tmp_path, {}))
    assert resources.schedule_group == "fixed-group"
    assert resources.state_table == LocalResources().state_table


RIE_OUTPUT = [
    "02 Dec 2026 06:06:35,928 [INFO] (rapid) exec '/x/python' (cwd=/x, handler=app.handler)",
    "START RequestId: 07f5 Version: $LATEST",
    "02 Dec 2026 06:06:37,234 [INFO] (rapid) INIT REPORT(durationMs: 280.348000)",
    '{"level":"INFO","message":"handled"}',
    "02 Dec 2026 06:06:37,235 [INFO] (rapid) INVOKE RTDONE(status: success, produced bytes: 0, duration: 41.151000ms)",
    "END RequestId: 07f5",
    "REPORT RequestId: 07f5\tInit Duration: 0.28 ms\tDuration: 321.70 ms\tBilled Duration: 322 ms\t"
    "Memory Size: 256 MB\tMax Memory Used: 256 MB\t",
]


def test_the_report_takes_durations_from_the_phase_lines_and_memory_as_measured() -> None:
    report = read_report(RIE_OUTPUT, 71)
    assert report is not None
    assert report.as_dict() == {
        "duration_ms": 41.15,  # the RIE's REPORT Duration (321.70) counts the init in
        "billed_duration_ms": 42,
        "memory_size_mb": 256,
        "max_memory_used_mb": 71,  # the RIE repeats Memory Size
        "init_duration_ms": 280.35,
        "report": RIE_OUTPUT[-1],
    }


def test_without_phase_lines_the_report_line_is_read() -> None:
    report = read_report([RIE_OUTPUT[-1]], None)
    assert report is not None
    assert (report.duration_ms, report.billed_duration_ms, report.init_duration_ms) == (321.7, 322, 0.28)
    assert read_report(RIE_OUTPUT[:-1], None) is None


T0 = datetime(2026, 11, 23, 9, tzinfo=UTC)


def stored(*history: SlaStatus) -> SlaItem:
    transitions = tuple(
        Transition(at=T0 + timedelta(minutes=n), status=s, cycle=1, target_time=T0 + timedelta(minutes=30))
        for n, s in enumerate(history)
    )
    state = SlaState(
        key="policy#first",
        name="first",
        origin=SlaOrigin.POLICY,
        status=history[-1],
        cycle=1,
        started_at=T0,
        target_time=T0 + timedelta(minutes=30),
        duration=timedelta(minutes=30),
        history=transitions,
    )
    return SlaItem(domain_id="d", case_id="c", state=state)


def test_sla_changes_are_the_history_entries_an_invocation_added() -> None:
    before = stored(SlaStatus.ACTIVE)
    after = stored(SlaStatus.ACTIVE, SlaStatus.OVERDUE)
    assert sla_changes({("c", "policy#first"): before}, [after]) == [
        {
            "case": "c",
            "sla": "policy#first",
            "status": "Overdue",
            "at": (T0 + timedelta(minutes=1)).isoformat(),
            "target_time": (T0 + timedelta(minutes=30)).isoformat(),
        }
    ]
    assert [c["status"] for c in sla_changes({}, [after])] == ["Active", "Overdue"]
    assert sla_changes({("c", "policy#first"): after}, [after]) == []
    rewritten = stored(SlaStatus.ACTIVE, SlaStatus.MET)  # history not extended but rewritten: all of it
    assert [c["status"] for c in sla_changes({("c", "policy#first"): after}, [rewritten])] == [
        "Active",
        "Met",
    ]


def test_the_layers_distributions_are_read_from_its_dist_info(tmp_path: Path) -> None:
    for name, version in (("pydantic_core", "2.41.5"), ("typing_extensions", "4.15.0")):
        info = tmp_path / "python" / f"{name}-{version}.dist-info"
        info.mkdir(parents=True)
        canonical = name.replace("_", "-")
        (info / "METADATA").write_text(
            f"Metadata-Version: 2.4\nName: {canonical}\nVersion: {version}\n\nBody: x\n"
        )
    assert layer_requirements(tmp_path) == ["pydantic-core==2.41.5", "typing-extensions==4.15.0"]
