from __future__ import annotations

import io
from pathlib import Path

from casewatch_dev.cli import main
from tests.builders import EVENTS, INVALID_FILES


def run(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    return main(list(argv), out=out), out.getvalue()


def test_validate_the_sample_directory() -> None:
    code, out = run("validate", str(EVENTS))
    assert code == 0
    assert "0 invalid" in out and "1 unhandled" in out
    assert "valid      " in out and "CASE.CREATED" in out


def test_validate_invalid_files_gives_one_reason_per_file() -> None:
    code, out = run("validate", *map(str, INVALID_FILES))
    assert code == 1
    lines = [line for line in out.splitlines() if line.startswith("invalid")]
    assert len(lines) == len(INVALID_FILES)
    assert all(len(line.split("  ", 1)[1]) > 10 for line in lines)


def test_validate_rejects_an_event_of_another_source() -> None:
    """Only Cases publishes Cases events: a look-alike with another `source` is invalid (exit 1)."""
    code, out = run("validate", str(EVENTS / "invalid" / "wrong-source.json"))
    assert code == 1
    assert "source: Input should be 'aws.cases'" in out
    assert "1 event(s): 0 valid, 0 unhandled, 1 invalid" in out


def test_validate_jsonl_counts_a_malformed_line_as_invalid(tmp_path: Path) -> None:
    good = (EVENTS / "case-created.json").read_text().replace("\n", "")
    (tmp_path / "day.jsonl").write_text(f"{good}\n\n{{not json\n{good}\n")
    code, out = run("validate", str(tmp_path / "day.jsonl"))
    assert code == 1
    assert "day.jsonl:3" in out and "3 event(s): 2 valid, 0 unhandled, 1 invalid" in out


def test_usage_errors_exit_2_without_traceback(capsys: object) -> None:
    assert run("validate", "no/such/file.json")[0] == 2
    assert run("validate")[0] == 2
    assert run("frobnicate")[0] == 2


def test_recursive_directory(tmp_path: Path) -> None:
    code, out = run("validate", "--recursive", str(EVENTS))
    assert code == 1 and "invalid/" in out
