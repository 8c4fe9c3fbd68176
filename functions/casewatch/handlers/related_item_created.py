"""related-item-created: RELATED_ITEM.CREATED (comment, contact, file, SLA, ...) -> case view -> sinks."""

from casewatch.handlers._event_handler import event_handler
from casewatch.topology import RELATED_ITEM_CREATED_FN

handler = event_handler(RELATED_ITEM_CREATED_FN)
