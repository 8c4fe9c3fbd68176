"""A local Amazon Connect Cases (dev-only): the real REST-JSON protocol, events and faults.

with CasesEmulator(clock=VirtualClock(start), seed=7, getcase_quota=True) as emu:
    cases = emu.client()
"""

from casewatch_dev.emulator._protocol import ApiError
from casewatch_dev.emulator.emulator import (
    DEFAULT_IAM_PRINCIPAL,
    GETCASE_QUOTA,
    REAL_QUOTAS,
    CallRecord,
    CasesEmulator,
    TokenBucket,
)

__all__ = [
    "DEFAULT_IAM_PRINCIPAL",
    "GETCASE_QUOTA",
    "REAL_QUOTAS",
    "ApiError",
    "CallRecord",
    "CasesEmulator",
    "TokenBucket",
]
