"""`python -m casewatch` runs the CLI (dev-only; not part of the Lambda asset)."""

from casewatch_dev.cli import main

raise SystemExit(main())
