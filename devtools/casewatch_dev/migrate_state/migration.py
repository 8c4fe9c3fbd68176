"""The migration: the old table scanned case by case, each case written as one new record.

For each case of the old table (its items come together in the Scan: DynamoDB stores and scans the items
of a partition key side by side), `plan_case` builds the `CaseChange` the product's first write of a case
would make (`casewatch.app.case_update`): the view, the observation log (merged as the product merges it,
compacted if it outgrew the new budget), the fold of that log under the configured policies at the log's
horizon, the status order marks, and the `due` index entry of the earliest Active, running SLA (its target
plus `breach_grace`). `DynamoDbCaseStore.commit` writes it: the observation items, then the case item,
conditional on no record being there (a record written meanwhile wins: the case is skipped).

Only the migration's own claim is written (done): the old idempotency records are not carried over. They
only recognise redeliveries of events handled before the upgrade; such an event delivered again may send
its notifications again (its observations are in the log already, so the SLAs do not change).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Final

from botocore.exceptions import ClientError

from casewatch.adapters.dynamodb_case_store import DynamoDbCaseStore
from casewatch.domain.case_record import CaseChange, CaseRecord, Claim
from casewatch.domain.sla.fold import fold
from casewatch.domain.sla.log import CaseSlaLog
from casewatch.domain.sla.model import PolicySpec, SlaConflictError, SlaItemTooLargeError, SlaState, SlaStatus
from casewatch.domain.values import sortable_iso
from casewatch.settings import Settings
from casewatch_dev.migrate_state.old_items import OldCase, OldItemError, OldSla, case_id_of, read_case, shape
from casewatch_dev.migrate_state.report import MigrationReport, SlaDifference

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

MIGRATION_CLAIM: Final = "migrate-state:StateTable"  # the claim key of the migration's write of a case
# Errors that would fail every case alike: the run stops instead of failing each case.
FATAL_CODES: Final = frozenset(
    {
        "AccessDeniedException",
        "ResourceNotFoundException",
        "UnrecognizedClientException",
        "InvalidSignatureException",
        "ExpiredTokenException",
        "MissingAuthenticationTokenException",
    }
)
PROGRESS_EVERY: Final = 1000  # cases

Item = Mapping[str, Any]


def plan_case(
    old: OldCase,
    domain_id: str,
    policies: Sequence[PolicySpec],
    breach_grace: timedelta,
    now: datetime,
) -> tuple[CaseChange, dict[str, SlaState]]:
    """The first write of the case's record, as `CaseUpdater` makes one, and the SLA states it holds."""
    observations = old.log.observations if old.log is not None else ()
    log = CaseSlaLog(domain_id, old.case_id).merge(observations)  # sorted, one per identity, within budget
    horizon = old.log.horizon if old.log is not None else None
    folded = fold(log, policies)
    states = folded.states(horizon)
    due = [
        s.target_time + breach_grace for s in states.values() if s.status is SlaStatus.ACTIVE and not s.paused
    ]
    change = CaseChange(
        claim_key=MIGRATION_CLAIM,
        claim=Claim(now, done=True),
        snapshot=old.snapshot,
        fold=folded,
        horizon=horizon,
        appended=log.observations,
        status_order=dict(old.status_order),
        due_at=min(due, default=None),
    )
    return change, states


def differences(old: OldCase, states: Mapping[str, SlaState]) -> list[SlaDifference]:
    """SLAs the new fold sees otherwise than the old items (status or target): those the old table kept,
    and open ones it did not have (a policy configured since)."""
    found = []
    for key in sorted(old.slas.keys() | states.keys()):
        before, after = old.slas.get(key), states.get(key)
        if before is None and (after is None or not after.status.is_open):
            continue
        if _timing(before) != _timing(after):
            found.append(SlaDifference(old.case_id, key, _describe(before), _describe(after)))
    return found


def _timing(sla: OldSla | SlaState | None) -> tuple[SlaStatus, datetime] | None:
    return (sla.status, sla.target_time) if sla is not None else None


def _describe(sla: OldSla | SlaState | None) -> str:
    if sla is None:
        return "(absent)"
    return f"{sla.status.value} until {sortable_iso(sla.target_time)}"


