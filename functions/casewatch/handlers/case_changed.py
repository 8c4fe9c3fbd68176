"""case-changed: CASE.CREATED / CASE.UPDATED / CASE.DELETED -> enriched case view -> sinks."""

from casewatch.handlers._event_handler import event_handler
from casewatch.topology import CASE_CHANGED

handler = event_handler(CASE_CHANGED)
