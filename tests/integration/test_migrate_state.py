"""`StateMigration` on moto: main's state table, written by main's own adapters (`tests.legacy`), carried
into this version's table (`casewatch.tables`) and read back through `DynamoDbCaseStore`.

The reference is what main computed: its SLA items, read back by main's store, against the records'
`states()`; the rest of a record (view, log, status order, the `due` index) against main's items.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from botocore.exceptions import ClientError

from casewatch.adapters.case_items import case_key
from casewatch.adapters.clients import dynamodb_client
from casewatch.adapters.dynamodb_case_store import DynamoDbCaseStore
from casewatch.domain.case_record import LIVE_SCOPE, CaseChange, CaseRecord, Claim, StatusMark, status_hash
from casewatch.domain.sla.log import MAX_LOG_BYTES, CaseSlaLog, Observation, ObsKind, case_fields, json_bytes
from casewatch.domain.sla.model import SlaStatus, compile_policies
from casewatch.settings import Settings
from casewatch.tables import STATE_TABLE
from casewatch_dev.migrate_state.migration import MIGRATION_CLAIM, StateMigration
from casewatch_dev.migrate_state.report import MigrationReport, SlaDifference
from tests.builders import DOMAIN, FIRST, POLICIES, RESOLVE, SLA_SETTINGS, T0
from tests.legacy.deployment import OldDeployment
from tests.legacy.fold import evaluate
from tests.legacy.records import SlaCaseRecord
from tests.legacy.scenario import BREACHED, CASES, DELETED, DURATION, PAUSED, REOPENED, write_old_state
from tests.legacy.sla_store import case_log

OLD_TABLE = "Casewatch-StateTable-OLD"
NEW_TABLE = "Casewatch-CaseTable-NEW"
NOW = T0 + DURATION  # the migration runs when the morning is over
CUSTOMER_VALUE = "Refund for order 1234"  # a field value of every case's view


@dataclass
class Tables:
    old: OldDeployment
    client: Any

    def store(self, policies: Any = POLICIES) -> DynamoDbCaseStore:
        return DynamoDbCaseStore(NEW_TABLE, self.client, policies)

    def migrate(self, settings: Settings = SLA_SETTINGS, *, dry_run: bool = False) -> MigrationReport:
        return self.migration(settings, dry_run=dry_run).run()

    def migration(self, settings: Settings = SLA_SETTINGS, *, dry_run: bool = False) -> StateMigration:
        return StateMigration(
            client=self.client,
            source_table=OLD_TABLE,
            target_table=NEW_TABLE,
            settings=settings,
            policies=compile_policies(settings.sla_policies, settings.field_id),
            dry_run=dry_run,
            clock=lambda: NOW,
        )

    def new_items(self) -> list[dict[str, Any]]:
        pages = self.client.get_paginator("scan").paginate(TableName=NEW_TABLE)
        return sorted(
            (i for p in pages for i in p.get("Items", [])), key=lambda i: (i["pk"]["S"], i["sk"]["S"])
        )

    def put_old(self, item: dict[str, Any]) -> None:
        self.client.put_item(TableName=OLD_TABLE, Item=item)


@pytest.fixture
def tables(moto: None) -> Tables:
    """main's StateTable after the morning of `tests.legacy.scenario`, and an empty new table."""
    client = dynamodb_client()
    old = OldDeployment(OLD_TABLE, client, POLICIES)
    old.create_table()
    client.create_table(**STATE_TABLE.create_table_args(NEW_TABLE))
    write_old_state(old, T0)
    return Tables(old, client)


def summary(report: MigrationReport) -> dict[str, Any]:
    data = report.as_dict()
    return {
        k: data[k] for k in ("cases_read", "migrated", "skipped_present", "failed", "open_slas", "due_cases")
    }


# --- what is carried over ---------------------------------------------------------------------------


