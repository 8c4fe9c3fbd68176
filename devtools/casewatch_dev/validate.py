"""`casewatch validate PATH...`: check event files against the Cases event contract."""

from __future__ import annotations

import argparse
from typing import TextIO

from casewatch.errors import InvalidCaseEventError
from casewatch_dev.event_files import iter_events


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "validate",
        help="validate event files (.json, .jsonl, or directories of them)",
        description="Print one line per event: its kind, or why it is invalid. "
        "Exit 0 if every event is valid or unhandled, 1 if any is invalid, 2 on usage errors.",
    )
    parser.add_argument("paths", nargs="+", metavar="PATH")
    parser.add_argument("-r", "--recursive", action="store_true", help="descend into sub-directories")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace, out: TextIO) -> int:
    counts = {"valid": 0, "unhandled": 0, "invalid": 0}
    for raw in iter_events(args.paths, recursive=args.recursive):
        try:
            event = raw.parse()
        except InvalidCaseEventError as exc:
            counts["invalid"] += 1
            print(f"invalid    {raw.origin}  {exc.reason}", file=out)
            continue
        kind = "valid" if event.handled else "unhandled"
        counts[kind] += 1
        print(f"{kind:<10} {raw.origin}  {event.summary()}", file=out)
    total = sum(counts.values())
    valid, unhandled, invalid = counts["valid"], counts["unhandled"], counts["invalid"]
    print(f"{total} event(s): {valid} valid, {unhandled} unhandled, {invalid} invalid", file=out)
    return 1 if counts["invalid"] or total == 0 else 0
