"""Pure decisions: enrichment plan, SLA state machine, notification rules (no I/O)."""
