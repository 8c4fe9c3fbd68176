"""The tests' one fake Lambda context: enough for Powertools (logger, idempotency). Standard library only,
so the driver that runs handlers from a synthesized asset (`tests/infra/invoke_asset.py`, no
site-packages) can load it too. Tests get it from the `lambda_context` fixture or `tests.apps`."""

from __future__ import annotations

ACCOUNT = "123456789012"
REGION = "us-east-1"


class LambdaContext:
    memory_limit_in_mb = 256
    function_version = "$LATEST"
    aws_request_id = "c6af9ac6-7b61-11e6-9a41-93e812345678"
    log_stream_name = "2026/11/23/[$LATEST]test"

    def __init__(self, function_name: str = "casewatch-test", remaining_ms: int = 30_000) -> None:
        self.function_name = function_name
        self.invoked_function_arn = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{function_name}"
        self.log_group_name = f"/aws/lambda/{function_name}"
        self.remaining_ms = remaining_ms

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_ms
