"""`make bench`: measure, write bench-results.json (with its `summary` object), print the tables.

Goals are reported, not tuned for. The parts, each in its module:

- `handler_cost`: the event path's CPU per event (p50 over the sample archive; a case's 1st..500th event);
- `requests`: AWS requests and DynamoDB write units per event kind, counted on the moto backend's real
  boto3 clients, beside the floor of a design with the same guarantees; the functions' CPU per invocation;
- `lambda_time`: Lambda time per event from those requests x stated latencies + CPU scaled to 256 MB;
- `casewatch_dev.capacity`: the highest sustained rate per includedData configuration;
- `throughput`: offline replay on the memory and moto backends;
- `processes`: cold start, peak memory, the asset's size.

The `summary` object holds exactly the keys issue 13 lists (`SUMMARY_KEYS`); `before` holds issue 13's
figures for main (the README's Performance table puts them side by side).
"""

from __future__ import annotations

SUMMARY_KEYS = (
    "capacity_events_per_s",
    "breach_delay_s_p99",
    "aws_requests_per_event",
    "aws_requests_minimum",
    "dynamodb_wcu_per_event",
    "lambda_ms_per_event_estimate",
    "per_event_us_p50",
    "per_event_us_by_history",
    "replay_events_per_s_memory",
    "replay_events_per_s_moto",
    "cold_init_ratio_max",
    "peak_rss_mb",
    "asset_kb_zipped",
)

__all__ = ["SUMMARY_KEYS"]
