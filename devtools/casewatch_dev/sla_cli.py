"""`casewatch sla show CASE_ID`: the SLAs casewatch tracks for a case, their state and time left.

Reads a deployed state table (`--table`, else `CASEWATCH_SLA_TABLE`) with your AWS credentials;
the local pipeline prints its moto table with the same `render_slas`.
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, TextIO

from casewatch.constants import ENV_SLA_TABLE
from casewatch.domain.sla.model import SlaState, SlaStatus
from casewatch.domain.values import sortable_iso as iso
from casewatch.errors import CasewatchError
from casewatch_dev.event_files import UsageError
from casewatch_dev.sla_items import SlaItem, case_slas

COLUMNS = ("SLA", "ORIGIN", "STATUS", "TARGET (UTC)", "TIME LEFT", "COMPLETED (UTC)")


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "sla",
        help="SLA tracking: show a case's SLAs",
        description="Inspect the SLAs casewatch tracks (from the state table).",
    )
    actions = parser.add_subparsers(dest="sla_command", required=True, metavar="ACTION")
    show = actions.add_parser(
        "show",
        help="print a case's SLAs: state, target, time left, completion",
        description="Print the SLAs of CASE_ID from a deployed state table. Exit 0 when some are "
        "tracked, 1 when none are (or the table cannot be read), 2 on usage errors.",
    )
    show.add_argument("case_id", metavar="CASE_ID")
    show.add_argument("--table", help=f"the state table (default: ${ENV_SLA_TABLE})")
    show.add_argument("--region", help="the AWS Region of the table (default: your AWS configuration)")
    show.add_argument("--json", action="store_true", help="print JSON instead of a table")
    show.add_argument(
        "--config", default="cdk.json", help="cdk.json with the `casewatch` settings (the SLA policies)"
    )
    show.set_defaults(run=run_show)


def _duration(delta: timedelta) -> str:
    seconds = int(abs(delta.total_seconds()))
    days, rest = divmod(seconds, 86_400)
    hours, rest = divmod(rest, 3_600)
    minutes, seconds = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes:02d}m"
    if minutes:
        return f"{minutes}m {seconds:02d}s"
    return f"{seconds}s"


def _when(moment: datetime | None) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S") if moment is not None else "-"


def _state(item: SlaItem | SlaState) -> SlaState:
    return item.state if isinstance(item, SlaItem) else item


def time_left(state: SlaState, now: datetime) -> str:
    """`12m 30s left`, `overdue by 1h 05m`, `met 20m early`, `not met: 15m late`, `-`."""
    if state.status is SlaStatus.ACTIVE:
        left = state.time_left(now)
        text = f"{_duration(left)} left" if left.total_seconds() > 0 else f"due {_duration(left)} ago"
        return f"{text} (paused)" if state.paused else text
    if state.status is SlaStatus.OVERDUE:
        return f"overdue by {_duration(now - state.target_time)}"
    if state.completion_time is not None and state.status is SlaStatus.MET:
        return f"met {_duration(state.target_time - state.completion_time)} early"
    if state.completion_time is not None and state.status is SlaStatus.NOT_MET:
        return f"{_duration(state.completion_time - state.target_time)} late"
    return "-"


def render_slas(items: Sequence[SlaItem | SlaState], now: datetime) -> str:
    """A table of SLAs (one line each) as of `now`; a sentence when there are none."""
    states = sorted((_state(i) for i in items), key=lambda s: (s.started_at, s.key))
    if not states:
        return "no SLAs tracked"
    rows = [COLUMNS]
    for s in states:
        name = s.name if s.cycle <= 1 else f"{s.name} (#{s.cycle})"
        rows.append(
            (
                name,
                s.origin.value,
                s.status.value,
                _when(s.target_time),
                time_left(s, now),
                _when(s.completion_time),
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(COLUMNS))]
    return "\n".join(
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows
    )


def sla_document(item: SlaItem | SlaState, now: datetime) -> dict[str, Any]:
    """One SLA as JSON (ids, times and states; the completion values are configuration, not case data)."""
    s = _state(item)
    return {
        "sla": s.key,
        "name": s.name,
        "origin": s.origin.value,
        "status": s.status.value,
        "cycle": s.cycle,
        "startedAt": iso(s.started_at),
        "targetTime": iso(s.target_time),
        "secondsLeft": round(s.time_left(now).total_seconds(), 3) if s.status.is_open else None,
        "paused": s.paused,
        "pausedSeconds": s.paused_seconds,
        "completionTime": iso(s.completion_time) if s.completion_time else None,
        "history": [{"at": iso(t.at), "status": t.status.value, "cycle": t.cycle} for t in s.history],
    }


def run_show(args: argparse.Namespace, out: TextIO) -> int:
    from botocore.exceptions import BotoCoreError, ClientError

    from casewatch.adapters import clients
    from casewatch.adapters.dynamodb_case_store import DynamoDbCaseStore
    from casewatch.bootstrap import policies
    from casewatch.settings import load_cdk_context

    table = args.table or os.environ.get(ENV_SLA_TABLE)
    if not table:
        raise UsageError(f"name the state table with --table or ${ENV_SLA_TABLE}")
    if args.region:
        os.environ["AWS_DEFAULT_REGION"] = args.region
        clients.reset_clients()
    try:
        settings = load_cdk_context(args.config)
        store = DynamoDbCaseStore(table, clients.dynamodb_client(), policies(settings))
        items = case_slas(store, settings.domain_id, args.case_id)
    except (ClientError, BotoCoreError) as exc:
        raise CasewatchError(f"cannot read table {table}: {exc}") from None
    now = datetime.now(UTC)
    if args.json:
        print(
            json.dumps({"caseId": args.case_id, "slas": [sla_document(i, now) for i in items]}, indent=2),
            file=out,
        )
    else:
        print(f"case {args.case_id}", file=out)
        print(render_slas(items, now), file=out)
    return 0 if items else 1


__all__ = ["register", "render_slas", "run_show", "sla_document", "time_left"]
