"""The `casewatch` command line (dev-only). Each command lives in its own module with `register()`."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import TextIO

from casewatch import __version__
from casewatch.errors import CasewatchError
from casewatch_dev import capture, doctor, generate, invoke, migrate_state, replay, sla_cli, validate
from casewatch_dev.event_files import UsageError
from casewatch_dev.replay_diff import command as replay_diff

COMMANDS = [validate, generate, invoke, replay, replay_diff, sla_cli, capture, doctor, migrate_state]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="casewatch", description="Amazon Connect Cases events, locally.")
    parser.add_argument("--version", action="version", version=f"casewatch {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in COMMANDS:
        module.register(commands)
    return parser


def main(argv: Sequence[str] | None = None, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse exits 2 on usage errors, 0 on --help
        return int(exc.code or 0)
    try:
        return int(args.run(args, out))
    except UsageError as exc:
        print(f"casewatch: {exc}", file=sys.stderr)
        return 2
    except CasewatchError as exc:
        print(f"casewatch: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
