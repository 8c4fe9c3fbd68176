"""What needs a fresh interpreter or the files themselves: cold start, peak memory, the asset's size.

- **cold import + client setup**: a fresh interpreter imports a handler module and creates the DynamoDB
  client its first event uses (`casewatch.adapters.clients`), against a boto3-only handler (import boto3,
  create a DynamoDB client); medians of `SUBPROCESS_RUNS` runs each, interleaved (same machine load).
  `cold_init_ratio_max`: the largest ratio over the four functions.
- **peak memory** (ru_maxrss, in a process forked from a small launcher: Linux keeps a forked child's
  high-water mark across exec) of a process that imports every handler, creates the clients they use and
  handles the sample events on the memory backend's adapters (its dev modules make this an over-estimate).
- **asset size**: the function asset's own code (`functions/`, without caches), as a deflated zip.
"""

from __future__ import annotations

import io
import os
import statistics
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

from casewatch_dev.bench.common import FUNCTIONS, row

SUBPROCESS_RUNS = 7


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "POWERTOOLS_SERVICE_NAME": "casewatch",
            "POWERTOOLS_TRACE_DISABLED": "true",
            "PYTHONDONTWRITEBYTECODE": "",
        }
    )
    return env


def _run(code: str, *, launcher: bool = False) -> float:
    # Linux keeps a forked child's ru_maxrss across exec: a child forked from this (large) process would
    # report this process's memory. A small launcher forks the measured interpreter instead.
    launch = (
        "import subprocess, sys; sys.exit(subprocess.run([sys.executable, '-c', sys.argv[1]]).returncode)"
    )
    args = [sys.executable, "-c", launch, code] if launcher else [sys.executable, "-c", code]
    out = subprocess.run(args, capture_output=True, text=True, env=_env(), check=True)  # noqa: S603
    return float(out.stdout.strip().splitlines()[-1])


_COLD_CASEWATCH = """
import time
start = time.perf_counter()
import casewatch.handlers.{module} as handler
from casewatch.adapters import clients
clients.dynamodb_client()
print(time.perf_counter() - start)
"""
_COLD_BOTO3 = """
import time
start = time.perf_counter()
import boto3
boto3.client("dynamodb")
print(time.perf_counter() - start)
"""


def bench_cold_start() -> tuple[list[dict[str, Any]], float]:
    """Rows, and the largest ratio to the boto3-only handler."""
    rows = []
    ratios = []
    for module in ("case_changed", "related_item_created", "sla_timer", "reconcile"):
        runs, baseline_runs = [], []
        for _ in range(SUBPROCESS_RUNS):  # interleaved with the baseline: same machine load
            runs.append(_run(_COLD_CASEWATCH.format(module=module)))
            baseline_runs.append(_run(_COLD_BOTO3))
        value = statistics.median(runs) * 1000
        baseline = statistics.median(baseline_runs) * 1000
        ratios.append(value / baseline)
        rows.append(
            row(
                f"cold import + client setup: {module}",
                value,
                "ms",
                "boto3-only handler (import boto3, a DynamoDB client)",
                baseline,
                "<= 1.5x baseline",
                value <= 1.5 * baseline,
                ratio=round(value / baseline, 2),
                runs=SUBPROCESS_RUNS,
            )
        )
    return rows, max(ratios)


_PEAK_MEMORY = """
import resource, warnings
warnings.simplefilter("ignore")
from casewatch.adapters import clients
from casewatch.handlers import case_changed, reconcile, related_item_created, sla_timer
from casewatch.settings import load_cdk_context
from casewatch_dev.bench.common import archive_events
from casewatch_dev.bench.handler_cost import run_events
from casewatch_dev.pipeline.environment import local_environment
with local_environment():
    for make in (clients.dynamodb_client, clients.sns_client, clients.events_client, clients.sqs_client,
                 clients.scheduler_client, clients.cases_client):
        make()
run_events(load_cdk_context("cdk.json"), [e for _, e in archive_events()])
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
"""


def bench_peak_memory() -> tuple[list[dict[str, Any]], float]:
    mb = _run(_PEAK_MEMORY, launcher=True)
    baseline = _run(
        "import resource, boto3; boto3.client('dynamodb', region_name='us-east-1'); "
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)",
        launcher=True,
    )
    return [
        row(
            "peak memory of a handler process (sample events)",
            mb,
            "MB",
            "boto3-only process with a DynamoDB client",
            baseline,
            "fits a 128 MB function",
            mb < 128,
        )
    ], mb


def _in_asset(path: Path, relative: str) -> bool:
    return path.is_file() and "__pycache__" not in path.parts and path.suffix not in (".pyc", ".pyo")


def asset_bytes(root: Path = FUNCTIONS) -> int:
    return sum(p.stat().st_size for p in root.rglob("*") if _in_asset(p, p.relative_to(root).as_posix()))


def zipped_asset_bytes(root: Path = FUNCTIONS) -> int:
    """The asset's files as a deflated zip (what Lambda stores and loads)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(root.rglob("*")):
            relative = path.relative_to(root).as_posix()
            if _in_asset(path, relative):
                archive.write(path, relative)
    return len(buffer.getvalue())


def bench_asset_size() -> tuple[list[dict[str, Any]], float]:
    kb, zipped = asset_bytes() / 1024, zipped_asset_bytes() / 1024
    return [
        row(
            "function asset, own code (source bytes)",
            kb,
            "KB",
            "",
            None,
            "(size)",
            None,
            zipped_kb=round(zipped, 1),
        ),
        row("function asset, own code (zipped)", zipped, "KB", "", None, "< 200 KB", zipped < 200),
    ], zipped


__all__ = ["asset_bytes", "bench_asset_size", "bench_cold_start", "bench_peak_memory", "zipped_asset_bytes"]