class StateMigration:
    """Copies the old state table into the new one through `DynamoDbCaseStore` (see the module docstring)."""

    def __init__(
        self,
        *,
        client: DynamoDBClient,
        source_table: str,
        target_table: str,
        settings: Settings,
        policies: Sequence[PolicySpec],
        dry_run: bool = False,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        progress: Callable[[MigrationReport], None] | None = None,
    ) -> None:
        self.client = client
        self.source_table = source_table
        self.settings = settings
        self.policies = tuple(policies)
        self.store = DynamoDbCaseStore(target_table, client, self.policies)
        self.dry_run = dry_run
        self.clock = clock
        self.progress = progress

    def new_report(self) -> MigrationReport:
        return MigrationReport(self.source_table, self.store.table_name, dry_run=self.dry_run)

    def run(self, report: MigrationReport | None = None) -> MigrationReport:
        """Every case of the old table, counted in `report`. An error of the Scan itself propagates (the
        report says how far it got; a new run skips the cases migrated)."""
        report = report if report is not None else self.new_report()
        for case_id, items in self._cases(report):
            self.migrate(report, case_id, items)
            if self.progress is not None and report.cases_read % PROGRESS_EVERY == 0:
                self.progress(report)
        return report

    def _cases(self, report: MigrationReport) -> Iterator[tuple[str, list[Item]]]:
        """The old table's items, a case at a time (items of other shapes are counted and skipped)."""
        pages = self.client.get_paginator("scan").paginate(TableName=self.source_table)
        done: set[str] = set()
        current: str | None = None
        items: list[Item] = []
        for page in pages:
            for item in page.get("Items", []):
                report.items_read += 1
                case_id = case_id_of(item)
                if case_id is None:
                    report.add_unknown(shape(item))
                    continue
                if case_id != current:
                    if current is not None and current not in done:
                        done.add(current)
                        yield current, items
                    elif current is not None:  # never seen on DynamoDB: say so, do not migrate it twice
                        report.failed[current] = "its items came apart in the Scan: check this case"
                    current, items = case_id, []
                items.append(item)
        if current is not None and current not in done:
            yield current, items
        elif current is not None:
            report.failed[current] = "its items came apart in the Scan: check this case"

    def migrate(self, report: MigrationReport, case_id: str, items: Sequence[Item]) -> None:
        """One case: read, skip or plan, write; every failure is the case's, reported with its reason."""
        report.cases_read += 1
        now = self.clock()
        try:
            old = read_case(case_id, items, now)
        except OldItemError as exc:
            report.failed[case_id] = str(exc)
            return
        report.expired_items += old.expired_items
        for kind, count in old.unknown_items.items():
            report.add_unknown(kind, count)
        if old.empty:
            report.skipped_empty += 1
            return
        domain_id = old.domain_id or self.settings.domain_id
        if domain_id != self.settings.domain_id:  # its events no longer reach casewatch
            report.skipped_other_domain += 1
            return
        try:
            self._write(report, old, domain_id, now)
        except ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code", ""))
            if code in FATAL_CODES:
                raise
            report.failed[case_id] = f"{code or 'ClientError'}: not written"
        except Exception as exc:  # a case that cannot be planned or written must not stop the others
            report.failed[case_id] = f"{type(exc).__name__}: not written"

    def _write(self, report: MigrationReport, old: OldCase, domain_id: str, now: datetime) -> None:
        record = self.store.load(domain_id, old.case_id, claim_key=MIGRATION_CLAIM)
        if record.revision:
            self._present(report, old.case_id, record)
            return
        change, states = plan_case(old, domain_id, self.policies, self.settings.breach_grace, now)
        if not self.dry_run:
            try:
                self.store.commit(record, change)
            except SlaConflictError:  # a first write of the case won meanwhile (an event)
                self._present(report, old.case_id, None)
                return
            except SlaItemTooLargeError:
                report.failed[old.case_id] = "the record would be over DynamoDB's item size limit"
                return
        report.migrated += 1
        report.open_slas += sum(s.status.is_open for s in states.values())
        report.due_cases += change.due_at is not None
        report.observations += len(change.appended)
        report.status_marks += len(change.status_order)
        report.differences += differences(old, states)

    @staticmethod
    def _present(report: MigrationReport, case_id: str, record: CaseRecord | None) -> None:
        report.skipped_present += 1
        if record is None or record.claim is None:  # not written by a migration: by events since
            report.present_since_upgrade.append(case_id)


__all__ = ["MIGRATION_CLAIM", "StateMigration", "differences", "plan_case"]
