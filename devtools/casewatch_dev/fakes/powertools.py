"""Powertools idempotency records in memory, on a (virtual) clock.

Powertools stamps idempotency records with the wall clock; the local pipeline runs on a virtual clock.
`InMemoryPersistenceLayer` keeps records in virtual time and translates at its boundary by the current
offset between the two clocks (a record going out reads `virtual + (wall_now - virtual_now)`), so
Powertools' own comparisons ("has this in-progress record expired?") give the answers they would give
at that virtual time: an invocation that timed out holds its key for its remaining time on the virtual
clock, exactly like the DynamoDB layer's condition expression in AWS.
"""

from __future__ import annotations

import threading
import time

from aws_lambda_powertools.utilities.idempotency.exceptions import (
    IdempotencyItemAlreadyExistsError,
    IdempotencyItemNotFoundError,
)
from aws_lambda_powertools.utilities.idempotency.persistence.base import BasePersistenceLayer
from aws_lambda_powertools.utilities.idempotency.persistence.datarecord import STATUS_CONSTANTS, DataRecord

from casewatch.ports import Clock


class InMemoryPersistenceLayer(BasePersistenceLayer):
    """Powertools idempotency records in a dict, on the virtual clock (see the module docstring).

    The put condition is the DynamoDB layer's: the key is free, or its record expired, or it is in
    progress and its in-progress expiry passed. A refused put returns the stored record
    (`ReturnValuesOnConditionCheckFailure`), as the DynamoDB layer does.
    """

    def __init__(self, clock: Clock) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.clock = clock
        self._records: dict[str, DataRecord] = {}
        self._lock = threading.Lock()

    # -- the two clocks --------------------------------------------------------------------------
    def _offset_s(self) -> float:
        """wall - virtual, in seconds."""
        return time.time() - self.clock.now().timestamp()

    @staticmethod
    def _shift(record: DataRecord, seconds: float) -> DataRecord:
        return DataRecord(
            idempotency_key=record.idempotency_key,
            status=record._status,  # the stored status, not the derived EXPIRED
            expiry_timestamp=int(record.expiry_timestamp + seconds)
            if record.expiry_timestamp is not None
            else None,
            in_progress_expiry_timestamp=int(record.in_progress_expiry_timestamp + seconds * 1000)
            if record.in_progress_expiry_timestamp is not None
            else None,
            response_data=record.response_data,
            payload_hash=record.payload_hash,
            sort_key=record.sort_key,
        )

    # -- BasePersistenceLayer ------------------------------------------------------------------------
    def _get_record(self, idempotency_key: str) -> DataRecord:
        with self._lock:
            record = self._records.get(idempotency_key)
        if record is None:
            raise IdempotencyItemNotFoundError
        return self._shift(record, self._offset_s())

    def _put_record(self, data_record: DataRecord) -> None:
        offset = self._offset_s()
        now = self.clock.now().timestamp()
        with self._lock:
            stored = self._records.get(data_record.idempotency_key)
            if stored is not None and not _replaceable(stored, now):
                old = self._shift(stored, offset)
            else:
                self._records[data_record.idempotency_key] = self._shift(data_record, -offset)
                return
        self._save_to_cache(data_record=old)
        raise IdempotencyItemAlreadyExistsError(old_data_record=old)

    def _update_record(self, data_record: DataRecord) -> None:
        virtual = self._shift(data_record, -self._offset_s())
        with self._lock:
            stored = self._records.get(data_record.idempotency_key)
            if stored is not None:  # UpdateItem leaves the attributes it does not set
                virtual.in_progress_expiry_timestamp = stored.in_progress_expiry_timestamp
                virtual.payload_hash = virtual.payload_hash or stored.payload_hash
            self._records[data_record.idempotency_key] = virtual

    def _delete_record(self, data_record: DataRecord) -> None:
        with self._lock:
            self._records.pop(data_record.idempotency_key, None)

    def record_count(self) -> int:
        with self._lock:
            return len(self._records)

    def in_progress(self) -> int:
        """Records still INPROGRESS (an invocation died holding them)."""
        with self._lock:
            return sum(r._status == STATUS_CONSTANTS["INPROGRESS"] for r in self._records.values())


def _replaceable(stored: DataRecord, now_s: float) -> bool:
    if stored.expiry_timestamp is not None and stored.expiry_timestamp < int(now_s):
        return True
    return (
        stored._status == STATUS_CONSTANTS["INPROGRESS"]
        and stored.in_progress_expiry_timestamp is not None
        and stored.in_progress_expiry_timestamp < int(now_s * 1000)
    )


__all__ = ["InMemoryPersistenceLayer"]