def test_each_case_folds_to_the_sla_states_main_stored(tables: Tables) -> None:
    report = tables.migrate()

    assert summary(report) == {
        "cases_read": 4,
        "migrated": 4,
        "skipped_present": 0,
        "failed": 0,
        "open_slas": 4,
        "due_cases": 2,
    }
    assert report.ok and report.differences == [] and report.unknown_items == {}
    store = tables.store()
    for case_id in CASES:
        record = store.load(DOMAIN, case_id)
        assert record.revision == 1
        assert record.states() == tables.old.states(DOMAIN, case_id), case_id
    # What main's items said, spelled out.
    paused, breached = store.load(DOMAIN, PAUSED).states(), store.load(DOMAIN, BREACHED).states()
    assert paused[FIRST].status is SlaStatus.MET
    assert paused[RESOLVE].status is SlaStatus.ACTIVE and paused[RESOLVE].paused
    assert [s.status for s in breached.values()] == [SlaStatus.ACTIVE, SlaStatus.OVERDUE]
    reopened = store.load(DOMAIN, REOPENED).states()[RESOLVE]
    assert (reopened.status, reopened.cycle) == (SlaStatus.ACTIVE, 2)
    assert reopened.history[1].status is SlaStatus.MET
    assert store.load(DOMAIN, DELETED).states()[RESOLVE].status is SlaStatus.CANCELLED


def test_the_view_log_horizon_and_status_order_are_main_s(tables: Tables) -> None:
    tables.migrate()

    store = tables.store()
    old_items = {(i["pk"]["S"], i["sk"]["S"]): i for i in tables.old.items()}
    for case_id in CASES:
        pk = f"CASE#{case_id}"
        record = store.load(DOMAIN, case_id, with_log=True)
        old_log = case_log(old_items[(pk, "SLALOG")])
        assert record.log is not None
        assert sorted(record.log, key=Observation.sort_key) == list(old_log.observations)
        assert record.log_size == len(old_log.observations)
        assert record.horizon == old_log.horizon
        assert record.snapshot is not None
        assert (
            record.snapshot.model_dump_json() == tables.old.snapshots.get(DOMAIN, case_id).model_dump_json()
        )
        live = old_items[(pk, "NOTIFY#STATUS")]
        assert record.status_order[LIVE_SCOPE] == StatusMark(
            int(live["latest_at"]["N"]), live["latest_status"]["S"]
        )
    assert store.load(DOMAIN, BREACHED).horizon == T0 + timedelta(minutes=35)
    reopened = store.load(DOMAIN, REOPENED)
    assert reopened.status_order == {
        LIVE_SCOPE: StatusMark(int((T0 + timedelta(minutes=90)).timestamp() * 1000), status_hash("open")),
        "replay#backfill": StatusMark(
            int((T0 + timedelta(minutes=60)).timestamp() * 1000), status_hash("closed")
        ),
    }
    assert store.load(DOMAIN, DELETED).snapshot.deleted  # type: ignore[union-attr]


def test_the_due_index_holds_the_cases_with_an_active_running_sla(tables: Tables) -> None:
    tables.migrate()

    store = tables.store()
    far = T0 + timedelta(days=30)
    assert sorted(store.due_before(far)) == sorted([(DOMAIN, BREACHED), (DOMAIN, REOPENED)])
    grace = SLA_SETTINGS.breach_grace
    for case_id in (BREACHED, REOPENED):
        target = store.load(DOMAIN, case_id).states()[RESOLVE].target_time
        item = tables.client.get_item(TableName=NEW_TABLE, Key=case_key(case_id))["Item"]
        assert item["due_at"]["S"] == (target + grace).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    first_due = store.load(DOMAIN, BREACHED).states()[RESOLVE].target_time + grace
    assert store.due_before(first_due) == []
    assert store.due_before(first_due + timedelta(microseconds=1)) == [(DOMAIN, BREACHED)]


def test_only_the_migration_s_claim_is_written(tables: Tables) -> None:
    tables.migrate()

    store = tables.store()
    for case_id in CASES:
        record = store.load(DOMAIN, case_id, claim_key=MIGRATION_CLAIM)
        assert record.claims_size == 1
        assert record.claim == Claim(NOW, done=True)


# --- idempotent ------------------------------------------------------------------------------------


def test_a_second_run_skips_every_case_and_writes_nothing(tables: Tables) -> None:
    tables.migrate()
    before = tables.new_items()

    again = tables.migrate()

    assert summary(again) == {
        "cases_read": 4,
        "migrated": 0,
        "skipped_present": 4,
        "failed": 0,
        "open_slas": 0,
        "due_cases": 0,
    }
    assert again.present_since_upgrade == []  # all written by a migration
    assert tables.new_items() == before


