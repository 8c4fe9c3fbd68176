"""What a replay observed, compared, and shown: `casewatch replay --compare/--items/--html`, `casewatch diff`.

- `observed`: one replay's items (notifications, enriched bus events, dead letters, SLA outcomes and
  transitions, deliveries, requests) and their JSON;
- `messages`: what the stack's subscribers received, read into items, case data withheld;
- `recording`: what is recorded while the replay runs (deliveries and their lag, every request to AWS);
- `changes`: the item-by-item difference of two observations;
- `text`, `page` (with `figures`): the two renderers (terminal, one self-contained HTML page);
- `command`: the command line (`replay --compare ...`, `diff A.json B.json`).

The manual is README.md, "Test a change with replay".
"""
