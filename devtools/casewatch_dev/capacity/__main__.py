"""`python -m casewatch_dev.capacity [--json]`: the capacity table (see `casewatch_dev.capacity`)."""

from __future__ import annotations

import json
import sys

from casewatch_dev.capacity import capacity_rows, costs_from, render


def main(argv: list[str] | None = None) -> int:
    import warnings

    from casewatch.settings import load_cdk_context
    from casewatch_dev.bench.lambda_time import memory_mb
    from casewatch_dev.bench.requests import count_requests

    warnings.simplefilter("ignore")
    args = argv if argv is not None else sys.argv[1:]
    settings = load_cdk_context("cdk.json")
    costs = costs_from(count_requests(settings), memory_mb())
    rows = capacity_rows(settings, costs)
    if "--json" in args:
        print(json.dumps(rows, indent=2, default=str))
    else:
        print(render(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
