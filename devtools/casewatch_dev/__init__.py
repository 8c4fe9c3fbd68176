"""Dev-only code: CLI, local pipeline, Cases emulator. Not part of the Lambda asset."""
