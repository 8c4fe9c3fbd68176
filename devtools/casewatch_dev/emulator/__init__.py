"""A local Amazon Connect Cases (dev-only): the real REST-JSON protocol, events, search with an index
lag, quotas and faults.

with CasesEmulator(clock=VirtualClock(start), seed=7, getcase_quota=True) as emu:
    cases = emu.client()                      # over HTTP on 127.0.0.1

emu = CasesEmulator(clock=clock, quotas=REAL_QUOTAS, search_index_lag=timedelta(seconds=3))
cases = emu.attach(product_client)            # in process: no server, no socket
"""

from casewatch_dev.emulator._protocol import ApiError
from casewatch_dev.emulator.emulator import (
    DEFAULT_IAM_PRINCIPAL,
    DEFAULT_SEARCH_INDEX_LAG,
    GETCASE_QUOTA,
    IN_PROCESS_ENDPOINT,
    REAL_QUOTAS,
    CallRecord,
    CasesEmulator,
    TokenBucket,
)

__all__ = [
    "DEFAULT_IAM_PRINCIPAL",
    "DEFAULT_SEARCH_INDEX_LAG",
    "GETCASE_QUOTA",
    "IN_PROCESS_ENDPOINT",
    "REAL_QUOTAS",
    "ApiError",
    "CallRecord",
    "CasesEmulator",
    "TokenBucket",
]
