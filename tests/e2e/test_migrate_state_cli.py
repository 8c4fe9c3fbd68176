"""`casewatch migrate-state` end to end on moto: the upgrade as the README tells it. main's StateTable holds a
morning of cases (written by main's adapters, `tests.legacy`), this version's table is empty, the stack's
outputs name it (`--outputs`, as `make deploy` writes them); a dry run, the run, `casewatch sla show` on a
migrated case, a second run; and the usage errors of a wrong table."""

from __future__ import annotations

import io
import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from casewatch.adapters.clients import dynamodb_client
from casewatch.tables import STATE_TABLE
from casewatch_dev.cli import main
from tests.builders import DOMAIN, POLICIES, SLA_SETTINGS
from tests.legacy.deployment import OldDeployment
from tests.legacy.scenario import BREACHED, CASES, DURATION, write_old_state

OLD_TABLE = "Casewatch-StateTable-1A2B3C"
NEW_TABLE = "Casewatch-SlaStoreCaseTable-4D5E6F"


@dataclass
class Upgrade:
    client: Any
    tmp: Path

    def run(self, *argv: str) -> tuple[int, str]:
        out = io.StringIO()
        code = main(["migrate-state", "--from-table", OLD_TABLE, *argv], out=out)
        return code, out.getvalue()

    def outputs(self, **outputs: str) -> str:
        path = self.tmp / "outputs.json"
        path.write_text(
            json.dumps({"Casewatch": {"StateTableName": NEW_TABLE, "DomainId": DOMAIN, **outputs}})
        )
        return str(path)

    @property
    def config(self) -> str:
        path = self.tmp / "cdk.json"
        settings = SLA_SETTINGS.model_dump(mode="json", exclude_defaults=True)
        path.write_text(json.dumps({"context": {"casewatch": settings}}))
        return str(path)

    def new_items(self) -> list[dict[str, Any]]:
        return self.client.scan(TableName=NEW_TABLE)["Items"]  # type: ignore[no-any-return]


@pytest.fixture
def upgrade(moto: None, tmp_path: Path) -> Upgrade:
    """Deployed: main's table as this morning left it (the old functions are gone), and the new table."""
    client = dynamodb_client()
    old = OldDeployment(OLD_TABLE, client, POLICIES)
    old.create_table()
    write_old_state(old, datetime.now(UTC) - DURATION - timedelta(minutes=1))
    client.create_table(**STATE_TABLE.create_table_args(NEW_TABLE))
    return Upgrade(client, tmp_path)


def test_the_upgrade_migrates_every_case_once(upgrade: Upgrade) -> None:
    outputs, config = upgrade.outputs(), upgrade.config

    code, dry = upgrade.run("--outputs", outputs, "--config", config, "--dry-run", "--report", "json")
    assert code == 0
    planned = json.loads(dry)
    assert (planned["dry_run"], planned["migrated"], planned["open_slas"]) == (True, 4, 4)
    assert upgrade.new_items() == []

    code, text = upgrade.run("--outputs", outputs, "--config", config)
    assert code == 0
    lines = dict(line.rsplit(None, 1) for line in text.splitlines() if line.strip())
    assert lines["  migrated"] == "4" and lines["open SLAs carried over"] == "4"
    assert {i["pk"]["S"] for i in upgrade.new_items() if i["sk"]["S"] == "CASE"} == {
        f"CASE#{c}" for c in CASES
    }

    shown = io.StringIO()
    assert main(["sla", "show", BREACHED, "--table", NEW_TABLE, "--config", config, "--json"], out=shown) == 0
    slas = {s["sla"]: s["status"] for s in json.loads(shown.getvalue())["slas"]}
    assert sorted(slas.values()) == ["Active", "Overdue"]

    code, again = upgrade.run("--to-table", NEW_TABLE, "--config", config, "--report", "json")
    assert code == 0
    rerun = json.loads(again)
    assert (rerun["migrated"], rerun["skipped_present"], rerun["present_since_upgrade"]) == (0, 4, [])


def test_a_failed_case_exits_1_and_the_others_migrate(upgrade: Upgrade) -> None:
    upgrade.client.put_item(
        TableName=OLD_TABLE,
        Item={"pk": {"S": "CASE#broken"}, "sk": {"S": "SLALOG"}, "observations": {"S": "{}"}},
    )

    code, text = upgrade.run("--to-table", NEW_TABLE, "--config", upgrade.config)

    assert code == 1
    assert re.search(r"^ +broken +SLALOG: the observations are not a list$", text, re.MULTILINE)
    assert "Failed cases were not written" in text
    assert len([i for i in upgrade.new_items() if i["sk"]["S"] == "CASE"]) == 4


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ("--to-table", OLD_TABLE),
            "both Casewatch-StateTable-1A2B3C: deploy this version of casewatch first",
        ),
        (("--to-table", "Missing"), "table Missing not found"),
        (
            ("--to-table", NEW_TABLE, "--from-table", NEW_TABLE + "-2"),
            "is not an earlier casewatch's state table",
        ),
        (("--outputs", "{outputs_without_table}"), "has no output StateTableName"),
    ],
)
def test_wrong_tables_are_usage_errors(
    upgrade: Upgrade, argv: tuple[str, ...], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    outputs = upgrade.outputs(StateTableName="")
    argv = tuple(outputs if a == "{outputs_without_table}" else a for a in argv)
    upgrade.client.create_table(**STATE_TABLE.create_table_args(NEW_TABLE + "-2"))

    code, _ = upgrade.run(*argv, "--config", upgrade.config)

    assert code == 2
    assert message in capsys.readouterr().err
    assert upgrade.new_items() == []


def test_an_old_table_as_the_target_is_a_usage_error(
    upgrade: Upgrade, capsys: pytest.CaptureFixture[str]
) -> None:
    """A stack not upgraded yet still names main's table (its `due` index projects everything)."""
    OldDeployment("Casewatch-StateTable-OTHER", upgrade.client, POLICIES).create_table()

    code, _ = upgrade.run("--to-table", "Casewatch-StateTable-OTHER", "--config", upgrade.config)

    assert code == 2
    assert "is not this version's state table (logical id CaseTable)" in capsys.readouterr().err
