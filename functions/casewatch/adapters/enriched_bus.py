"""`EventBridgeEnrichedBus`: the `EnrichedBus` port on casewatch's own EventBridge bus.

PutEvents takes at most 10 entries and 256 KiB per call: entries are batched by both. Failed entries
(`FailedEntryCount`, per-entry `ErrorCode`) are retried alone with bounded, jittered backoff; permanent
errors (validation, access) are not retried. What still fails is raised as `EnrichedBusError`
(retryable: the event is processed again, idempotently). The events' shapes: README (Notifications).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Final

from casewatch.backoff import full_jitter
from casewatch.constants import ENRICHED_SOURCE
from casewatch.domain.notifications.bus import BusEvent
from casewatch.domain.notifications.documents import without_field_values
from casewatch.errors import EnrichedBusError
from casewatch.observability import logger

if TYPE_CHECKING:
    from mypy_boto3_events import EventBridgeClient
    from mypy_boto3_events.type_defs import PutEventsRequestEntryTypeDef


MAX_ENTRIES: Final = 10
MAX_REQUEST_BYTES: Final = 262_144  # PutEvents: the sum of every entry's size
_PERMANENT: Final = frozenset(
    {
        "ValidationException",
        "InvalidArgument",
        "MalformedDetail",
        "AccessDeniedException",
        "NotAuthorizedForSourceException",
        "ResourceNotFoundException",
    }
)


def entry_size(entry: PutEventsRequestEntryTypeDef) -> int:
    """An entry's size as EventBridge counts it (AWS's "Calculating PutEvents event entry size")."""
    size = 14 if "Time" in entry else 0
    size += len(entry.get("Source", "").encode()) + len(entry.get("DetailType", "").encode())
    size += len(entry.get("Detail", "").encode())
    size += sum(len(r.encode()) for r in entry.get("Resources", []))
    return size


def batches(entries: Sequence[PutEventsRequestEntryTypeDef]) -> Iterator[list[PutEventsRequestEntryTypeDef]]:
    """Consecutive batches of <= 10 entries and <= 256 KiB."""
    batch: list[PutEventsRequestEntryTypeDef] = []
    size = 0
    for entry in entries:
        this = entry_size(entry)
        if batch and (len(batch) == MAX_ENTRIES or size + this > MAX_REQUEST_BYTES):
            yield batch
            batch, size = [], 0
        batch.append(entry)
        size += this
    if batch:
        yield batch


class EventBridgeEnrichedBus:
    """PutEvents to one bus. The client is made lazily (`casewatch.adapters.clients`)."""

    def __init__(
        self,
        bus_name: str,
        *,
        client: EventBridgeClient | None = None,
        max_attempts: int = 4,
        base_delay_s: float = 0.1,
        max_delay_s: float = 2.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.bus_name = bus_name
        self._client = client
        self.max_attempts = max(1, max_attempts)
        self.base_delay_s = base_delay_s
        self.max_delay_s = max_delay_s
        self._sleep = sleep

    @property
    def client(self) -> EventBridgeClient:
        if self._client is None:
            from casewatch.adapters.clients import events_client

            self._client = events_client()
        return self._client

    def entry(self, event: BusEvent) -> PutEventsRequestEntryTypeDef:
        detail = json.dumps(event.detail, separators=(",", ":"), ensure_ascii=False)
        entry: PutEventsRequestEntryTypeDef = {
            "Source": ENRICHED_SOURCE,
            "DetailType": event.detail_type,
            "Detail": detail,
            "Time": event.time,
            "EventBusName": self.bus_name,
        }
        if event.resources:
            entry["Resources"] = list(event.resources)
        if entry_size(entry) > MAX_REQUEST_BYTES:
            entry["Detail"] = json.dumps(without_field_values(event.detail), separators=(",", ":"))
        return entry

    def put(self, events: Sequence[BusEvent]) -> int:
        """Put every event; the number put. Raises `EnrichedBusError` if some still fail."""
        entries = [self.entry(e) for e in events]
        for batch in batches(entries):
            self._put_batch(batch)
        return len(entries)

    def _put_batch(self, batch: list[PutEventsRequestEntryTypeDef]) -> None:
        from botocore.exceptions import ClientError

        pending = batch
        codes: tuple[str, ...] = ()
        failed: list[tuple[PutEventsRequestEntryTypeDef, str]] = []
        for attempt in range(1, self.max_attempts + 1):
            try:
                response = self.client.put_events(Entries=pending)
            except ClientError as exc:
                code = str(exc.response.get("Error", {}).get("Code", "Unknown"))
                raise EnrichedBusError(
                    f"PutEvents failed with {code}", codes=(code,), retryable=code not in _PERMANENT
                ) from exc
            if not response.get("FailedEntryCount"):
                return
            results = response["Entries"]
            failed = [
                (entry, str(result.get("ErrorCode", "Unknown")))
                for entry, result in zip(pending, results, strict=True)
                if result.get("ErrorCode")
            ]
            codes = tuple(sorted({code for _, code in failed}))
            logger.warning(
                "putevents entries failed",
                failed=len(failed),
                error_codes=list(codes),
                attempt=attempt,
            )
            if any(code in _PERMANENT for _, code in failed) or attempt == self.max_attempts:
                break
            pending = [entry for entry, _ in failed]
            self._sleep(full_jitter(attempt, base_s=self.base_delay_s, cap_s=self.max_delay_s))
        raise EnrichedBusError(
            f"PutEvents: {len(failed)} entries failed ({', '.join(codes)})",
            codes=codes,
            retryable=not any(code in _PERMANENT for code in codes),
        )
