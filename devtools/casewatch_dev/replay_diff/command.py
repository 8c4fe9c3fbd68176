"""The command line of observed replays: `casewatch replay PATH --compare OTHER.json | --items | --html`,
and `casewatch diff A.json B.json` over two reports written with `--report json --items`.

Exit codes (both commands): 0 done; 1 an event was lost in a run (as `casewatch replay`); 2 usage;
3 `--fail-on-change` and something differs (notifications, SLA outcomes, enriched bus events or dead
letters). README.md, "Test a change with replay", is the manual.
"""

from __future__ import annotations

import argparse
import copy
import gzip
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, TextIO

from casewatch.settings import Settings, load_cdk_context
from casewatch_dev.event_files import RawEvent, UsageError
from casewatch_dev.replay_diff.changes import Comparison, Side
from casewatch_dev.replay_diff.observed import Observation

if TYPE_CHECKING:
    from casewatch_dev.replay import ReplayOptions, ReplayReport

EXIT_CHANGED: Final = 3


def add_replay_flags(parser: argparse.ArgumentParser) -> None:
    """`casewatch replay`'s flags for comparing, recording and drawing a run."""
    group = parser.add_argument_group("compare, record, draw (offline)")
    group.add_argument(
        "--compare",
        metavar="OTHER.json",
        help="replay the same deliveries again with OTHER.json's settings and report what differs",
    )
    group.add_argument(
        "--fail-on-change", action="store_true", help="with --compare: exit 3 when anything differs"
    )
    group.add_argument(
        "--items",
        action="store_true",
        help="with --report json: add every observed item (for `casewatch diff`)",
    )
    group.add_argument("--html", metavar="PAGE.html", help="write the run (or the comparison) as one page")
    group.add_argument(
        "--show", type=int, default=10, metavar="N", help="differences listed per group (text, default 10)"
    )


def observing(args: argparse.Namespace) -> bool:
    return bool(args.compare or args.items or args.html)


def check_replay_args(args: argparse.Namespace) -> None:
    if args.fail_on_change and not args.compare:
        raise UsageError("--fail-on-change needs --compare OTHER.json")
    if args.archive and observing(args):
        raise UsageError("--compare, --items and --html replay offline (PATH), not an AWS archive")
    if args.items and args.report != "json":
        raise UsageError("--items adds the observed items to the JSON report: use it with --report json")
    if args.show < 0:
        raise UsageError("--show takes a count >= 0")


def run_side(
    *,
    label: str,
    name: str,
    settings: Settings,
    raws: list[RawEvent],
    options: ReplayOptions,
    state: dict[str, Any] | None,
) -> tuple[ReplayReport, Side]:
    """One replay in its own pipeline (its own AWS and Cases), recorded: (ReplayReport, Side)."""
    from casewatch_dev.replay import run_offline
    from casewatch_dev.replay_diff.recording import Recorder

    recorder = Recorder()
    report = run_offline(settings, raws, options, copy.deepcopy(state), recorder)
    assert recorder.observation is not None
    return report, Side(label, name, report.as_dict(), recorder.observation)


def run_observed(
    args: argparse.Namespace,
    *,
    settings: Settings,
    raws: list[RawEvent],
    options: ReplayOptions,
    state: dict[str, Any] | None,
    out: TextIO,
) -> int:
    """`casewatch replay PATH` with --compare, --items or --html."""
    other_settings = load_cdk_context(args.compare) if args.compare else None  # fail before replaying
    report, base = run_side(
        label="base", name=args.config, settings=settings, raws=raws, options=options, state=state
    )
    if other_settings is None:
        if args.report == "json":
            data = {**base.report, "requests": base.requests()}
            if args.items:
                data["observed"] = base.observation.as_dict()
            print(json.dumps(data, sort_keys=True), file=out)
        else:
            from casewatch_dev.replay_diff.text import requests_table

            print(report.render(), file=out)
            print("\n".join(requests_table([base])), file=out)
        if args.html:
            _write_page(Path(args.html), [base], None)
        return 1 if report.lost else 0
    other_report, other = run_side(
        label="other", name=args.compare, settings=other_settings, raws=raws, options=options, state=state
    )
    comparison = Comparison.of(base, other)
    _print(comparison, args, out, items=args.items)
    if args.html:
        _write_page(Path(args.html), [base, other], comparison)
    if report.lost or other_report.lost:
        return 1
    return exit_code(comparison, args.fail_on_change)


def exit_code(comparison: Comparison, fail_on_change: bool) -> int:
    return EXIT_CHANGED if fail_on_change and not comparison.changes.empty else 0


def _print(comparison: Comparison, args: argparse.Namespace, out: TextIO, *, items: bool = False) -> None:
    if args.report == "json":
        print(json.dumps(comparison.as_dict(items=items), sort_keys=True), file=out)
    else:
        from casewatch_dev.replay_diff.text import render

        print(render(comparison, show=args.show), file=out)


def _write_page(path: Path, sides: list[Side], comparison: Comparison | None) -> None:
    from casewatch_dev.replay_diff.page import render_page

    page = render_page(sides, comparison.changes if comparison is not None else None)
    path.write_text(page, encoding="utf-8")
    print(f"casewatch: wrote {path} ({len(page.encode()) / 1e6:.1f} MB)", file=sys.stderr)


# --- casewatch diff ------------------------------------------------------------------------------------


def read_side(label: str, path: str) -> Side:
    """A side from a `casewatch replay ... --report json --items` report (`.gz` read as gzip)."""
    file = Path(path)
    try:
        raw = gzip.decompress(file.read_bytes()) if file.suffix == ".gz" else file.read_bytes()
        data = json.loads(raw)
    except FileNotFoundError:
        raise UsageError(f"{path}: not found") from None
    except (OSError, ValueError) as exc:
        raise UsageError(f"{path}: not a JSON report ({exc})") from None
    if not isinstance(data, dict) or not isinstance(data.get("observed"), dict):
        raise UsageError(
            f"{path}: no observed items; write it with `casewatch replay PATH --report json --items`"
        )
    report = {k: v for k, v in data.items() if k not in ("observed", "requests")}
    return Side(label, path, report, Observation.from_dict(data["observed"]))


def run_diff(args: argparse.Namespace, out: TextIO) -> int:
    comparison = Comparison.of(read_side("base", args.base), read_side("other", args.other))
    _print(comparison, args, out)
    if args.html:
        _write_page(Path(args.html), [comparison.base, comparison.other], comparison)
    return exit_code(comparison, args.fail_on_change)


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "diff",
        help="what differs between two replays (reports of `casewatch replay --report json --items`)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("base", metavar="A.json", help="the run to compare from (.json or .json.gz)")
    parser.add_argument("other", metavar="B.json", help="the run to compare to")
    parser.add_argument("--report", choices=("text", "json"), default="text")
    parser.add_argument("--fail-on-change", action="store_true", help="exit 3 when anything differs")
    parser.add_argument("--html", metavar="PAGE.html", help="write the comparison as one page")
    parser.add_argument("--show", type=int, default=10, metavar="N", help="differences listed per group")
    parser.set_defaults(run=run_diff)


__all__ = [
    "EXIT_CHANGED",
    "add_replay_flags",
    "check_replay_args",
    "exit_code",
    "observing",
    "read_side",
    "register",
    "run_diff",
    "run_observed",
    "run_side",
]
