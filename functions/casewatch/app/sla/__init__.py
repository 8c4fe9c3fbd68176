"""SLA tracking use cases: a case event, a timer, reconciliation; one apply loop under all three."""
