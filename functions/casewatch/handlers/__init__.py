"""Lambda entry points, one module per function. Each only wires: decorators, dependencies, one call."""
