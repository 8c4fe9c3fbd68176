"""boto3 sessions for the functions' credentials, cheap to make: they share one botocore data loader, so
the service models and endpoint data are parsed once per process, not once per session (a new session
parses them again: about 0.1 s a client)."""

from __future__ import annotations

from functools import cache
from typing import Any

import boto3
import botocore.loaders
import botocore.session

from casewatch_dev.pipeline.context import REGION


@cache
def _loader() -> Any:
    return botocore.loaders.create_loader()


def session(access_key_id: str | None = None, secret: str | None = None, token: str | None = None) -> Any:
    """A boto3 session with these credentials (None: the environment's), in the pipeline's Region."""
    core = botocore.session.Session()
    core.register_component("data_loader", _loader())
    return boto3.session.Session(
        aws_access_key_id=access_key_id,
        aws_secret_access_key=secret,
        aws_session_token=token,
        region_name=REGION,
        botocore_session=core,
    )


__all__ = ["session"]
