"""The local pipeline: the deployed topology in one process, offline (see `core`)."""

from casewatch_dev.pipeline.context import ACCOUNT, REGION, STACK, FakeLambdaContext, LocalResources
from casewatch_dev.pipeline.core import BACKENDS, BackendName, Effects, Invocation, LocalPipeline

__all__ = [
    "ACCOUNT",
    "BACKENDS",
    "REGION",
    "STACK",
    "BackendName",
    "Effects",
    "FakeLambdaContext",
    "Invocation",
    "LocalPipeline",
    "LocalResources",
]
