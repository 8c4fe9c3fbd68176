"""`casewatch migrate-state`: an earlier casewatch's state carried into this version's table.

Before issue 13 casewatch kept several items per case in its state table (`StateTable`: the enriched
view, the SLA observation log, one item per SLA, the status order) and Powertools idempotency records in
another (`IdempotencyTable`). This version keeps one record per case in a new table (`CaseTable`, see
`casewatch.adapters.dynamodb_case_store`); CloudFormation retains the old tables. Run once after the
deploy, the command copies each case's view, log and status order into a record, folds its SLAs again
under the configured policies, and writes it through `DynamoDbCaseStore` as the product would.

- `old_items`: the old item formats, read (main's adapters' formats, exactly);
- `migration`: the scan, the plan of each case's record, the write;
- `report`: what a run did (text and JSON);
- `command`: the command line.
"""

from casewatch_dev.migrate_state.command import register, run

__all__ = ["register", "run"]