def test_a_case_written_since_the_upgrade_is_not_overwritten(tables: Tables) -> None:
    """An event handled by the new version before the migration ran: its record is newer, it stays."""
    store = tables.store()
    newer = tables.old.snapshots.get(DOMAIN, PAUSED).model_copy(update={"version": NOW})  # type: ignore[union-attr]
    obs = Observation(NOW, ObsKind.CASE, fields=case_fields({"status": "closed"}))
    store.commit(
        CaseRecord(DOMAIN, PAUSED),
        CaseChange(
            claim_key="event-after-upgrade", claim=Claim(NOW, done=True), snapshot=newer, appended=(obs,)
        ),
    )
    before = [i for i in tables.new_items() if i["pk"]["S"] == f"CASE#{PAUSED}"]

    report = tables.migrate()

    assert (report.migrated, report.skipped_present, report.present_since_upgrade) == (3, 1, [PAUSED])
    assert [i for i in tables.new_items() if i["pk"]["S"] == f"CASE#{PAUSED}"] == before
    assert report.as_dict()["present_since_upgrade"] == [PAUSED] and PAUSED in report.render()


def test_a_first_write_that_wins_the_race_keeps_its_record(tables: Tables) -> None:
    """A record written between the migration's read and its write: the conditional put loses, the case is
    skipped as present."""
    migration = tables.migration()
    real_load = migration.store.load

    def load_then_event(domain_id: str, case_id: str, **kwargs: Any) -> CaseRecord:
        record = real_load(domain_id, case_id, **kwargs)
        if case_id == BREACHED:
            tables.store().commit(
                CaseRecord(DOMAIN, BREACHED),
                CaseChange(claim_key="event-meanwhile", claim=Claim(NOW, done=True)),
            )
        return record

    migration.store.load = load_then_event  # type: ignore[method-assign]
    report = migration.run()

    assert (report.migrated, report.skipped_present, report.present_since_upgrade) == (3, 1, [BREACHED])
    assert tables.store().load(DOMAIN, BREACHED).states() == {}  # the event's record, not the old state


def test_dry_run_plans_every_case_and_writes_nothing(tables: Tables) -> None:
    dry = tables.migrate(dry_run=True)

    assert tables.new_items() == []
    assert dry.dry_run
    assert summary(dry) == summary(tables.migrate())
    assert "would be migrated" in dry.render() and "dry run: nothing written" in dry.render()


# --- what is not carried over ------------------------------------------------------------------------


def test_malformed_items_fail_their_case_with_a_reason_and_no_value(tables: Tables) -> None:
    bad_log, bad_view, bad_mark = (f"0bad0000-0000-4000-8000-00000000000{n}" for n in (1, 2, 3))
    tables.put_old({"pk": {"S": f"CASE#{bad_log}"}, "sk": {"S": "SLALOG"}, "observations": {"S": "[{"}})
    view = {
        "domain_id": DOMAIN,
        "case_id": bad_view,
        "version": "yesterday",
        "fields": {"title": CUSTOMER_VALUE},
    }
    tables.put_old(
        {"pk": {"S": f"CASE#{bad_view}"}, "sk": {"S": "SNAPSHOT"}, "view": {"S": json.dumps(view)}}
    )
    tables.put_old(
        {"pk": {"S": f"CASE#{bad_mark}"}, "sk": {"S": "NOTIFY#STATUS"}, "latest_status": {"S": "x"}}
    )

    report = tables.migrate()

    assert report.failed == {
        bad_log: "SLALOG: the observations are not JSON",
        bad_view: "SNAPSHOT: the view does not validate "
        "(version: datetime_from_date_parsing; fields.title: model_type)",
        bad_mark: "NOTIFY#STATUS: no latest_at or latest_status",
    }
    assert (report.cases_read, report.migrated) == (7, 4)
    assert {i["pk"]["S"] for i in tables.new_items()} == {f"CASE#{c}" for c in CASES}
    for text in (report.render(), json.dumps(report.as_dict())):
        assert CUSTOMER_VALUE not in text


def test_items_of_unknown_shape_are_counted_and_skipped(tables: Tables) -> None:
    tables.put_old({"pk": {"S": f"CASE#{PAUSED}"}, "sk": {"S": "EXPORT#2026-11-23"}, "n": {"N": "1"}})
    tables.put_old({"pk": {"S": "TENANT#acme"}, "sk": {"S": "CONFIG"}})

    report = tables.migrate()

    assert report.unknown_items == {"CASE#* / EXPORT#*": 1, "TENANT#* / CONFIG": 1}
    assert report.ok and report.migrated == 4
    assert tables.store().load(DOMAIN, PAUSED).states() == tables.old.states(DOMAIN, PAUSED)


