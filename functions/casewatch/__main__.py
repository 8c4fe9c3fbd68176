"""`python -m casewatch` runs the CLI (dev-only; not part of the Lambda asset)."""

from casewatch.local.cli import main

raise SystemExit(main())
