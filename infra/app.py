"""The CDK app (cdk.json `app`): settings from context, the `Casewatch` stack, cdk-nag AwsSolutions.

`cdk synth` / `make synth`; override one setting with `-c casewatch.<setting>=<value>`.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if __name__ == "__main__":  # `python infra/app.py` (cdk.json): import `infra` and `casewatch` from here ...
    # ... and never this directory as a top-level one: `infra/constructs` would shadow the library.
    sys.path[:] = [str(ROOT), str(ROOT / "functions")] + [
        p for p in sys.path if Path(p or ".").resolve() != ROOT / "infra"
    ]

from aws_cdk import App, Tags, Validations  # noqa: E402
from cdk_nag import AwsSolutionsChecks  # noqa: E402

from casewatch.errors import SettingsError  # noqa: E402
from infra.constructs.lambda_limits import LambdaLimitError  # noqa: E402
from infra.context import settings_from_context  # noqa: E402
from infra.stack import STACK_NAME, CasewatchStack  # noqa: E402

DESCRIPTION = "casewatch: consumer of Amazon Connect Cases events (routing, enrichment, SLAs, notifications)"


def build_app(
    context: Mapping[str, Any] | None = None, *, outdir: str | None = None, nag: bool = True
) -> tuple[App, CasewatchStack]:
    """The app and its stack. `context` is what cdk.json and `-c` would give (tests pass it)."""
    app = App(context=dict(context) if context is not None else None, outdir=outdir)
    settings = settings_from_context(app.node.get_all_context() or {})
    stack = CasewatchStack(app, STACK_NAME, settings=settings, description=DESCRIPTION)
    Tags.of(stack).add("app", "casewatch")
    if nag:
        Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    return app, stack


def main() -> int:
    try:
        app, _ = build_app()
    except (SettingsError, LambdaLimitError) as exc:
        print(f"casewatch: {exc}", file=sys.stderr)
        return 1
    app.synth()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