def test_cases_of_another_domain_and_expired_cases_are_skipped(tables: Tables) -> None:
    created = Observation(T0, ObsKind.CASE, fields=case_fields({"status": "open"}), created=T0)
    tables.old.observe("another-domain", "case-elsewhere", [created], now=T0)
    long_ago = T0 - timedelta(days=500)  # main's TTL (400 days after the last change) has passed
    tables.old.observe(
        DOMAIN, "case-forgotten", [Observation(long_ago, ObsKind.CASE, created=long_ago)], now=T0
    )

    report = tables.migrate()

    assert (report.skipped_other_domain, report.skipped_empty, report.migrated) == (1, 1, 4)
    assert report.expired_items == 2  # the forgotten case's log and its SLA item
    assert {i["pk"]["S"] for i in tables.new_items()} == {f"CASE#{c}" for c in CASES}


def test_a_policy_changed_since_folds_anew_and_is_reported(tables: Tables) -> None:
    """The fold is recomputed under the configured policies: a target shortened since turns a met first
    response into a missed one, and the report says so."""
    changed = SLA_SETTINGS.model_dump(mode="json", exclude_defaults=True)
    changed["sla_policies"][0]["target_minutes"] = 5
    settings = Settings.from_mapping(changed)

    report = tables.migrate(settings)

    first = (
        tables.store(compile_policies(settings.sla_policies, settings.field_id))
        .load(DOMAIN, PAUSED)
        .states()[FIRST]
    )
    assert first.status is SlaStatus.NOT_MET
    assert report.differences == [
        SlaDifference(
            PAUSED,
            FIRST,
            f"Met until {(T0 + timedelta(minutes=30)).strftime('%Y-%m-%dT%H:%M:%S.%fZ')}",
            f"NotMet until {(T0 + timedelta(minutes=5)).strftime('%Y-%m-%dT%H:%M:%S.%fZ')}",
        )
    ]


def test_a_log_over_the_new_budget_is_compacted_as_the_product_would(tables: Tables) -> None:
    """main kept up to 256 KiB of log JSON, this version 160 KiB: a larger log is compacted (settled
    observations repeating their predecessor's values go) and folds to the same SLAs."""
    case_id, note = "case-chatty", "x" * 400
    start = T0 - timedelta(days=3)
    created = Observation(start, ObsKind.CASE, fields=case_fields({"status": "open"}), created=start)
    chatter = [
        Observation(
            start + timedelta(minutes=5 * n),
            ObsKind.CASE,
            fields=case_fields({"status": "open", "note": note}),
        )
        for n in range(1, 500)
    ]
    log = CaseSlaLog(DOMAIN, case_id, (created, *chatter))  # as main's merge kept it (256 KiB budget)
    tables.old.slas.save(SlaCaseRecord.empty(DOMAIN, case_id), log, list(evaluate(log, POLICIES).values()))
    assert json_bytes(log.observations) > MAX_LOG_BYTES

    report = tables.migrate()

    record = tables.store().load(DOMAIN, case_id, with_log=True)
    assert report.ok and record.log_bytes <= MAX_LOG_BYTES
    assert record.log is not None and len(record.log) < len(log.observations)
    assert record.states() == tables.old.states(DOMAIN, case_id)


# --- errors -------------------------------------------------------------------------------------------


def _failing_commit(migration: StateMigration, case_id: str | None, code: str) -> None:
    """The migration's writes of `case_id` (None: of every case) fail with `code`."""
    real_commit = migration.store.commit

    def commit(old: CaseRecord, change: CaseChange) -> CaseRecord:
        if case_id is None or old.case_id == case_id:
            raise ClientError({"Error": {"Code": code, "Message": "no"}}, "PutItem")
        return real_commit(old, change)

    migration.store.commit = commit  # type: ignore[method-assign]


def test_a_write_that_fails_fails_its_case_and_the_next_run_migrates_it(tables: Tables) -> None:
    migration = tables.migration()
    _failing_commit(migration, REOPENED, "ThrottlingException")

    report = migration.run()

    assert report.failed == {REOPENED: "ThrottlingException: not written"}
    assert (report.migrated, report.open_slas) == (3, 3)
    again = tables.migrate()
    assert (again.migrated, again.skipped_present, again.ok) == (1, 3, True)
    assert tables.store().load(DOMAIN, REOPENED).states() == tables.old.states(DOMAIN, REOPENED)


def test_an_error_every_case_would_meet_stops_the_run(tables: Tables) -> None:
    migration = tables.migration()
    _failing_commit(migration, None, "AccessDeniedException")
    report = migration.new_report()

    with pytest.raises(ClientError, match="AccessDenied"):
        migration.run(report)

    assert (report.cases_read, report.failed) == (1, {})
