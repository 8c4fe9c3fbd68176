"""Reading event files: a `.json` event, a `.jsonl` file of one event per line, or a directory."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from casewatch.errors import InvalidCaseEventError, Problem
from casewatch.models.events import CaseEvent, parse_case_event

EVENT_SUFFIXES = (".json", ".jsonl")


class UsageError(Exception):
    """A command-line usage problem (missing file...): exit code 2."""


@dataclass(frozen=True, slots=True)
class RawEvent:
    """One event as read from a file, not yet parsed. `raw` is the decoded JSON, or None."""

    origin: str  # "path" or "path:line"
    raw: object
    problem: str | None = None  # set when the text is not JSON

    def parse(self) -> CaseEvent:
        if self.problem is not None:
            raise InvalidCaseEventError([Problem("", self.problem)])
        return parse_case_event(self.raw)


def _decode(origin: str, text: str) -> RawEvent:
    try:
        return RawEvent(origin, json.loads(text))
    except (ValueError, RecursionError) as exc:
        return RawEvent(origin, None, f"not valid JSON ({type(exc).__name__})")


def expand_paths(paths: list[str], *, recursive: bool = False) -> list[Path]:
    """Files named, and event files directly inside directories named (recursively if asked)."""
    files: list[Path] = []
    for name in paths:
        path = Path(name)
        if path.is_dir():
            pattern = "**/*" if recursive else "*"
            files.extend(sorted(p for p in path.glob(pattern) if p.is_file() and p.suffix in EVENT_SUFFIXES))
        elif path.is_file():
            files.append(path)
        else:
            raise UsageError(f"{name}: no such file or directory")
    return files


def read_events(path: Path) -> Iterator[RawEvent]:
    """Events of one file. A `.jsonl` yields one per non-blank line; a `.json` one event or a list."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"{path}: cannot read ({type(exc).__name__})") from None
    if path.suffix == ".jsonl":
        for number, line in enumerate(text.splitlines(), start=1):
            if line.strip():
                yield _decode(f"{path}:{number}", line)
        return
    decoded = _decode(str(path), text)
    if isinstance(decoded.raw, list) and decoded.raw and all(isinstance(e, dict) for e in decoded.raw):
        for index, item in enumerate(decoded.raw):
            yield RawEvent(f"{path}[{index}]", item)
    else:
        yield decoded


def iter_events(paths: list[str], *, recursive: bool = False) -> Iterator[RawEvent]:
    for path in expand_paths(paths, recursive=recursive):
        yield from read_events(path)
