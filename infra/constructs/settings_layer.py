"""The functions' runtime settings, as a file in a small Lambda layer: `/opt/casewatch/settings.json`.

Lambda's environment holds 4 KB in all, and the settings (`Settings.runtime_json()`: event fields,
field names, SLA policies, notification rules) outgrow it from about 30 custom fields. So the stack
writes them at synth into `.build/settings-<hash>/casewatch/settings.json` and ships that directory
as a layer (Lambda extracts layers into `/opt`); the functions' environment only names the file
(`CASEWATCH_CONFIG_FILE`). The function code asset stays `functions/` as it is. A settings change
deploys as a new layer version and a function configuration update, like an environment change did.

The settings are read and validated at every cold start, so casewatch caps the file at
`SETTINGS_FILE_LIMIT_BYTES` (1 MiB, some thousands of field names; Lambda allows 250 MB unzipped
for the code and all layers together, and the dependencies layer takes most of it).
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path, PurePosixPath

from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from casewatch.errors import SettingsError
from casewatch.settings import Settings
from infra.constructs.dependencies import BUILD_DIR

# Where the functions find the settings: layers are extracted into /opt.
SETTINGS_FILE = PurePosixPath("/opt/casewatch/settings.json")
SETTINGS_FILE_LIMIT_BYTES = 1024 * 1024


def write_settings_directory(content: bytes, build_dir: Path = BUILD_DIR) -> Path:
    """`<build_dir>/settings-<hash>/` holding the file at its path under /opt (written atomically)."""
    digest = hashlib.sha256(content).hexdigest()[:16]
    directory = build_dir / f"settings-{digest}"
    target = directory / SETTINGS_FILE.relative_to("/opt")
    if target.is_file() and target.read_bytes() == content:
        return directory
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, staging = tempfile.mkstemp(dir=target.parent, prefix=".settings.")
    with os.fdopen(handle, "wb") as file:
        file.write(content)
    os.replace(staging, target)
    return directory


class SettingsLayer(Construct):
    """A layer with the runtime settings at `SETTINGS_FILE`."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        settings: Settings,
        runtime: lambda_.Runtime | None = None,
        architecture: lambda_.Architecture | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        content = settings.runtime_json().encode()
        if len(content) > SETTINGS_FILE_LIMIT_BYTES:
            raise SettingsError(
                f"casewatch: the runtime settings are {len(content)} bytes, over the "
                f"{SETTINGS_FILE_LIMIT_BYTES} casewatch allows for its settings layer (read at every cold "
                "start); shorten field_names, event_fields, sla_policies or notification_rules"
            )
        self.size = len(content)
        self.layer = lambda_.LayerVersion(
            self,
            "Layer",
            code=lambda_.Code.from_asset(str(write_settings_directory(content))),
            compatible_runtimes=[runtime] if runtime else None,
            compatible_architectures=[architecture] if architecture else None,
            description=f"casewatch runtime settings ({SETTINGS_FILE}, {len(content)} bytes)",
        )
