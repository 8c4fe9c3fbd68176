"""The state casewatch kept before issue 13, written by main's own code (for `casewatch migrate-state`).

The modules here are main's adapters and SLA fold, vendored from main@22fc270 (`git show main:<path>`),
unchanged but for imports of modules that no longer exist: `sla_store` (items `SLALOG` and `SLA#...`),
`snapshots` (`SNAPSHOT`), `status_order` (`NOTIFY#STATUS[#REPLAY#<name>]`), `records`, `fold` (its
`evaluate`: the SLA states the old design derived), `tables` (the old `StateTable` and its `due` index).
`deployment.OldDeployment` drives them the way main's functions did, so a test's old table holds exactly
the items a running deployment of main would hold.
"""
